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
	var mi mapIndexFlag
	f.fs.Var(&mi, "map-index", "render this instance of the mapped task given (also written task[N]; default: the first, 0)")
	itemFlag := f.fs.String("item", "", "the element, as JSON, a mapped task is rendered with (default: element --map-index of its literal list or param; a placeholder for an upstream's result)")
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
	index := mi.index()
	if len(pos) > 1 {
		arg, err := parseTaskArg("render", d, pos[1], &mi)
		if err != nil {
			return err
		}
		t := arg.task
		if t == nil {
			return usagef("dag %q has no task %q", d.ID(), pos[1])
		}
		if *itemFlag != "" && !task.SettingsOf(t).Mapped {
			return usagef("render: --item: task %q of dag %q is not mapped", t.ID(), d.ID())
		}
		index = arg.index
		if task.SettingsOf(t).Kind == task.KindSensor {
			return usagef("render: task %q of dag %q is a sensor: its pokes run in the runner, never in a pod", t.ID(), d.ID())
		}
		tasks = []task.Task{t}
	} else {
		if mi.set || *itemFlag != "" {
			return usagef("render: --map-index and --item need a task: render %s <task> --map-index N", d.ID())
		}
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
	if *itemFlag != "" && !json.Valid([]byte(*itemFlag)) {
		return usagef("render: --item: malformed JSON: %s", preview(*itemFlag, 60))
	}
	items := map[string]renderItem{}
	for _, t := range tasks {
		if !task.SettingsOf(t).Mapped {
			continue
		}
		it, err := mapItem(t, max(index, 0), json.RawMessage(*itemFlag), params)
		if err != nil {
			return err
		}
		if len(tasks) > 1 {
			fmt.Fprintf(r.cfg.Stderr, "render: %s is mapped: its pod is shown for %s (render %s %s --map-index N shows another)\n",
				t.ID(), task.InstanceID(t.ID(), it.index), d.ID(), t.ID())
		}
		items[t.ID()] = it
	}
	ks, err := r.newKubeSetup(kf(), *f.db)
	if err != nil {
		return err
	}
	pods, err := ks.renderPods(ctx, d, tasks, items, logical, conf, params, *try)
	if err != nil {
		return err
	}
	return writePods(r, pods, *out)
}

// renderItem is the instance of a mapped task that render shows.
type renderItem struct {
	index int
	item  json.RawMessage
}

// mapItem returns the instance of mapped task t that render shows: element
// k of its literal list or param, or item when given. Without a run, an
// upstream's result does not exist: the element is then a placeholder string,
// as render's upstream results are.
func mapItem(t task.Task, k int, item json.RawMessage, params map[string]any) (renderItem, error) {
	if len(item) > 0 {
		return renderItem{k, item}, nil
	}
	m, _ := task.MappingOf(t)
	if m.Over != "" {
		return renderItem{k, json.RawMessage(fmt.Sprintf(`"<element %d of the result of %s>"`, k, m.Over))}, nil
	}
	items, _, err := m.Elements(nil, params)
	if err != nil {
		return renderItem{}, &UsageError{fmt.Errorf("render: task %q: %w", t.ID(), err)}
	}
	if k >= len(items) {
		return renderItem{}, usagef("render: --map-index %d is out of range: the list task %q is mapped over has %d element(s)", k, t.ID(), len(items))
	}
	return renderItem{k, items[k]}, nil
}

// renderPods builds the pods of one try of each task of a run at logical;
// a mapped task's is the pod of its instance in items.
func (ks *kubeSetup) renderPods(ctx context.Context, d *dag.DAG, tasks []task.Task, items map[string]renderItem, logical time.Time, conf json.RawMessage, params map[string]any, try int) ([]*corev1.Pod, error) {
	start, end := d.InferInterval(logical)
	runID := runID("manual", logical)
	var pods []*corev1.Pod
	var errs []error
	for _, t := range tasks {
		pol := task.PolicyOf(t, d.Defaults())
		info := task.Info{DAGID: d.ID(), TaskID: t.ID(), RunID: runID, RunType: task.RunManual, Try: try,
			MaxTries: pol.Retries + 1, LogicalDate: logical, DataIntervalStart: start, DataIntervalEnd: end, Location: d.Location(), MapIndex: -1}
		var in task.Inputs = renderInputs
		id := t.ID()
		if it, ok := items[t.ID()]; ok {
			info.MapIndex, id = it.index, task.InstanceID(t.ID(), it.index)
			in = task.WithItem(in, it.item)
		}
		pod, err := ks.buildPod(ctx, executor.Try{
			Key:  executor.Key{DAGID: d.ID(), RunID: runID, TaskID: id, Try: try},
			Task: t, Info: info, Params: params, Conf: conf, Timeout: pol.Timeout, Inputs: in,
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
