package runner

import (
	"context"
	"fmt"
	"sync"

	"sigs.k8s.io/yaml"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/executor"
	"github.com/trellisdag/trellis/internal/store"
	"github.com/trellisdag/trellis/task"
)

// podYAML returns the web UI's renderer of a try's pod: the pod the executor
// builds for that run and try, as YAML; a pod task's templates read the
// run's stored upstream results, a worker pod's context leaves them out. It
// needs no cluster. The builder (kubeconfig namespace, template file, cached
// layers) is set up once, on the first request.
func (r *Runner) podYAML(o *kubeOptions, st *store.Store) func(d *dag.DAG, t task.Task, run store.Run, ti store.TaskInstance) ([]byte, error) {
	opts := r.kubeDefaults()
	if o != nil {
		opts = *o
	}
	setup := sync.OnceValues(func() (*kubeSetup, error) { return r.newKubeSetup(opts, st.Path()) })
	return func(d *dag.DAG, t task.Task, run store.Run, ti store.TaskInstance) ([]byte, error) {
		ks, err := setup()
		if err != nil {
			return nil, err
		}
		params, err := d.ResolveConf(run.Conf)
		if err != nil {
			params = map[string]any{}
		}
		try := max(ti.Try, 1)
		pol := task.PolicyOf(t, d.Defaults())
		// ti is one instance: "resize[3]" of a mapped task renders the pod
		// of element 3, its templates reading the element from the list.
		instance := ti.TaskID
		if instance == "" {
			instance = t.ID()
		}
		_, k := task.ParseInstanceID(instance)
		info := task.Info{DAGID: d.ID(), TaskID: t.ID(), RunID: run.RunID, RunType: run.Type, Try: try,
			MaxTries: ti.MaxTries, LogicalDate: run.LogicalDate, DataIntervalStart: run.IntervalStart,
			DataIntervalEnd: run.IntervalEnd, Location: d.Location(), MapIndex: k}
		ctx := context.Background()
		inputs := task.InputsFunc(func(id string) ([]byte, bool, error) { return st.XCom(ctx, run.ID, id) })
		pod, err := ks.buildPod(ctx, executor.Try{
			Key:  executor.Key{Run: run.ID, DAGID: d.ID(), RunID: run.RunID, TaskID: instance, Try: try},
			Task: t, Info: info, Params: params, Conf: run.Conf, Timeout: pol.Timeout, Inputs: inputs,
		}, false)
		if err != nil {
			return nil, fmt.Errorf("render the pod of task %q: %w", instance, err)
		}
		return yaml.Marshal(pod)
	}
}
