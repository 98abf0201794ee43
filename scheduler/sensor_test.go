package scheduler_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/scheduler"
	"github.com/trellisdag/trellis/scheduler/schedulertest"
	"github.com/trellisdag/trellis/task"
)

// runAsync runs a scheduler over e until it returns, in the background.
func (e *env) runAsync(ctx context.Context) <-chan error {
	e.t.Helper()
	s, err := scheduler.New(e.configIdle())
	if err != nil {
		e.t.Fatal(err)
	}
	e.sched.Store(s)
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx) }()
	return errc
}

// waitEvent waits for a committed event of task taskID in state want.
func (e *env) waitEvent(ctx context.Context, taskID string, want task.State) scheduler.Event {
	e.t.Helper()
	for {
		select {
		case ev := <-e.events:
			if ev.TaskID == taskID && ev.State == want {
				return ev
			}
		case <-ctx.Done():
			e.t.Fatalf("task %s never became %s", taskID, want)
		}
	}
}

// TestSensorHoldsNoSlotWhileDeferred: with parallelism 1, a sensor that is not
// met defers (releasing its slot), another DAG's task runs meanwhile, and
// once the condition holds the next poke (at the poke interval, fake clock)
// succeeds with the sensor's value, read downstream; the whole wait is one try.
func TestSensorHoldsNoSlotWhileDeferred(t *testing.T) {
	t.Parallel()
	var ready atomic.Bool
	var pokes atomic.Int32
	wait := dag.New("wait", dag.DefaultRetries(0, 0))
	s := task.SensorOf("file", func(ctx context.Context, r *task.Run) (bool, string, error) {
		pokes.Add(1)
		if !ready.Load() {
			return false, "", nil
		}
		return true, "/data/in.csv", nil
	}, task.PokeInterval(time.Minute))
	use := task.Go("use", func(ctx context.Context, r *task.Run) (string, error) {
		p, err := task.Output(r, s)
		return "read " + p, err
	})
	wait.Add(s, use)
	s.Then(use)
	other := dag.New("other")
	other.Add(noop("x"))
	clock := schedulertest.NewClock(time.Now())
	e := setup(t, []*dag.DAG{wait, other}, func(c *scheduler.Config) { c.Clock, c.Parallelism = clock, 1 })
	run := e.trigger(wait, "r1")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errc := e.runAsync(ctx)

	e.waitEvent(ctx, "file", task.StateDeferred)
	ti := e.states(run)["file"]
	if gap := ti.NextRetry.Sub(ti.Started); ti.Pokes != 1 || ti.Try != 1 || gap < 59*time.Second || gap > 61*time.Second {
		t.Errorf("deferred sensor = %+v, want 1 poke, try 1, next poke a minute later", ti)
	}
	otherRun := e.trigger(other, "o1")
	e.sched.Load().Wake()
	e.waitEvent(ctx, "x", task.StateSuccess) // the only slot was free
	ready.Store(true)
	clock.Advance(time.Minute)
	e.waitEvent(ctx, "use", task.StateSuccess)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	e.expect(run, task.RunSuccess, map[string]task.State{"file": task.StateSuccess, "use": task.StateSuccess})
	e.expect(otherRun, task.RunSuccess, map[string]task.State{"x": task.StateSuccess})
	if v, _, _ := e.st.XCom(ctx, run.ID, "use"); string(v) != `"read /data/in.csv"` {
		t.Errorf("use = %s, want the sensor's value read downstream", v)
	}
	if ti := e.states(run)["file"]; ti.Try != 1 || ti.Pokes != 1 || pokes.Load() != 2 {
		t.Errorf("sensor = try %d, %d pokes recorded, %d pokes made; want one try, 2 pokes", ti.Try, ti.Pokes, pokes.Load())
	}
	tries, err := e.st.Tries(ctx, run.ID, "file")
	if err != nil || len(tries) != 1 || tries[0].State != task.StateSuccess || tries[0].Ended.IsZero() {
		t.Errorf("tries = %+v, %v; want one try, ended in success", tries, err)
	}
}

// TestSensorTimeout: a sensor never met fails without retry once it has waited
// its SensorTimeout (its downstream is upstream_failed); under SoftFail it is
// skipped instead (and the run succeeds).
func TestSensorTimeout(t *testing.T) {
	t.Parallel()
	for _, soft := range []bool{false, true} {
		t.Run(map[bool]string{false: "fail", true: "soft fail"}[soft], func(t *testing.T) {
			t.Parallel()
			opts := []task.Option{task.PokeInterval(time.Minute), task.SensorTimeout(5 * time.Minute), task.Retries(2)}
			if soft {
				opts = append(opts, task.SoftFail())
			}
			d := dag.New("wait")
			s := task.Sensor("never", func(context.Context, *task.Run) (bool, error) { return false, nil }, opts...)
			after := noop("after")
			d.Add(s, after)
			s.Then(after)
			clock := schedulertest.NewClock(time.Now())
			e := setup(t, []*dag.DAG{d}, func(c *scheduler.Config) { c.Clock = clock })
			run := e.trigger(d, "r1")
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			errc := e.runAsync(ctx)
			want := task.StateFailed
			if soft {
				want = task.StateSkipped
			}
			deferrals := 0
			for done := false; !done; {
				select {
				case ev := <-e.events:
					switch {
					case ev.TaskID == "never" && ev.State == task.StateDeferred:
						deferrals++
						if deferrals > 10 {
							t.Fatal("the sensor outlived its timeout")
						}
						clock.Advance(time.Minute)
					case ev.TaskID == "never" && ev.State.Finished():
						if ev.State != want || !strings.Contains(ev.Error, "sensor timed out") {
							t.Fatalf("sensor ended %s (%s), want %s with the timeout", ev.State, ev.Error, want)
						}
						done = true
					}
				case <-ctx.Done():
					t.Fatal("the sensor never ended")
				}
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			if soft {
				e.expect(run, task.RunSuccess, map[string]task.State{"never": task.StateSkipped, "after": task.StateSkipped})
			} else {
				e.expect(run, task.RunFailed, map[string]task.State{"never": task.StateFailed, "after": task.StateUpstreamFailed})
			}
			// A poke a minute apart over 5 minutes: 5 deferrals, or 6 when the
			// first poke's start (the executor's clock) is a moment after the
			// fake clock's start.
			if ti := e.states(run)["never"]; ti.Try != 1 || deferrals < 5 || deferrals > 6 {
				t.Errorf("try %d after %d deferrals; want 1 try (no retry on timeout), 5 or 6 deferrals in 5 minutes", ti.Try, deferrals)
			}
		})
	}
}

// TestSensorWaitSurvivesRestart: the runner stops while a sensor is deferred;
// its next poke time is durable, and the next scheduler resumes the wait with
// the same try at that time.
func TestSensorWaitSurvivesRestart(t *testing.T) {
	t.Parallel()
	var ready atomic.Bool
	d := dag.New("wait")
	s := task.Sensor("flag", func(context.Context, *task.Run) (bool, error) { return ready.Load(), nil }, task.PokeInterval(10*time.Minute))
	d.Add(s)
	clock := schedulertest.NewClock(time.Now())
	e := setup(t, []*dag.DAG{d}, func(c *scheduler.Config) { c.Clock = clock })
	run := e.trigger(d, "r1")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	errc := e.runAsync(ctx)
	e.waitEvent(ctx, "flag", task.StateDeferred)
	cancel() // the runner stops
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	before := e.states(run)["flag"]
	if before.State != task.StateDeferred || before.NextRetry.IsZero() {
		t.Fatalf("after the stop: %+v, want deferred with its next poke time", before)
	}

	ready.Store(true)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel2()
	errc = e.runAsync(ctx2)
	clock.Set(before.NextRetry)
	e.waitEvent(ctx2, "flag", task.StateSuccess)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	e.expect(run, task.RunSuccess, map[string]task.State{"flag": task.StateSuccess})
	if ti := e.states(run)["flag"]; ti.Try != 1 {
		t.Errorf("try %d, want the wait resumed in try 1", ti.Try)
	}
}

// TestDeferredSensorCleared: mark and clear work on a deferred sensor from
// another connection (the wait ends; its try is ended).
func TestDeferredSensorCleared(t *testing.T) {
	t.Parallel()
	d := dag.New("wait")
	s := task.Sensor("flag", func(context.Context, *task.Run) (bool, error) { return false, nil }, task.PokeInterval(time.Hour))
	d.Add(s)
	clock := schedulertest.NewClock(time.Now())
	e := setup(t, []*dag.DAG{d}, func(c *scheduler.Config) { c.Clock = clock })
	run := e.trigger(d, "r1")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	errc := e.runAsync(ctx)
	e.waitEvent(ctx, "flag", task.StateDeferred)
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.MarkTask(context.Background(), run.ID, "flag", task.StateSuccess, ""); err != nil {
		t.Fatal(err)
	}
	tries, err := e.st.Tries(context.Background(), run.ID, "flag")
	if err != nil || len(tries) != 1 || tries[0].State != task.StateSuccess || tries[0].Ended.IsZero() {
		t.Errorf("tries after marking the deferred sensor = %+v, %v", tries, err)
	}
	if err := e.st.Clear(context.Background(), run.ID, []string{"flag"}, func(string) int { return 0 }); err != nil {
		t.Fatal(err)
	}
	if ti := e.states(run)["flag"]; ti.State != task.StateNone || ti.Pokes != 0 {
		t.Errorf("after clear: %+v", ti)
	}
}
