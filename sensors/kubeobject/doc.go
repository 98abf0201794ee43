// Package kubeobject has the Kubernetes object sensor: a task that waits,
// deferred and holding no slot between pokes, until an object of any resource
// (by API group, version and resource, namespace and name) exists and, with a
// field path, until that field matches a condition: a Pod's phase, a
// Deployment's Available condition, a custom resource's status.
//
//	ready := kubeobject.Object("model-ready", kubeobject.ObjectSpec{
//		Group: "serving.example.com", Version: "v1", Resource: "models",
//		Name:      "model-{{ .DSNodash }}",
//		FieldPath: `{.status.conditions[?(@.type=="Ready")].status}`,
//		Equals:    "True",
//	}, task.PokeInterval(30*time.Second))
//
// Each poke is one GET of the object as JSON, in the runner's process, with
// the runner's identity; the sensor needs the RBAC verb get on that resource
// in that namespace, which it reports through k8s.RBACTask so that the
// runner's `manifests` command prints it in the Role.
//
// It is a package of its own, away from package sensors, so that only the
// binaries that use it link its JSONPath evaluator; it sends its GET with
// client-go's rest transport (which the runner links anyway) rather than
// client-go's dynamic client.
package kubeobject
