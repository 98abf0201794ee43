// Package kubernetes is the executor that runs every try in its own pod (Airflow's
// KubernetesExecutor) and creates the pods of PodOperator tasks.
//
// One shared informer per namespace, label-selected on the runner instance
// (k8s.InstanceSelector), feeds a workqueue; each pod event moves its try
// forward, and timed re-checks (startup timeout, image pull grace, execution
// timeout, cleanup delay) are delayed queue items, so nothing polls. Pods are
// created concurrently under a parallelism limit, with 429 and 5xx backed off;
// pod names are deterministic (k8s.PodName), so a create that meets an existing
// pod of the same try adopts it. Each instance of a mapped task (Key.TaskID
// "resize[3]") is a try of its own with a pod of its own, its map index in the
// pod's name and in the k8s.LabelMapIndex label; Start checks that the built
// pod carries k8s.PodName of the try's key, the one name Recover looks for.
//
// A try is Started when its base container runs. Its log is followed while it
// runs (a broken stream resumes without duplicates) and saved through the
// runner's log writer, so it outlives the pod. Its end comes from the
// termination message (k8s/termination) of a worker pod, or from the exit code
// and optional pushed result of a PodOperator pod. A pod deleted, evicted or
// lost before its base container ran is reported Lost (relaunched without
// spending a retry) once it is gone; one deleted while the task ran fails the
// try. After the end is reported and the log saved, the cleanup policy
// applies.
//
// The executor needs only the pods and events of core/v1 (Client, with the
// small PodClient and EventClient interfaces): its informers list and watch
// through it, and pods are read from their caches by namespace/name. A typed
// client-go client satisfies these interfaces through ClientOf, but the
// package imports no typed client-go package, so a binary that links the
// executor with a client of its own over rest.RESTClient links neither
// client-go's scheme of every API group nor its informer factory and listers.
package kubernetes
