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

// TestWaitingForSetup: a task whose direct upstream is done but whose
// indirect setup is not waits for the setup (Airflow's setup constraint); a
// deferred sensor says when it pokes next.
func TestWaitingForSetup(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "t.db"), store.Options{Sync: store.SyncNormal})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	d := dag.New("w")
	noop := func(id string, opts ...task.Option) *task.GoTask[int] {
		return task.Go(id, func(context.Context, *task.Run) (int, error) { return 1, nil }, opts...)
	}
	s, x, w := noop("s", task.AsSetup()), noop("x"), noop("w")
	sensor := task.Sensor("wait", func(context.Context, *task.Run) (bool, error) { return false, nil })
	d.Add(s, x, w, sensor)
	task.Chain(s, x, w)
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	run := store.Run{ID: 1, DAGID: "w", RunID: "r", State: task.RunRunning}
	next := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	tis := []store.TaskInstance{
		{TaskID: "s", State: task.StateRunning}, {TaskID: "x", State: task.StateSuccess}, {TaskID: "w", State: task.StateNone},
		{TaskID: "wait", State: task.StateDeferred, Pokes: 3, NextRetry: next, Started: next.Add(-time.Hour)},
	}
	why, err := runs.Waiting(ctx, st, d, run, tis)
	if err != nil {
		t.Fatal(err)
	}
	if why["w"] != "setup not done (the setup constraint): s" {
		t.Errorf("w: %q", why["w"])
	}
	if !strings.Contains(why["wait"], "after 3 poke(s); next poke at 2026-01-01T12:00:00Z (it holds no slot)") {
		t.Errorf("deferred sensor: %q", why["wait"])
	}
}
