package runner

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/internal/store"
	"github.com/trellisdag/trellis/operators"
	"github.com/trellisdag/trellis/task"
)

func TestPodYAMLRendersTheTrysPod(t *testing.T) {
	t.Parallel()
	d := dag.New("podview")
	work := task.Go("work", func(ctx context.Context, r *task.Run) (int, error) { return 1, nil },
		task.Executor(task.ExecutorConfig{Executor: task.ExecutorKubernetes}))
	d.Add(work)
	r := New(Config{Kubernetes: KubernetesConfig{Image: "trellis.local/team:1", Namespace: "data"},
		Getenv: func(string) string { return "" }}, d)
	render := r.podYAML(nil, openStore(t))
	ld := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	run := store.Run{ID: 7, DAGID: "podview", RunID: "manual__2024-05-01T00:00:00+00:00", Type: task.RunManual,
		LogicalDate: ld, IntervalStart: ld, IntervalEnd: ld}
	b, err := render(d, work, run, store.TaskInstance{TaskID: "work", Try: 2, MaxTries: 3})
	if err != nil {
		t.Fatal(err)
	}
	y := string(b)
	for _, want := range []string{"image: trellis.local/team:1", "name: base", "namespace: data", "task-run", "trellis.dev/task: work", `trellis.dev/try: "2"`} {
		if !strings.Contains(y, want) {
			t.Errorf("pod YAML lacks %q:\n%s", want, y)
		}
	}
}

func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "t.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestPodYAMLReadsTheRunsUpstreamResults(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dag.New("podview")
	extract := task.Go("extract", func(ctx context.Context, r *task.Run) (string, error) { return "s3://bucket/x.csv", nil })
	load := operators.Pod("load", operators.PodSpec{Image: "loader:1", Args: []string{`{{ .Result "extract" }}`}})
	d.Add(extract, load)
	extract.Then(load)
	st := openStore(t)
	ld := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	run, err := st.CreateRun(ctx, store.Run{DAGID: "podview", RunID: "manual__2024-05-01T00:00:00+00:00", Type: task.RunManual,
		LogicalDate: ld, IntervalStart: ld, IntervalEnd: ld}, []store.TaskSeed{{TaskID: "extract", MaxTries: 1}, {TaskID: "load", MaxTries: 1}})
	if err != nil {
		t.Fatal(err)
	}
	r := New(Config{Kubernetes: KubernetesConfig{Namespace: "data"}, Getenv: func(string) string { return "" }}, d)
	render := r.podYAML(nil, st)
	if _, err := render(d, load, run, store.TaskInstance{TaskID: "load", Try: 1, MaxTries: 1}); !errors.Is(err, task.ErrNoResult) {
		t.Fatalf("before extract stored its result: err = %v, want ErrNoResult", err)
	}
	var b store.Batch
	b.PutXCom(run.ID, "extract", []byte(`"s3://bucket/x.csv"`))
	if err := st.Apply(ctx, &b); err != nil {
		t.Fatal(err)
	}
	y, err := render(d, load, run, store.TaskInstance{TaskID: "load", Try: 1, MaxTries: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(y), "- s3://bucket/x.csv") {
		t.Errorf("pod YAML lacks the upstream result in args:\n%s", y)
	}
}
