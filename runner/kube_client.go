package runner

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"

	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/flowcontrol"
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

// kubeClients holds the typed clients of the two API groups the runner uses:
// core/v1 (the executor's pods, their logs and events, the API server's
// version) and coordination.k8s.io/v1 (the scheduler Lease). It satisfies the
// executor's and the leader election's Client interfaces, as a full clientset
// would, without linking the clients of every API group into each binary.
type kubeClients struct {
	core         corev1client.CoreV1Interface
	coordination coordinationv1client.CoordinationV1Interface
}

// CoreV1 returns the core/v1 client.
func (c *kubeClients) CoreV1() corev1client.CoreV1Interface { return c.core }

// CoordinationV1 returns the coordination.k8s.io/v1 client.
func (c *kubeClients) CoordinationV1() coordinationv1client.CoordinationV1Interface {
	return c.coordination
}

// kubeClient returns the clients of the configured cluster with the runner's
// QPS and Burst. Its error names what was tried.
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

// newKubeClients builds the typed clients as kubernetes.NewForConfig builds a
// clientset's: they share one HTTP client (its connections) and one rate
// limiter, so that QPS and Burst bound the runner's requests as a whole.
func newKubeClients(cfg *rest.Config) (*kubeClients, error) {
	c := *cfg
	if c.RateLimiter == nil && c.QPS > 0 {
		if c.Burst <= 0 {
			return nil, errors.New("burst is required to be greater than 0 when RateLimiter is not set and QPS is set to greater than 0")
		}
		c.RateLimiter = flowcontrol.NewTokenBucketRateLimiter(c.QPS, c.Burst)
	}
	httpClient, err := rest.HTTPClientFor(&c)
	if err != nil {
		return nil, err
	}
	core, err := corev1client.NewForConfigAndClient(&c, httpClient)
	if err != nil {
		return nil, err
	}
	// Leases have a protobuf encoding too, so the content types suit both.
	coordination, err := coordinationv1client.NewForConfigAndClient(&c, httpClient)
	if err != nil {
		return nil, err
	}
	return &kubeClients{core: core, coordination: coordination}, nil
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
