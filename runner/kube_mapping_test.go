package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/executor"
	"github.com/trellisdag/trellis/k8s"
	"github.com/trellisdag/trellis/k8s/termination"
	"github.com/trellisdag/trellis/task"
)

// mappedWorkerDAG has a Go task mapped over an upstream list; each instance
// returns its map index and element as its run sees them.
func mappedWorkerDAG() (*dag.DAG, *task.GoTask[[]string], *task.MapTask[string, string]) {
	d := dag.New("mapw", dag.StartDate(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)))
	list := task.Go("list", func(context.Context, *task.Run) ([]string, error) { return []string{"a", "b", "c"}, nil })
	upper := task.Map("upper", list, func(_ context.Context, r *task.Run, item string) (string, error) {
		raw, err := r.Item()
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%d:%s:%s", r.MapIndex(), strings.ToUpper(item), raw), nil
	})
	d.Add(list, upper)
	return d, list, upper
}

// mappedTry is instance k of upper as the scheduler hands it to an
// executor; withItem says whether its inputs carry the element.
func mappedTry(upper task.Task, k int, withItem bool) executor.Try {
	info := task.Info{DAGID: "mapw", TaskID: upper.ID(), RunID: "manual__1", Try: 1, MaxTries: 1, MapIndex: k,
		LogicalDate: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
	var in task.Inputs = task.InputsFunc(func(id string) ([]byte, bool, error) {
		if id == "list" {
			return []byte(`["a","b","c"]`), true, nil
		}
		return nil, false, nil
	})
	if withItem {
		in = task.WithItem(in, json.RawMessage(fmt.Sprintf("%q", []string{"a", "b", "c"}[k])))
	}
	return executor.Try{Key: executor.Key{Run: 1, DAGID: "mapw", RunID: "manual__1", TaskID: task.InstanceID(upper.ID(), k), Try: 1},
		Task: upper, Info: info, Inputs: in}
}

// runWorker writes the try's context as a worker pod would get it and runs
// task-run on it in-process; it returns the reported end.
func runWorker(t *testing.T, r *Runner, tr executor.Try, args ...string) (termination.Message, error) {
	t.Helper()
	b, err := tryContext(tr, true)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ctxFile, term := filepath.Join(dir, "context.json"), filepath.Join(dir, "termination-log")
	if err := os.WriteFile(ctxFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	info := withMapIndex(tr).Info
	argv := k8s.WorkerArgs(info)[1:] // after "task-run"
	argv = append(argv[:len(argv)-1], ctxFile, "--termination-log", term)
	argv = append(argv, args...)
	if err := cmdTaskRun(context.Background(), r, argv); err != nil {
		return termination.Message{}, err
	}
	raw, err := os.ReadFile(term)
	if err != nil {
		t.Fatal(err)
	}
	m, ok := termination.Decode(string(raw))
	if !ok {
		t.Fatalf("termination message %q", raw)
	}
	return m, nil
}

// TestWorkerRunsMappedInstance: the context of a mapped instance's worker
// carries its map index and element, so task-run's run has MapIndex and
// Item, whether the scheduler handed the element over (task.WithItem) or it
// is read from the list; a worker given another map index refuses the
// context; the isolated child is told the task and the map index apart.
func TestWorkerRunsMappedInstance(t *testing.T) {
	d, _, upper := mappedWorkerDAG()
	var out strings.Builder
	r := New(Config{Stdout: &out, Stderr: &out, Getenv: func(string) string { return "" }}, d)
	for k, withItem := range []bool{true, false, true} {
		m, err := runWorker(t, r, mappedTry(upper, k, withItem))
		if err != nil {
			t.Fatalf("instance %d: %v\n%s", k, err, out.String())
		}
		want := fmt.Sprintf(`"%d:%s:\"%s\""`, k, strings.ToUpper([]string{"a", "b", "c"}[k]), []string{"a", "b", "c"}[k])
		if m.Status != termination.Succeeded || string(m.Result) != want {
			t.Errorf("instance %d: %v %s %q, want result %s", k, m.Status, m.Result, m.Error, want)
		}
	}

	// The context is for instance 1; arguments naming instance 2 are refused.
	tr := mappedTry(upper, 1, true)
	b, err := tryContext(tr, true)
	if err != nil {
		t.Fatal(err)
	}
	ctxFile := filepath.Join(t.TempDir(), "context.json")
	os.WriteFile(ctxFile, b, 0o600)
	err = cmdTaskRun(context.Background(), r, []string{"--dag", "mapw", "--run", "manual__1", "--task", "upper", "--map-index", "2",
		"--try", "1", "--context", ctxFile, "--termination-log", filepath.Join(t.TempDir(), "t")})
	var usage *UsageError
	if !errors.As(err, &usage) || !strings.Contains(err.Error(), "map index 1") {
		t.Errorf("task-run with the wrong map index: %v", err)
	}

	cmd, err := localChild(context.Background(), tr, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cmd.Args[1:], " "); !strings.Contains(got, "--task upper --map-index 1 --try 1") {
		t.Errorf("isolated child's arguments: %s", got)
	}
}

// TestMappedContextLeavesOutLargeList: when the list a task is mapped over
// makes a worker's context too large for a pod, the context keeps the
// element and leaves the list out.
func TestMappedContextLeavesOutLargeList(t *testing.T) {
	_, _, upper := mappedWorkerDAG()
	big := make([]string, 3000)
	for i := range big {
		big[i] = strings.Repeat("x", 100)
	}
	list, _ := json.Marshal(big)
	tr := mappedTry(upper, 7, false)
	tr.Inputs = task.InputsFunc(func(id string) ([]byte, bool, error) { return list, id == "list", nil })
	b, err := tryContext(tr, true)
	if err != nil {
		t.Fatal(err)
	}
	var tc k8s.TryContext
	if err := json.Unmarshal(b, &tc); err != nil {
		t.Fatal(err)
	}
	if _, ok := tc.Inputs["list"]; ok || tc.Index() != 7 || string(tc.Item) != `"`+big[7]+`"` {
		t.Errorf("context: inputs %d, map index %d, item %.20s", len(tc.Inputs), tc.MapIndex, tc.Item)
	}
}

// TestBuildPodNormalizesMapIndex: a try of a task that is not mapped gets
// no map index in its pod whatever Info.MapIndex holds (a zero Info has 0),
// and a mapped instance's pod is named for its key.
func TestBuildPodNormalizesMapIndex(t *testing.T) {
	d, list, upper := mappedWorkerDAG()
	r := New(Config{Getenv: func(string) string { return "" }}, d)
	ks, err := r.newKubeSetup(kubeOptions{namespace: "data", image: "img:1", instance: "inst"}, filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	plain := executor.Try{Key: executor.Key{DAGID: "mapw", RunID: "manual__1", TaskID: "list", Try: 1}, Task: list,
		Info: task.Info{DAGID: "mapw", TaskID: "list", RunID: "manual__1", Try: 1}}
	pod, err := ks.buildPod(context.Background(), plain, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := pod.Labels[k8s.LabelMapIndex]; ok || pod.Name != k8s.PodName("mapw", "manual__1", "list", 1) {
		t.Errorf("unmapped task's pod %s labels %v", pod.Name, pod.Labels)
	}
	tr := mappedTry(upper, 2, true)
	pod, err = ks.buildPod(context.Background(), tr, true)
	if err != nil {
		t.Fatal(err)
	}
	if pod.Labels[k8s.LabelMapIndex] != "2" || pod.Name != k8s.PodName("mapw", "manual__1", "upper[2]", 1) {
		t.Errorf("mapped instance's pod %s labels %v", pod.Name, pod.Labels)
	}
}
