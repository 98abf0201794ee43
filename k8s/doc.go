// Package k8s builds the Kubernetes pods trellis runs tasks in, the way
// Airflow's KubernetesExecutor and KubernetesPodOperator do, and (later)
// launches and watches them.
//
// # Three roles, three layers
//
// A worker pod is assembled from layers owned by different people, applied
// in this order, each winning over the one before:
//
//  1. The pod template (Airflow's pod_template_file), written by the platform
//     team: the service account, security context, volumes, sidecars, the
//     image and environment every task shares. LoadPodTemplate reads it
//     strictly (a misspelt field is an error, not silently dropped) and
//     ValidateWorkerTemplate checks it has the container named "base" that
//     the task runs in.
//  2. The per-task override (Airflow's executor_config pod_override), written
//     by the data engineer next to the task: more memory, a GPU node
//     selector, an extra env var or volume. MergePod merges it into the
//     template.
//  3. The mutation hook (Airflow's pod_mutation_hook), written by the
//     cluster admin: a function that sees every final pod and can enforce
//     policy (labels for cost accounting, a mandatory toleration). It runs
//     after the merge, so nothing a task sets escapes it.
//
// Between the layers trellis sets what it owns: the pod name (PodName), the
// identity labels and annotations (TryIdentity), and the base container's
// command. ValidatePod then checks the final pod for what the API server
// would reject before anything is created.
//
// # Two merge modes
//
// StrategicMerge, the default, is Kubernetes' strategic merge patch (what
// `kubectl patch` does): containers, init containers, volumes, env vars,
// volume mounts and ports are matched by name (or port, or path) and merged,
// so an override that names container "base" and sets only its resources
// changes only those. A field the override leaves unset never removes
// anything from the template.
//
// AirflowMerge reproduces Airflow's PodGenerator.reconcile_pods exactly, for
// teams that bring pod_override objects from Airflow and rely on its rules:
// containers are matched by position, lists are appended rather than merged
// (the same env var twice, the later one winning in the container), and an
// override value of false, 0 or "" leaves the template's value in place.
//
// So far the package is pure: no cluster and no client; its only I/O is
// reading the template file.
package k8s
