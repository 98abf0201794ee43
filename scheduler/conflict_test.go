package scheduler_test

import (
	"context"
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
			path := t.TempDir() + "/trellis.db"
			st, err := store.Open(context.Background(), path, store.Options{Sync: store.SyncNormal})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			other, err := store.Open(context.Background(), path, store.Options{Sync: store.SyncNormal})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { other.Close() })
			e := newEnv(t, st, []*dag.DAG{d})
			run := e.trigger(d, "r1")

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			s, err := scheduler.New(e.configIdle())
			if err != nil {
				t.Fatal(err)
			}
			e.sched.Store(s)
			errc := make(chan error, 1)
			go func() { errc <- s.Run(ctx) }()
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
