package scheduler_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/internal/store"
	"github.com/trellisdag/trellis/task"
)

// TestRecoverAfterCrash starts a scheduler on a store that a crashed process left
// mid-run: a succeeded task (not run again), a running one (its try failed and
// retried) and a queued one (run again without spending a try).
func TestRecoverAfterCrash(t *testing.T) {
	t.Parallel()
	var doneCalls, runningCalls, queuedCalls atomic.Int32
	d := dag.New("crash", dag.DefaultRetries(1, 0))
	done := task.Go("done", func(ctx context.Context, r *task.Run) (int, error) { doneCalls.Add(1); return 7, nil })
	running := task.Go("running", func(ctx context.Context, r *task.Run) (int, error) {
		runningCalls.Add(1)
		v, err := task.Output(r, done)
		return v + r.Info().Try, err
	})
	queued := task.Go("queued", func(ctx context.Context, r *task.Run) (int, error) {
		queuedCalls.Add(1)
		return r.Info().Try, nil
	})
	d.Add(done, running, queued)
	done.Then(running, queued)
	e := setup(t, []*dag.DAG{d})
	run := e.trigger(d, "r1")

	// What the crashed process had committed.
	ctx := context.Background()
	at := time.Now()
	ti := func(id string, s task.State, try int) store.TaskInstance {
		return store.TaskInstance{Run: run.ID, TaskID: id, State: s, Try: try, MaxTries: 2, Executor: "local"}
	}
	steps := []func(b *store.Batch){
		func(b *store.Batch) {
			b.SetRun(store.RunChange{Run: run.ID, From: task.RunQueued, To: task.RunRunning, At: at})
			b.SetTI(store.TIChange{From: task.StateNone, TI: ti("done", task.StateScheduled, 0), At: at})
		},
		func(b *store.Batch) {
			b.SetTI(store.TIChange{From: task.StateScheduled, TI: ti("done", task.StateQueued, 1), At: at})
		},
		func(b *store.Batch) {
			s := ti("done", task.StateSuccess, 1)
			s.Started, s.Ended = at, at
			b.SetTI(store.TIChange{From: task.StateQueued, TI: s, At: at})
			b.PutXCom(run.ID, "done", []byte("7"))
			b.SetTI(store.TIChange{From: task.StateNone, TI: ti("running", task.StateScheduled, 0), At: at})
			b.SetTI(store.TIChange{From: task.StateNone, TI: ti("queued", task.StateScheduled, 0), At: at})
		},
		func(b *store.Batch) {
			b.SetTI(store.TIChange{From: task.StateScheduled, TI: ti("running", task.StateQueued, 1), At: at})
			b.SetTI(store.TIChange{From: task.StateScheduled, TI: ti("queued", task.StateQueued, 1), At: at})
		},
		func(b *store.Batch) {
			r := ti("running", task.StateRunning, 1)
			r.Started = at
			b.SetTI(store.TIChange{From: task.StateQueued, TI: r, At: at})
		},
	}
	for i, step := range steps {
		var b store.Batch
		step(&b)
		if err := e.st.Apply(ctx, &b); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}

	e.runUntilIdle()
	e.expect(run, task.RunSuccess, map[string]task.State{
		"done": task.StateSuccess, "running": task.StateSuccess, "queued": task.StateSuccess,
	})
	if doneCalls.Load() != 0 {
		t.Errorf("succeeded task ran again %d times", doneCalls.Load())
	}
	states := e.states(run)
	if got := states["running"].Try; got != 2 {
		t.Errorf("running task: try %d, want 2 (the crashed try counts)", got)
	}
	if got := states["queued"].Try; got != 1 {
		t.Errorf("queued task: try %d, want 1 (a try that never started is not spent)", got)
	}
	if v, _, _ := e.st.XCom(ctx, run.ID, "running"); string(v) != "9" {
		t.Errorf("running result = %s, want 9 (7 from the stored upstream result + try 2)", v)
	}
	tries, err := e.st.Tries(ctx, run.ID, "running")
	if err != nil {
		t.Fatal(err)
	}
	if len(tries) != 2 || tries[0].State != task.StateUpForRetry {
		t.Fatalf("tries of running = %+v", tries)
	}
}

// TestClearAndWake reruns cleared tasks of a finished run in a live scheduler.
func TestClearAndWake(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	d := dag.New("clear")
	a := noop("a")
	b := task.Go("b", func(ctx context.Context, r *task.Run) (int, error) { return int(calls.Add(1)), nil })
	d.Add(a, b)
	a.Then(b)
	e := setup(t, []*dag.DAG{d})
	run := e.trigger(d, "r1")

	cfg := e.configIdle()
	cfg.ExitWhenIdle = false
	s := mustNew(t, cfg)
	e.sched.Store(s)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx) }()

	waitRunState(t, e, run.RunID, task.RunSuccess)
	if err := e.st.Clear(ctx, run.ID, []string{"b"}, func(string) int { return 0 }); err != nil {
		t.Fatal(err)
	}
	s.Wake()
	waitRunState(t, e, run.RunID, task.RunSuccess)
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 2 {
		t.Errorf("b ran %d times, want 2", calls.Load())
	}
	if v, _, _ := e.st.XCom(context.Background(), run.ID, "b"); string(v) != "2" {
		t.Errorf("b result = %s, want 2", v)
	}
}
