package runs_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/internal/runs"
	"github.com/trellisdag/trellis/internal/store"
	"github.com/trellisdag/trellis/task"
)

// TestWaiting: what each task of an active run waits for, read from a real
// store: the run's admission, a paused DAG, its upstream tasks.
func TestWaiting(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "t.db"), store.Options{Sync: store.SyncNormal})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	d := dag.New("w", dag.MaxActiveRuns(2))
	a := task.Go("a", func(context.Context, *task.Run) (int, error) { return 1, nil })
	b := task.Go("b", func(context.Context, *task.Run) (int, error) { return 1, nil })
	d.Add(a, b)
	a.Then(b)
	run, err := runs.Create(ctx, st, d, runs.Spec{Type: task.RunManual, LogicalDate: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	tis, err := st.TaskInstances(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	why, err := runs.Waiting(ctx, st, d, run, tis)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(why["a"], "the run is queued: it starts when the DAG has fewer than 2 active runs") {
		t.Errorf("a in a queued run: %q", why["a"])
	}
	run.State = task.RunRunning // as the scheduler's admission would make it
	if why, err = runs.Waiting(ctx, st, d, run, tis); err != nil || why["b"] != "upstream not done: a" || why["a"] != "" {
		t.Errorf("running run: %q, %v", why, err)
	}
	if err := st.SetPaused(ctx, "w", true); err != nil {
		t.Fatal(err)
	}
	if why, _ = runs.Waiting(ctx, st, d, run, tis); !strings.Contains(why["a"], "the DAG is paused") {
		t.Errorf("paused DAG: %q", why)
	}
	run.State = task.RunSuccess
	if why, _ = runs.Waiting(ctx, st, d, run, tis); why != nil {
		t.Errorf("a finished run waits for %q", why)
	}
}
