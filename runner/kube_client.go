package runner

import (
	"fmt"
	"os"
	"strings"

	"k8s.io/client-go/kubernetes"
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

// kubeClient returns a client for the configured cluster with the runner's QPS
// and Burst. Its error names what was tried.
func (r *Runner) kubeClient(kubeconfig, context string) (kubernetes.Interface, *rest.Config, error) {
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
	k := r.cfg.Kubernetes
	cfg.QPS, cfg.Burst = k.QPS, k.Burst
	if cfg.QPS <= 0 {
		cfg.QPS = 200
	}
	if cfg.Burst <= 0 {
		cfg.Burst = 400
	}
	cfg.UserAgent = progName() + "/" + Version + " (trellis)"
	// Protobuf costs the API server and the runner less CPU than JSON for pods.
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("kubernetes client for %s: %w", cfg.Host, err)
	}
	return cs, cfg, nil
}
