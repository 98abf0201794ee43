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

// TestUntilIdleSaysWhatIsBlocked: a task that depends on its past, whose
// previous run failed, can never start; with ExitWhenIdle the scheduler stops
// and says why instead of waiting forever.
func TestUntilIdleSaysWhatIsBlocked(t *testing.T) {
	t.Parallel()
	d := dag.New("past", dag.DefaultRetries(0, 0))
	d.Add(fail("load", task.DependsOnPast(true)))
	e := setup(t, []*dag.DAG{d})
	first := e.trigger(d, "r1")
	e.runUntilIdle()
	e.expect(first, task.RunFailed, map[string]task.State{"load": task.StateFailed})

	ld := first.LogicalDate.Add(24 * time.Hour) // a day later: its load waits for r1's
	second, err := e.st.CreateRun(context.Background(), store.Run{DAGID: "past", RunID: "r2", Type: task.RunManual,
		State: task.RunQueued, LogicalDate: ld, IntervalStart: ld, IntervalEnd: ld}, []store.TaskSeed{{TaskID: "load", MaxTries: 1}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := scheduler.New(e.configIdle())
	if err != nil {
		t.Fatal(err)
	}
	e.sched.Store(s)
	err = s.Run(ctx)
	if ctx.Err() != nil {
		t.Fatal("the scheduler waited forever on a run that cannot progress")
	}
	var stuck *scheduler.StuckError
	if !errors.As(err, &stuck) || len(stuck.Blocked) != 1 ||
		!strings.Contains(stuck.Blocked[0], "run r2 of dag past: task load waits for its previous run (depends_on_past") {
		t.Fatalf("err = %v, want a StuckError naming r2's load and depends_on_past", err)
	}
	e.expect(second, task.RunRunning, map[string]task.State{"load": task.StateNone})
}
