package scheduler_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/executor"
	"github.com/trellisdag/trellis/internal/store"
	"github.com/trellisdag/trellis/task"
)

// TestRecoverAfterCrash starts a scheduler on a store that a crashed process left
// mid-run: a succeeded task (not run again), a running one and a queued one
// (the local executor may have started it before its running state was
// committed). Each of the last two is interrupted: its try is ended and kept,
// its number never reused, and the task runs again without spending a retry.
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
	for _, id := range []string{"running", "queued"} {
		if got := states[id]; got.Try != 2 || got.MaxTries != 3 {
			t.Errorf("%s task: try %d of %d, want 2 of 3 (the interrupted try is kept, and costs no retry)", id, got.Try, got.MaxTries)
		}
		tries, err := e.st.Tries(ctx, run.ID, id)
		if err != nil {
			t.Fatal(err)
		}
		if len(tries) != 2 || !strings.HasPrefix(tries[0].Error, executor.InterruptedPrefix) {
			t.Errorf("tries of %s = %+v, want the interrupted first try kept", id, tries)
		}
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

// TestInterruptedTooOften: a task whose tries a crash of the runner
// interrupted twice in a row, found in flight a third time, is the likely
// cause of the crashes: it fails instead of running again.
func TestInterruptedTooOften(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	d := dag.New("crashy", dag.DefaultRetries(0, 0))
	d.Add(task.Go("boom", func(context.Context, *task.Run) (int, error) { calls.Add(1); return 1, nil }))
	e := setup(t, []*dag.DAG{d})
	run := e.trigger(d, "r1")
	ctx := context.Background()
	at := time.Now()
	ti := func(s task.State, try, maxTries int, msg string) store.TaskInstance {
		return store.TaskInstance{Run: run.ID, TaskID: "boom", State: s, Try: try, MaxTries: maxTries, Executor: "local", Error: msg}
	}
	interrupted := executor.InterruptedPrefix + "the runner stopped while the try was running"
	steps := []store.TIChange{
		{From: task.StateNone, TI: ti(task.StateScheduled, 0, 1, "")},
	}
	for try := 1; try <= 3; try++ {
		steps = append(steps,
			store.TIChange{From: task.StateScheduled, TI: ti(task.StateQueued, try, try, "")},
			store.TIChange{From: task.StateQueued, TI: ti(task.StateRunning, try, try, "")})
		if try < 3 { // the first two crashed under it and were relaunched
			steps = append(steps,
				store.TIChange{From: task.StateRunning, TI: ti(task.StateUpForRetry, try, try+1, interrupted)},
				store.TIChange{From: task.StateUpForRetry, TI: ti(task.StateScheduled, try, try+1, "")})
		}
	}
	var b store.Batch
	b.SetRun(store.RunChange{Run: run.ID, From: task.RunQueued, To: task.RunRunning, At: at})
	if err := e.st.Apply(ctx, &b); err != nil {
		t.Fatal(err)
	}
	for i, c := range steps {
		var b store.Batch
		c.At = at
		b.SetTI(c)
		if err := e.st.Apply(ctx, &b); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}

	e.runUntilIdle()
	e.expect(run, task.RunFailed, map[string]task.State{"boom": task.StateFailed})
	got := e.states(run)["boom"]
	if got.Try != 3 || !strings.Contains(got.Error, "the runner died while this task ran, 3 tries in a row: the task is the likely cause") {
		t.Errorf("boom: try %d, error %q", got.Try, got.Error)
	}
	if calls.Load() != 0 {
		t.Errorf("the likely cause ran again %d times", calls.Load())
	}
}
