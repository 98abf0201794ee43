package runner

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// kubeLoader returns client-go's loader of kubeconfig files: --kubeconfig,
// else $KUBECONFIG, else ~/.kube/config, with --context.
func kubeLoader(kubeconfig, context string) clientcmd.ClientConfig {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if kubeconfig != "" {
		rules.ExplicitPath = kubeconfig
	}
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: context})
}

// kubeNamespace is the namespace of the kubeconfig context, in a cluster the
// runner pod's, else "default". It never contacts a cluster.
func kubeNamespace(kubeconfig, context string) string {
	if ns, _, err := kubeLoader(kubeconfig, context).Namespace(); err == nil && ns != "" {
		return ns
	}
	return "default"
}

// The client's default rate limits. client-go's own 5 QPS and Burst 10 let a
// runner create a few pods per second; these let the runner create pods as
// fast as the API server takes them (a single-node kube-apiserver here takes
// 450-730 pod creations per second, docs/benchmarks.md), with at most
// KubernetesConfig.CreateParallelism creations in flight. The API server's
// Priority and Fairness, not the client, protects the cluster.
const (
	DefaultQPS   = 1000
	DefaultBurst = 2000
)

// kubeClient returns the client of the configured cluster (newKubeClients)
// with the runner's QPS and Burst. Its error names what was tried.
func (r *Runner) kubeClient(o kubeOptions) (*kubeClients, *rest.Config, error) {
	qps, burst, err := o.limits()
	if err != nil {
		return nil, nil, err
	}
	kubeconfig, context := o.kubeconfig, o.context
	cfg, err := kubeLoader(kubeconfig, context).ClientConfig()
	if err != nil {
		var tried []string
		switch {
		case kubeconfig != "":
			tried = append(tried, "--kubeconfig "+kubeconfig)
		case os.Getenv("KUBECONFIG") != "":
			tried = append(tried, "$KUBECONFIG="+os.Getenv("KUBECONFIG"))
		default:
			tried = append(tried, "~/.kube/config", "the in-cluster config ($KUBERNETES_SERVICE_HOST)")
		}
		if context != "" {
			tried = append(tried, "--context "+context)
		}
		return nil, nil, fmt.Errorf("%w: tried %s: %v", errNoCluster, strings.Join(tried, ", "), err)
	}
	cfg.QPS, cfg.Burst = qps, burst
	cfg.UserAgent = progName() + "/" + Version + " (trellis)"
	// Protobuf costs the API server and the runner less CPU than JSON for pods.
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	cs, err := newKubeClients(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("kubernetes client for %s: %w", cfg.Host, err)
	}
	return cs, cfg, nil
}

// limits returns the client's QPS and Burst: the options, else the runner's
// configuration, else DefaultQPS and DefaultBurst.
func (o kubeOptions) limits() (float32, int, error) {
	qps, burst := float32(DefaultQPS), DefaultBurst
	if o.qps != "" {
		v, err := strconv.ParseFloat(o.qps, 32)
		if err != nil || v <= 0 || math.IsInf(v, 0) {
			return 0, 0, usagef("--kube-qps %q: want a positive number", o.qps)
		}
		qps = float32(v)
	}
	if o.burst != "" {
		v, err := strconv.Atoi(o.burst)
		if err != nil || v <= 0 {
			return 0, 0, usagef("--kube-burst %q: want a positive whole number", o.burst)
		}
		burst = v
	}
	return qps, burst, nil
}
