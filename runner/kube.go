package runner

// KubernetesConfig configures how this binary talks to a cluster: the kubernetes
// executor (every Go and Bash task in its own pod) and the PodOperator.
type KubernetesConfig struct{}
