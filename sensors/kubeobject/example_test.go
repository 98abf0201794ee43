package kubeobject_test

import (
	"context"
	"fmt"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/sensors/kubeobject"
	"github.com/trellisdag/trellis/task"
)

// A DAG waits for the day's training Job, in the runner's namespace, to be
// Complete, then reads the status the sensor matched. The sensor reports the
// RBAC it needs; `manifests` adds it to the runner's Role.
func ExampleObject() {
	trained := kubeobject.Object("trained", kubeobject.ObjectSpec{
		Group: "batch", Version: "v1", Resource: "jobs",
		Name:      "train-{{ .DSNodash }}",
		FieldPath: `{.status.conditions[?(@.type=="Complete")].status}`,
		Equals:    "True",
	}, task.PokeInterval(30*time.Second), task.SensorTimeout(6*time.Hour), task.SoftFail())
	publish := task.Go("publish", func(ctx context.Context, r *task.Run) (string, error) {
		complete, err := task.Output(r, trained) // "True"
		return "published (complete: " + complete + ")", err
	})
	trained.Then(publish)
	d := dag.New("train").Add(trained, publish)
	fmt.Println("valid:", d.Validate() == nil)

	for _, rule := range trained.KubeRBAC() {
		fmt.Printf("namespace %q: apiGroups %q resources %q verbs %q\n",
			rule.Namespace, rule.Rule.APIGroups, rule.Rule.Resources, rule.Rule.Verbs)
	}
	// Output:
	// valid: true
	// namespace "": apiGroups ["batch"] resources ["jobs"] verbs ["get"]
}
