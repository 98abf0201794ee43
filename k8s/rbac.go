package k8s

import (
	"context"

	rbacv1 "k8s.io/api/rbac/v1"
)

// RBACRule is access to the API server that a task needs beyond the runner's
// own Role (pods, pods/log, events, leases): a rule of a Role in a namespace.
type RBACRule struct {
	// Namespace is where the rule is needed: "" for the runner's own namespace
	// (that of the Role `manifests` prints), else a namespace's name, or the
	// template that names it when only the run knows it (text with "{{"),
	// which `manifests` cannot grant and lists in a comment.
	Namespace string
	// Rule is the access: API groups, resources, verbs and, when the task
	// knows them, resource names.
	Rule rbacv1.PolicyRule
}

// RBACTask is implemented by tasks that call the API server from the runner
// with the runner's identity, such as the Kubernetes object sensor
// (sensors/kubeobject). `manifests` adds their rules to the Role it prints,
// merged, deduplicated and sorted, and prints a Role and a RoleBinding in each
// other namespace they name. The interface lives here, with no dependency but
// k8s.io/api's rbac/v1, so that `manifests` can find such tasks without
// linking their clients.
type RBACTask interface {
	KubeRBAC() []RBACRule
}

// Cluster is the cluster a runner talks to, as its flags and configuration
// chose it (--kubeconfig, --context, --namespace and their environment
// variables). Tasks that call the API server from the runner (RBACTask) use
// the Cluster of their context, when it carries one, so that they reach the
// same cluster, as the same identity, as the runner's pods.
type Cluster struct {
	// Kubeconfig is the kubeconfig file ("": $KUBECONFIG, else
	// ~/.kube/config, else the in-cluster config).
	Kubeconfig string
	// Context is the kubeconfig context ("": the current one).
	Context string
	// Namespace is the runner's namespace ("": the context's, else the
	// runner pod's, else "default").
	Namespace string
}

type clusterKey struct{}

// WithCluster returns a context that carries c, for the tries a runner runs in
// its own process.
func WithCluster(ctx context.Context, c Cluster) context.Context {
	return context.WithValue(ctx, clusterKey{}, c)
}

// ClusterFrom returns the Cluster ctx carries (ok false: none).
func ClusterFrom(ctx context.Context) (c Cluster, ok bool) {
	c, ok = ctx.Value(clusterKey{}).(Cluster)
	return c, ok
}
