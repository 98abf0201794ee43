package scheduler_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/internal/store"
	"github.com/trellisdag/trellis/task"
)

// TestRunMeetsNewerDefinition: a run created by an earlier binary (its DAG had
// tasks a and old) is loaded by a scheduler whose DAG has a, b (new, after a)
// and no longer old. As Airflow's verify_integrity: b gets an instance and
// runs, old becomes removed (kept, ignored by the run's state), and the run
// completes; before, the scheduler stopped with an error for every DAG.
func TestRunMeetsNewerDefinition(t *testing.T) {
	t.Parallel()
	v1 := dag.New("evo")
	v1.Add(noop("a"), noop("old"))
	v2 := dag.New("evo")
	a, b := noop("a"), noop("b")
	v2.Add(a, b)
	a.Then(b)
	other := dag.New("other")
	other.Add(noop("x"))

	e := setup(t, []*dag.DAG{v2, other})
	run := e.trigger(v1, "before-the-deploy") // instances of a and old
	otherRun := e.trigger(other, "r1")
	e.runUntilIdle()
	e.expect(run, task.RunSuccess, map[string]task.State{"a": task.StateSuccess, "b": task.StateSuccess, "old": task.StateRemoved})
	e.expect(otherRun, task.RunSuccess, map[string]task.State{"x": task.StateSuccess})
}

// TestRemovedTaskKeptAndRestored: a task that leaves the DAG keeps its try and
// result in the runs that ran it (state removed); cleared under a definition
// that has it again, it is restored and runs its next try number (a try
// number is never reused), while a task only the other definition had becomes
// removed in turn.
func TestRemovedTaskKeptAndRestored(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var oldRuns []int
	def := func(withOld bool) *dag.DAG {
		d := dag.New("evo")
		a := noop("a")
		if withOld {
			old := task.Go("old", func(_ context.Context, r *task.Run) (int, error) {
				oldRuns = append(oldRuns, r.Info().Try)
				return r.Info().Try, nil
			})
			d.Add(a, old)
			a.Then(old)
			return d
		}
		b := noop("b")
		d.Add(a, b)
		a.Then(b)
		return d
	}
	v1, v2 := def(true), def(false)
	e := setup(t, []*dag.DAG{v1})
	run := e.trigger(v1, "r1")
	e.runUntilIdle()
	e.expect(run, task.RunSuccess, map[string]task.State{"a": task.StateSuccess, "old": task.StateSuccess})

	// Deploy v2 (no old, a new b) and clear a: old is removed, b runs.
	e.dags = []*dag.DAG{v2}
	if err := e.st.Clear(ctx, run.ID, []string{"a"}, func(string) int { return 0 }); err != nil {
		t.Fatal(err)
	}
	e.runUntilIdle()
	e.expect(run, task.RunSuccess, map[string]task.State{"a": task.StateSuccess, "b": task.StateSuccess, "old": task.StateRemoved})
	if ti := e.states(run)["old"]; ti.Try != 1 {
		t.Errorf("removed old has try %d, want its try 1 kept", ti.Try)
	}
	if v, ok, err := e.st.XCom(ctx, run.ID, "old"); err != nil || !ok || string(v) != "1" {
		t.Errorf("removed old's result = %s, %v, %v; want 1 kept", v, ok, err)
	}
	if r, _ := e.st.RunByID(ctx, run.ID); r.DAGVersion != v2.Version() {
		t.Errorf("run's DAG version = %s, want v2's %s", r.DAGVersion, v2.Version())
	}

	// Back to v1 and clear a: old is restored and runs try 2; b is removed.
	e.dags = []*dag.DAG{v1}
	if err := e.st.Clear(ctx, run.ID, []string{"a"}, func(string) int { return 0 }); err != nil {
		t.Fatal(err)
	}
	e.runUntilIdle()
	e.expect(run, task.RunSuccess, map[string]task.State{"a": task.StateSuccess, "old": task.StateSuccess, "b": task.StateRemoved})
	if len(oldRuns) != 2 || oldRuns[1] != 2 {
		t.Errorf("old ran tries %v, want [1 2]", oldRuns)
	}
	tries, err := e.st.Tries(ctx, run.ID, "old")
	if err != nil || len(tries) != 2 {
		t.Fatalf("tries of old = %+v, %v; want 2", tries, err)
	}
}

// TestRemovedWhileInFlight: the earlier binary died while a try of a task the
// new definition lacks was running. The instance becomes removed, its try is
// ended with the reason (no runner of this definition can run or report it),
// and the run completes without it.
func TestRemovedWhileInFlight(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	v1 := dag.New("evo")
	v1.Add(noop("a"), noop("gone"))
	v2 := dag.New("evo")
	v2.Add(noop("a"))
	e := setup(t, []*dag.DAG{v2})
	run := e.trigger(v1, "r1")
	at := time.Now()
	ti := func(s task.State, try int) store.TaskInstance {
		return store.TaskInstance{Run: run.ID, TaskID: "gone", State: s, Try: try, MaxTries: 1, Executor: "local"}
	}
	for i, step := range []func(b *store.Batch){
		func(b *store.Batch) {
			b.SetRun(store.RunChange{Run: run.ID, From: task.RunQueued, To: task.RunRunning, At: at})
			b.SetTI(store.TIChange{From: task.StateNone, TI: ti(task.StateScheduled, 0), At: at})
		},
		func(b *store.Batch) {
			b.SetTI(store.TIChange{From: task.StateScheduled, TI: ti(task.StateQueued, 1), At: at})
		},
		func(b *store.Batch) {
			r := ti(task.StateRunning, 1)
			r.Started = at
			b.SetTI(store.TIChange{From: task.StateQueued, TI: r, At: at})
		},
	} {
		var b store.Batch
		step(&b)
		if err := e.st.Apply(ctx, &b); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	e.runUntilIdle()
	e.expect(run, task.RunSuccess, map[string]task.State{"a": task.StateSuccess, "gone": task.StateRemoved})
	tries, err := e.st.Tries(ctx, run.ID, "gone")
	if err != nil || len(tries) != 1 {
		t.Fatalf("tries of gone = %+v, %v", tries, err)
	}
	if tr := tries[0]; tr.State != task.StateFailed || tr.Ended.IsZero() || !strings.Contains(tr.Error, "removed from the DAG's definition") {
		t.Errorf("try of gone = %+v, want ended as failed with the reason", tr)
	}
}
