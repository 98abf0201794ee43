package runner

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/trellisdag/trellis/k8s"
	"github.com/trellisdag/trellis/task"
)

// KubernetesConfig configures how this binary talks to a cluster: the kubernetes
// executor (every Go and Bash task in its own pod) and the PodOperator. Every
// field has a default; flags and environment variables override some of them
// (shown in brackets).
type KubernetesConfig struct {
	// Image is the team's image: this binary built into an image, run by every
	// worker pod [--image, $TRELLIS_IMAGE]. Empty keeps the pod template's image.
	Image string
	// Command is this binary's path inside the image (default
	// /usr/local/bin/<name of this binary>, where hack/kube-image.sh puts it)
	// [$TRELLIS_WORKER_COMMAND, space separated].
	Command []string
	// Namespace for pods (default: the kubeconfig context's, in a cluster the
	// runner pod's, else "default") [--namespace].
	Namespace string
	// PodTemplateFile is the default worker pod template (Airflow's
	// pod_template_file) [--pod-template, $TRELLIS_POD_TEMPLATE]. PodTemplate,
	// when set, is used instead.
	PodTemplateFile string
	PodTemplate     *corev1.Pod
	// MergeMode merges templates, the generated pod and overrides
	// (k8s.StrategicMerge by default; k8s.AirflowMerge for Airflow's rules).
	MergeMode k8s.MergeMode
	// MutationHooks are the admin's pod_mutation_hook: each sees every pod
	// (worker and PodOperator pods) last and may change it; an error fails the
	// try with its message.
	MutationHooks []func(ctx context.Context, pod *corev1.Pod, t task.Info) error
	// QPS and Burst of the client [--kube-qps, --kube-burst, $TRELLIS_KUBE_QPS,
	// $TRELLIS_KUBE_BURST] (defaults DefaultQPS and DefaultBurst).
	QPS   float32
	Burst int
	// Cleanup is what happens to a pod once its try ended and its log is saved
	// (default k8s.OnFinishDeleteOnSuccess); a pod's annotation
	// trellis.dev/on-finish (a PodOperator's OnFinish) wins.
	Cleanup k8s.OnFinish
	// StartupTimeout is how long a pod may stay pending (default 5m).
	StartupTimeout time.Duration
	// ImagePullGrace is how long ErrImagePull and ImagePullBackOff are waited
	// out before the try fails (default 30s).
	ImagePullGrace time.Duration
	// KillGrace is the grace period of a pod deleted at its execution timeout
	// or by a kill (default 30s).
	KillGrace time.Duration
	// CreateParallelism is how many pod creations are in flight at once
	// (default 32).
	CreateParallelism int
	// Instance names this runner instance; it labels its pods, and at start-up
	// the runner adopts or deletes the pods of its instance. Default: derived
	// from this binary's name and the database's absolute path [--instance,
	// $TRELLIS_INSTANCE].
	Instance string
	// Kubeconfig and Context choose the cluster (defaults: $KUBECONFIG, else
	// ~/.kube/config, else the in-cluster config; the current context)
	// [--kubeconfig, --context].
	Kubeconfig, Context string
}
