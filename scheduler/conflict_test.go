package scheduler_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/internal/store"
	"github.com/trellisdag/trellis/scheduler"
	"github.com/trellisdag/trellis/task"
)

// TestReportSurvivesCommitConflict: another process (a second connection to
// the same SQLite file) changes the run while a try runs, so the commit that
// carries the try's report fails its compare-and-swap. The scheduler must
// reload the run and apply the report again, not drop it (the try would stay
// running forever and the run would hang).
func TestReportSurvivesCommitConflict(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(ctx context.Context, other *store.Store, run store.Run) error
		want   task.RunState
		done   task.State
	}{
		{"clear an upstream", func(ctx context.Context, other *store.Store, run store.Run) error {
			return other.Clear(ctx, run.ID, []string{"q1"}, func(string) int { return 0 })
		}, task.RunSuccess, task.StateSuccess},
		{"mark the downstream task", func(ctx context.Context, other *store.Store, run store.Run) error {
			_, err := other.MarkTask(ctx, run.ID, "done", task.StateSuccess, "")
			return err
		}, task.RunSuccess, task.StateSuccess},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			started, release := make(chan struct{}), make(chan struct{})
			d := dag.New("slow", dag.DefaultRetries(0, 0))
			q1 := noop("q1")
			s1 := task.Go("s1", func(ctx context.Context, r *task.Run) (int, error) {
				if r.Info().Try == 1 {
					close(started)
				}
				select {
				case <-release:
					return 7, nil
				case <-ctx.Done():
					return 0, ctx.Err()
				}
			})
			done, side := noop("done"), noop("side")
			d.Add(q1, s1, done, side)
			task.Chain(q1, s1, done)
			side.Then(done)
			st, other := twoConnections(t)
			e := newEnv(t, st, []*dag.DAG{d})
			run := e.trigger(d, "r1")

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			errc := e.runAsync(ctx)
			select {
			case <-started:
			case <-ctx.Done():
				t.Fatal("s1 never started")
			}
			// side and q1 are done before s1 starts (q1 is s1's upstream; side is
			// waited for here through the store).
			for e.states(run)["side"].State != task.StateSuccess {
				select {
				case <-e.events:
				case <-ctx.Done():
					t.Fatal("side never finished")
				}
			}
			if err := tc.change(ctx, other, run); err != nil {
				t.Fatal(err)
			}
			close(release)
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			if ctx.Err() != nil {
				t.Fatalf("the run never finished: s1's report was lost (states %v)", e.states(run))
			}
			e.expect(run, tc.want, map[string]task.State{"s1": task.StateSuccess, "done": tc.done})
			if ti := e.states(run)["s1"]; ti.Try != 1 {
				t.Errorf("s1 ran %d tries, want its first try's report kept", ti.Try)
			}
		})
	}
}

// TestReportSurvivesPauseFromAnotherProcess: the DAG is paused from another
// process while a try runs. The try's report is committed (its task succeeds
// with its first try), nothing new starts while the DAG is paused (the
// scheduler says so and exits as stuck), and after an unpause from the other
// process the run completes.
func TestReportSurvivesPauseFromAnotherProcess(t *testing.T) {
	t.Parallel()
	started, release := make(chan struct{}), make(chan struct{})
	d := dag.New("slow", dag.DefaultRetries(0, 0))
	s1 := task.Go("s1", func(ctx context.Context, r *task.Run) (int, error) {
		close(started)
		select {
		case <-release:
			return 7, nil
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	})
	done := noop("done")
	d.Add(s1, done)
	s1.Then(done)
	st, other := twoConnections(t)
	e := newEnv(t, st, []*dag.DAG{d}, func(c *scheduler.Config) { c.Cron, c.PollInterval = true, 5*time.Millisecond })
	run := e.trigger(d, "r1")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errc := e.runAsync(ctx)
	select {
	case <-started:
	case <-ctx.Done():
		t.Fatal("s1 never started")
	}
	if err := other.SetPaused(ctx, "slow", true); err != nil {
		t.Fatal(err)
	}
	close(release)
	// Whether the scheduler notices the pause (it polls the store every 5 ms)
	// before or after s1 ends, s1's report must be committed.
	err := <-errc
	if ti := e.states(run)["s1"]; ti.State != task.StateSuccess || ti.Try != 1 {
		t.Fatalf("s1 = %s try %d (scheduler: %v), want its report committed (success, try 1)", ti.State, ti.Try, err)
	}
	var stuck *scheduler.StuckError
	switch {
	case errors.As(err, &stuck):
		// Noticed first: nothing new starts while the DAG is paused.
		if !strings.Contains(err.Error(), "paused") {
			t.Errorf("stuck for another reason: %v", err)
		}
		if ti := e.states(run)["done"]; ti.State.Active() || ti.State.Finished() {
			t.Errorf("done = %s while the DAG is paused, want it not started", ti.State)
		}
	case err != nil:
		t.Fatal(err)
	}
	if err := other.SetPaused(ctx, "slow", false); err != nil {
		t.Fatal(err)
	}
	e.runUntilIdle()
	e.expect(run, task.RunSuccess, map[string]task.State{"s1": task.StateSuccess, "done": task.StateSuccess})
}

// twoConnections opens one SQLite file twice: the scheduler's store and
// another process's.
func twoConnections(t *testing.T) (st, other *store.Store) {
	t.Helper()
	path := t.TempDir() + "/trellis.db"
	for _, s := range []**store.Store{&st, &other} {
		var err error
		if *s, err = store.Open(context.Background(), path, store.Options{Sync: store.SyncNormal}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { (*s).Close() })
	}
	return st, other
}
