package runner

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/internal/store"
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
	render := r.podYAML(nil, filepath.Join(t.TempDir(), "t.db"))
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
