package runs_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/internal/runs"
	"github.com/trellisdag/trellis/internal/store"
	"github.com/trellisdag/trellis/task"
)

// TestClear: one rule for the CLI and the API: failed-only picks failed and
// upstream_failed tasks; a chosen task in flight refuses the whole clear and
// changes nothing; tasks in state none are left alone.
func TestClear(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "t.db"), store.Options{Sync: store.SyncNormal})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	d := dag.New("c", dag.DefaultRetries(1, 0))
	noop := func(id string) *task.GoTask[int] {
		return task.Go(id, func(context.Context, *task.Run) (int, error) { return 0, nil })
	}
	a, b, c, e := noop("a"), noop("b"), noop("c"), noop("e")
	d.Add(a, b, c, e)
	task.Chain(a, b, c)
	run, err := runs.Create(ctx, st, d, runs.Spec{Type: task.RunManual, LogicalDate: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	set := func(id string, path ...task.State) {
		t.Helper()
		from := task.StateNone
		for i, to := range path {
			var bt store.Batch
			ti := store.TaskInstance{Run: run.ID, TaskID: id, State: to, MaxTries: 2}
			if to != task.StateScheduled {
				ti.Try = 1
			}
			if i == 0 {
				bt.SetRun(store.RunChange{Run: run.ID, From: task.RunQueued, To: task.RunRunning, At: at})
				if id != "a" {
					bt = store.Batch{}
				}
			}
			bt.SetTI(store.TIChange{From: from, TI: ti, At: at})
			if err := st.Apply(ctx, &bt); err != nil {
				t.Fatalf("%s -> %s: %v", id, to, err)
			}
			from = to
		}
	}
	set("a", task.StateScheduled, task.StateQueued, task.StateSuccess)
	set("b", task.StateScheduled, task.StateQueued, task.StateFailed)
	set("c", task.StateUpstreamFailed)
	set("e", task.StateScheduled, task.StateQueued, task.StateRunning)
	run, _ = st.RunByID(ctx, run.ID)

	ids, err := runs.Clear(ctx, st, d, run, nil, runs.ClearOptions{FailedOnly: true})
	if err != nil || strings.Join(ids, ",") != "b,c" {
		t.Fatalf("failed only: %v, %v; want b,c", ids, err)
	}
	ids, err = runs.Clear(ctx, st, d, run, []task.Task{a, e}, runs.ClearOptions{})
	if !errors.Is(err, store.ErrActive) || !strings.Contains(err.Error(), `task "e" of run`) || ids != nil {
		t.Fatalf("with a task in flight: %v, %v; want ErrActive naming e", ids, err)
	}
	if ti, _ := st.TaskInstance(ctx, run.ID, "a"); ti.State != task.StateSuccess {
		t.Errorf("a = %s after a refused clear, want success (nothing changed)", ti.State)
	}
	ids, err = runs.Clear(ctx, st, d, run, []task.Task{a}, runs.ClearOptions{Downstream: true})
	if err != nil || strings.Join(ids, ",") != "a" {
		t.Errorf("a with downstream (b, c already none): %v, %v", ids, err)
	}
}

// TestMarkAndDelete: marking checks the state and the task; deleting refuses
// an active run and removes a finished one.
func TestMarkAndDelete(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "t.db"), store.Options{Sync: store.SyncNormal})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	d := dag.New("m")
	d.Add(task.Go("a", func(context.Context, *task.Run) (int, error) { return 0, nil }))
	run, err := runs.Create(ctx, st, d, runs.Spec{Type: task.RunManual, LogicalDate: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := runs.Mark(ctx, st, d, run, "a", task.StateSkipped, ""); !errors.Is(err, runs.ErrBadState) {
		t.Errorf("mark skipped: %v", err)
	}
	if _, err := runs.Mark(ctx, st, d, run, "nope", task.StateSuccess, ""); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("mark an unknown task: %v", err)
	}
	if err := runs.Delete(ctx, st, run); !errors.Is(err, store.ErrRunActive) {
		t.Errorf("delete a queued run: %v", err)
	}
	from, err := runs.Mark(ctx, st, d, run, "a", task.StateFailed, "by hand")
	if err != nil || from != task.StateNone {
		t.Fatalf("mark failed: %v, %v", from, err)
	}
	if ti, _ := st.TaskInstance(ctx, run.ID, "a"); ti.State != task.StateFailed || ti.Error != "by hand" {
		t.Errorf("a = %+v", ti)
	}
	var b store.Batch
	b.SetRun(store.RunChange{Run: run.ID, From: task.RunQueued, To: task.RunFailed, At: time.Now()})
	if err := st.Apply(ctx, &b); err != nil {
		t.Fatal(err)
	}
	if err := runs.Delete(ctx, st, run); err != nil {
		t.Fatal(err)
	}
	if _, err := st.RunByID(ctx, run.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the run is still there: %v", err)
	}
}
