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

// TestResultLimit: a result larger than the task's limit (or the runner's)
// fails the try, is not stored, and the message names the size, the limit
// and how to raise it.
func TestResultLimit(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", 3000)
	d := dag.New("big", dag.DefaultRetries(2, 0))
	own := task.Go("own", func(context.Context, *task.Run) (string, error) { return big, nil }, task.MaxResultSize(1024))
	runners := task.Go("runners", func(context.Context, *task.Run) (string, error) { return big, nil })
	fits := task.Go("fits", func(context.Context, *task.Run) (string, error) { return big, nil }, task.MaxResultSize(1<<20))
	d.Add(own, runners, fits)
	e := setup(t, []*dag.DAG{d}, func(c *scheduler.Config) { c.MaxResultSize = 2048 })
	run := e.trigger(d, "r1")
	e.runUntilIdle()
	e.expect(run, task.RunFailed, map[string]task.State{"own": task.StateFailed, "runners": task.StateFailed, "fits": task.StateSuccess})
	st := e.states(run)
	if got := st["own"]; got.Try != 1 || !strings.Contains(got.Error, "result of 3002 bytes exceeds the limit of 1024 bytes (set task.MaxResultSize") {
		t.Errorf("own: try %d, error %q", got.Try, got.Error)
	}
	if got := st["runners"]; !strings.Contains(got.Error, "exceeds the limit of 2048 bytes") {
		t.Errorf("runners: error %q", got.Error)
	}
	if _, ok, _ := e.st.XCom(context.Background(), run.ID, "own"); ok {
		t.Error("the oversized result was stored")
	}
}
