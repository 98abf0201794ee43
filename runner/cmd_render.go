package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/executor"
	"github.com/trellisdag/trellis/task"
)

// cmdRender prints the exact pod that would be created for each task (or one),
// without a cluster: worker pods for Go and Bash tasks, the task's own pod for
// PodOperator tasks. Upstream results are left out of the try's context; a
// pod task's templates read placeholders for them.
func cmdRender(ctx context.Context, r *Runner, args []string) error {
	f := newFlags(r, "render")
	ld := f.fs.String("logical-date", "", "logical date of the run, in the DAG's timezone unless it has an offset (default: now)")
	confFlag := f.fs.String("conf", "", "run conf, a JSON object")
	out := f.fs.String("o", "yaml", "output format: yaml or json")
	try := f.fs.Int("try", 1, "try number")
	kf := r.addKubeFlags(f)
	pos, err := f.parse(args, "<dag>", "[task]")
	if err != nil {
		if pos, err = f.parse(args, "<dag>"); err != nil {
			return err
		}
	}
	if *out != "yaml" && *out != "json" {
		return usagef("render: -o %q: want yaml or json", *out)
	}
	if *try < 1 {
		return usagef("render: --try %d: must be at least 1", *try)
	}
	d, err := r.dag(pos[0])
	if err != nil {
		return err
	}
	tasks := d.Tasks()
	if len(pos) > 1 {
		t, ok := d.Task(pos[1])
		if !ok {
			return usagef("dag %q has no task %q", d.ID(), pos[1])
		}
		if task.SettingsOf(t).Kind == task.KindSensor {
			return usagef("render: task %q of dag %q is a sensor: its pokes run in the runner, never in a pod", t.ID(), d.ID())
		}
		tasks = []task.Task{t}
	} else {
		// Sensors poke in the runner: they have no pod to show.
		kept := tasks[:0:0]
		for _, t := range tasks {
			if task.SettingsOf(t).Kind == task.KindSensor {
				fmt.Fprintf(r.cfg.Stderr, "render: %s is a sensor: its pokes run in the runner, not in a pod\n", t.ID())
				continue
			}
			kept = append(kept, t)
		}
		tasks = kept
	}
	logical := time.Now().UTC()
	if *ld != "" {
		if logical, err = parseDateIn("logical-date", *ld, d.Location()); err != nil {
			return err
		}
		logical = logical.UTC()
	}
	conf, err := parseConf(*confFlag)
	if err != nil {
		return err
	}
	params, err := d.ResolveConf(conf)
	if err != nil {
		return &UsageError{err}
	}
	ks, err := r.newKubeSetup(kf(), *f.db)
	if err != nil {
		return err
	}
	pods, err := ks.renderPods(ctx, d, tasks, logical, conf, params, *try)
	if err != nil {
		return err
	}
	return writePods(r, pods, *out)
}

// renderPods builds the pods of one try of each task of a run at logical.
func (ks *kubeSetup) renderPods(ctx context.Context, d *dag.DAG, tasks []task.Task, logical time.Time, conf json.RawMessage, params map[string]any, try int) ([]*corev1.Pod, error) {
	start, end := d.InferInterval(logical)
	runID := runID("manual", logical)
	var pods []*corev1.Pod
	var errs []error
	for _, t := range tasks {
		pol := task.PolicyOf(t, d.Defaults())
		info := task.Info{DAGID: d.ID(), TaskID: t.ID(), RunID: runID, RunType: task.RunManual, Try: try,
			MaxTries: pol.Retries + 1, LogicalDate: logical, DataIntervalStart: start, DataIntervalEnd: end, Location: d.Location()}
		pod, err := ks.buildPod(ctx, executor.Try{
			Key:  executor.Key{DAGID: d.ID(), RunID: runID, TaskID: t.ID(), Try: try},
			Task: t, Info: info, Params: params, Conf: conf, Timeout: pol.Timeout, Inputs: renderInputs,
		}, false)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		pods = append(pods, pod)
	}
	if len(errs) > 0 {
		return nil, &UsageError{errors.Join(errs...)}
	}
	return pods, nil
}

// renderInputs stands in for the upstream results a pod task's templates
// read ({{ .Output "extract" }}) when there is no run: each reads as the JSON
// string "<result of extract>" (task ids need no escaping: task.ValidID).
var renderInputs = task.InputsFunc(func(id string) ([]byte, bool, error) {
	return []byte(`"<result of ` + id + `>"`), true, nil
})

func writePods(r *Runner, pods []*corev1.Pod, format string) error {
	w := r.cfg.Stdout
	if format == "json" {
		var v any = pods
		if len(pods) == 1 {
			v = pods[0]
		} else {
			v = map[string]any{"apiVersion": "v1", "kind": "List", "items": pods}
		}
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	for i, p := range pods {
		b, err := yaml.Marshal(p)
		if err != nil {
			return err
		}
		if i > 0 {
			fmt.Fprintln(w, "---")
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}
