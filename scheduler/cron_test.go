package scheduler_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/internal/store"
	"github.com/trellisdag/trellis/scheduler/schedulertest"
	"github.com/trellisdag/trellis/task"
)

// cronLife runs one scheduler process (a "life" of serve) until stopped.
type cronLife struct {
	cancel context.CancelFunc
	done   chan error
}

func startCron(t *testing.T, e *env, clock *schedulertest.Clock) *cronLife {
	t.Helper()
	cfg := e.configIdle()
	cfg.ExitWhenIdle = false
	cfg.Cron = true
	cfg.Clock = clock
	s := mustNew(t, cfg)
	e.sched.Store(s)
	ctx, cancel := context.WithCancel(context.Background())
	l := &cronLife{cancel: cancel, done: make(chan error, 1)}
	go func() { l.done <- s.Run(ctx) }()
	return l
}

func (l *cronLife) stop(t *testing.T) {
	t.Helper()
	l.cancel()
	select {
	case err := <-l.done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("scheduler did not stop")
	}
}

// waitCreated waits (bounded) until the scheduler announced the creation of the
// scheduled runs with exactly these logical dates, in any order.
func waitCreated(t *testing.T, e *env, want ...time.Time) {
	t.Helper()
	pending := map[string]bool{}
	for _, w := range want {
		pending[fmt.Sprintf("scheduled__%s", w.UTC().Format("2006-01-02T15:04:05-07:00"))] = true
	}
	timeout := time.After(20 * time.Second)
	for len(pending) > 0 {
		select {
		case ev := <-e.events:
			if ev.TaskID == "" && ev.RunState == task.RunQueued {
				if !pending[ev.RunID] {
					t.Fatalf("unexpected run created: %s (waiting for %v)", ev.RunID, pending)
				}
				delete(pending, ev.RunID)
			}
		case <-timeout:
			t.Fatalf("runs not created within 20s: %v", pending)
		}
	}
}

// TestCronThreeDaysWithOutage runs an hourly schedule over 3 days on a fake clock,
// with the scheduler down for 6 hours in the middle, and checks the exact set of
// runs: every hour with catchup, only the newest missed hour without.
func TestCronThreeDaysWithOutage(t *testing.T) {
	t.Parallel()
	for _, catchup := range []bool{true, false} {
		t.Run(fmt.Sprintf("catchup=%v", catchup), func(t *testing.T) {
			t.Parallel()
			t0 := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
			d := dag.New("hourly", dag.Schedule("@hourly"), dag.StartDate(t0), dag.Catchup(catchup))
			d.Add(noop("work"))
			e := setup(t, []*dag.DAG{d})
			clock := schedulertest.NewClock(t0.Add(time.Minute))
			hour := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
			var want []time.Time

			life := startCron(t, e, clock)
			for h := 1; h <= 33; h++ {
				clock.Set(hour(h).Add(time.Minute))
				waitCreated(t, e, hour(h-1))
				want = append(want, hour(h-1))
			}
			life.stop(t)

			// A restart at the same moment creates nothing new.
			life = startCron(t, e, clock)
			clock.Set(hour(34).Add(time.Minute))
			waitCreated(t, e, hour(33))
			want = append(want, hour(33))
			life.stop(t)

			// Six hours down, then up again.
			clock.Set(hour(40).Add(time.Minute))
			life = startCron(t, e, clock)
			if catchup {
				missed := []time.Time{hour(34), hour(35), hour(36), hour(37), hour(38), hour(39)}
				waitCreated(t, e, missed...)
				want = append(want, missed...)
			} else {
				waitCreated(t, e, hour(39))
				want = append(want, hour(39))
			}
			for h := 41; h <= 72; h++ {
				clock.Set(hour(h).Add(time.Minute))
				waitCreated(t, e, hour(h-1))
				want = append(want, hour(h-1))
			}
			life.stop(t)

			got, err := e.st.Runs(context.Background(), store.RunFilter{DAGID: "hourly", Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			gotSet := map[time.Time]int{}
			for _, r := range got {
				gotSet[r.LogicalDate]++
				if r.Type != task.RunScheduled || !r.IntervalEnd.Equal(r.IntervalStart.Add(time.Hour)) {
					t.Errorf("run %s: type %s, interval %s..%s", r.RunID, r.Type, r.IntervalStart, r.IntervalEnd)
				}
			}
			if len(got) != len(want) {
				t.Errorf("%d runs, want %d", len(got), len(want))
			}
			for _, w := range want {
				if gotSet[w] != 1 {
					t.Errorf("run at %s: %d of them, want 1", w, gotSet[w])
				}
			}
			rec, err := e.st.DAG(context.Background(), "hourly")
			if err != nil {
				t.Fatal(err)
			}
			if !rec.LastIntervalStart.Equal(hour(71)) {
				t.Errorf("last interval start = %s, want %s", rec.LastIntervalStart, hour(71))
			}
		})
	}
}

// TestPausedDAGCreatesNoRuns checks that a paused DAG creates nothing, and that
// on unpause catchup decides what is created.
func TestPausedDAGCreatesNoRuns(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	d := dag.New("paused", dag.Schedule("@hourly"), dag.StartDate(t0), dag.Catchup(false))
	d.Add(noop("work"))
	e := setup(t, []*dag.DAG{d})
	if err := e.st.SetPaused(context.Background(), "paused", true); err != nil {
		t.Fatal(err)
	}
	clock := schedulertest.NewClock(t0.Add(5*time.Hour + time.Minute))
	life := startCron(t, e, clock)
	life.stop(t)
	if runs, _ := e.st.Runs(context.Background(), store.RunFilter{DAGID: "paused"}); len(runs) != 0 {
		t.Fatalf("paused DAG created %d runs", len(runs))
	}
	if err := e.st.SetPaused(context.Background(), "paused", false); err != nil {
		t.Fatal(err)
	}
	life = startCron(t, e, clock)
	waitCreated(t, e, t0.Add(4*time.Hour)) // catchup off: only the newest complete interval
	life.stop(t)
}

// TestDependsOnPast: a task that failed in the previous run holds the same task of
// the next run; clearing it releases both.
func TestDependsOnPast(t *testing.T) {
	t.Parallel()
	var fails atomic.Bool
	fails.Store(true)
	d := dag.New("past", dag.DefaultRetries(0, 0))
	flaky := task.Go("flaky", func(ctx context.Context, r *task.Run) (int, error) {
		if fails.Load() && r.Info().RunID == "r1" {
			return 0, fmt.Errorf("first run fails")
		}
		return 1, nil
	}, task.DependsOnPast(true))
	d.Add(flaky)
	e := setup(t, []*dag.DAG{d})
	r1 := e.trigger(d, "r1")
	e.runUntilIdle()
	e.expect(r1, task.RunFailed, map[string]task.State{"flaky": task.StateFailed})

	// r2 is a day later: its flaky waits for r1's.
	var seeds []store.TaskSeed
	for _, t := range d.Tasks() {
		seeds = append(seeds, store.TaskSeed{TaskID: t.ID(), MaxTries: 1})
	}
	ld := r1.LogicalDate.Add(24 * time.Hour)
	r2, err := e.st.CreateRun(context.Background(), store.Run{DAGID: "past", RunID: "r2", Type: task.RunManual,
		State: task.RunQueued, LogicalDate: ld, IntervalStart: ld, IntervalEnd: ld}, seeds)
	if err != nil {
		t.Fatal(err)
	}
	cfg := e.configIdle()
	cfg.ExitWhenIdle = false
	s := mustNew(t, cfg)
	e.sched.Store(s)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx) }()
	waitRunState(t, e, "r2", task.RunRunning)
	if st := e.states(r2)["flaky"].State; st != task.StateNone {
		t.Fatalf("r2 flaky = %s, want none (waiting for r1)", st)
	}
	fails.Store(false)
	if err := e.st.Clear(ctx, r1.ID, []string{"flaky"}, func(string) int { return 0 }); err != nil {
		t.Fatal(err)
	}
	s.Wake()
	waitRunState(t, e, "r2", task.RunSuccess)
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	e.expect(r1, task.RunSuccess, nil)
}

// TestPrevDataIntervalStartSuccess: a run's template context carries the data
// interval start of the latest earlier successful run (none for the first).
func TestPrevDataIntervalStartSuccess(t *testing.T) {
	t.Parallel()
	got := make(chan time.Time, 2)
	d := dag.New("prev")
	d.Add(task.Go("see", func(ctx context.Context, r *task.Run) (int, error) {
		got <- r.Template().PrevDataIntervalStartSuccess
		return 0, nil
	}))
	e := setup(t, []*dag.DAG{d})
	r1 := e.trigger(d, "r1")
	e.runUntilIdle()
	if first := <-got; !first.IsZero() {
		t.Errorf("first run: prev success = %s, want none", first)
	}
	var seeds []store.TaskSeed
	for _, t := range d.Tasks() {
		seeds = append(seeds, store.TaskSeed{TaskID: t.ID(), MaxTries: 1})
	}
	ld := r1.LogicalDate.Add(24 * time.Hour)
	if _, err := e.st.CreateRun(context.Background(), store.Run{DAGID: "prev", RunID: "r2", Type: task.RunManual,
		State: task.RunQueued, LogicalDate: ld, IntervalStart: ld, IntervalEnd: ld.Add(24 * time.Hour)}, seeds); err != nil {
		t.Fatal(err)
	}
	e.runUntilIdle()
	if second := <-got; !second.Equal(r1.IntervalStart) {
		t.Errorf("second run: prev success = %s, want %s", second, r1.IntervalStart)
	}
}
