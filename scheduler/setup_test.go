package scheduler_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/task"
)

// skipper skips itself.
func skipper(id string, opts ...task.Option) *task.GoTask[struct{}] {
	return task.Go(id, func(context.Context, *task.Run) (struct{}, error) { return struct{}{}, task.Skip("nothing to do") }, opts...)
}

// counted is noop that counts its tries.
func counted(id string, n *atomic.Int32, opts ...task.Option) *task.GoTask[struct{}] {
	return task.Go(id, func(context.Context, *task.Run) (struct{}, error) { n.Add(1); return struct{}{}, nil }, opts...)
}

// resourceDAG is create -> work -> drop, drop a teardown of create, each
// task built by the given constructors.
func resourceDAG(id string, create, work, drop func(string, ...task.Option) *task.GoTask[struct{}], dropOpts ...task.Option) *dag.DAG {
	c := create("create")
	w := work("work")
	d := drop("drop", append([]task.Option{task.AsTeardown(c)}, dropOpts...)...)
	task.Chain(c, w, d)
	return dag.New(id, dag.DefaultRetries(0, 0)).Add(c, w, d)
}

// TestSetupTeardownStates: Airflow 2.7's outcomes of setup -> work -> teardown.
func TestSetupTeardownStates(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name                 string
		create, work, drop   func(string, ...task.Option) *task.GoTask[struct{}]
		dropOpts             []task.Option
		run                  task.RunState
		wantCreate, wantWork task.State
		wantDrop             task.State
	}{
		// The work failed: the teardown still runs (all_done_setup_success),
		// and the run is failed although the last task succeeded.
		{"work fails", noop, fail, noop, nil, task.RunFailed, task.StateSuccess, task.StateFailed, task.StateSuccess},
		// The teardown failed: the run succeeds; it does not decide the run.
		{"teardown fails", noop, noop, fail, nil, task.RunSuccess, task.StateSuccess, task.StateSuccess, task.StateFailed},
		// ... unless it is asked to.
		{"teardown fails the run", noop, noop, fail, []task.Option{task.FailRunOnTeardownFailure()}, task.RunFailed,
			task.StateSuccess, task.StateSuccess, task.StateFailed},
		{"teardown that fails the run succeeds", noop, noop, noop, []task.Option{task.FailRunOnTeardownFailure()}, task.RunSuccess,
			task.StateSuccess, task.StateSuccess, task.StateSuccess},
		// Airflow's is_effective_leaf: a teardown that fails the run is a leaf
		// and the work before it no longer is, so its success makes the run's.
		{"work fails before a teardown that fails the run", noop, fail, noop, []task.Option{task.FailRunOnTeardownFailure()}, task.RunSuccess,
			task.StateSuccess, task.StateFailed, task.StateSuccess},
		// The setup failed: nothing to clean up; the work and the teardown are
		// upstream_failed, the run failed.
		{"setup fails", fail, noop, noop, nil, task.RunFailed, task.StateFailed, task.StateUpstreamFailed, task.StateUpstreamFailed},
		// The setup skipped itself: everything after it is skipped.
		{"setup skipped", skipper, noop, noop, nil, task.RunSuccess, task.StateSkipped, task.StateSkipped, task.StateSkipped},
		// The work skipped itself: the teardown runs.
		{"work skipped", noop, skipper, noop, nil, task.RunSuccess, task.StateSuccess, task.StateSkipped, task.StateSuccess},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			d := resourceDAG("st", c.create, c.work, c.drop, c.dropOpts...)
			e := setup(t, []*dag.DAG{d})
			run := e.trigger(d, "r1")
			e.runUntilIdle()
			e.expect(run, c.run, map[string]task.State{"create": c.wantCreate, "work": c.wantWork, "drop": c.wantDrop})
		})
	}
}

// TestSetupConstraint: a task in a setup's scope that is not directly
// downstream of it runs only when the setup succeeded, whatever its own rule
// (Airflow's _evaluate_setup_constraint).
func TestSetupConstraint(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name            string
		setupFails      bool
		firstFails      bool
		wantLast        task.State
		wantRun         task.RunState
		wantDrop        task.State
		wantLastRunning bool
	}{
		// The setup failed: last (all_done) would run after first's
		// upstream_failed, but its setup did not succeed.
		{"setup failed", true, false, task.StateUpstreamFailed, task.RunFailed, task.StateUpstreamFailed, false},
		// The setup succeeded and first failed: all_done runs last, the
		// effective leaf, whose success makes the run's (as in Airflow).
		{"work failed", false, true, task.StateSuccess, task.RunSuccess, task.StateSuccess, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var ran atomic.Int32
			mk := func(id string, failing bool, opts ...task.Option) *task.GoTask[struct{}] {
				if failing {
					return fail(id, opts...)
				}
				return noop(id, opts...)
			}
			create := mk("create", c.setupFails)
			first := mk("first", c.firstFails)
			last := counted("last", &ran, task.Trigger(task.AllDone))
			drop := noop("drop", task.AsTeardown(create))
			task.Chain(create, first, last, drop)
			d := dag.New("constraint", dag.DefaultRetries(0, 0)).Add(create, first, last, drop)
			e := setup(t, []*dag.DAG{d})
			run := e.trigger(d, "r1")
			e.runUntilIdle()
			e.expect(run, c.wantRun, map[string]task.State{"last": c.wantLast, "drop": c.wantDrop})
			if got := ran.Load() == 1; got != c.wantLastRunning {
				t.Errorf("last ran: %v, want %v", got, c.wantLastRunning)
			}
		})
	}
}

// TestTeardownDownstreamCounts: a task after a teardown is a leaf again: its
// upstream_failed (the teardown failed) fails the run.
func TestTeardownDownstreamCounts(t *testing.T) {
	t.Parallel()
	create, work := noop("create"), noop("work")
	drop := fail("drop", task.AsTeardown(create))
	after := noop("after")
	task.Chain(create, work, drop, after)
	d := dag.New("after_teardown", dag.DefaultRetries(0, 0)).Add(create, work, drop, after)
	e := setup(t, []*dag.DAG{d})
	run := e.trigger(d, "r1")
	e.runUntilIdle()
	e.expect(run, task.RunFailed, map[string]task.State{"work": task.StateSuccess, "drop": task.StateFailed, "after": task.StateUpstreamFailed})
}

// TestShortCircuitSparesTeardowns: a short circuit skips the work after it,
// not the teardown, which cleans up what the setup made.
func TestShortCircuitSparesTeardowns(t *testing.T) {
	t.Parallel()
	create := noop("create")
	gate := task.ShortCircuit("gate", func(context.Context, *task.Run) (bool, error) { return false, nil })
	work := noop("work")
	drop := noop("drop", task.AsTeardown(create))
	task.Chain(create, gate, work, drop)
	d := dag.New("sc_teardown").Add(create, gate, work, drop)
	e := setup(t, []*dag.DAG{d})
	run := e.trigger(d, "r1")
	e.runUntilIdle()
	e.expect(run, task.RunSuccess, map[string]task.State{"gate": task.StateSuccess, "work": task.StateSkipped, "drop": task.StateSuccess})
}

// TestGroupRunsThroughEdges: a group in Chain runs after its upstream and
// before its downstream, with its ids and defaults.
func TestGroupRunsThroughEdges(t *testing.T) {
	t.Parallel()
	var order []string
	var tries atomic.Int32
	step := func(id string, opts ...task.Option) *task.GoTask[struct{}] {
		return task.Go(id, func(_ context.Context, r *task.Run) (struct{}, error) {
			order = append(order, r.Info().TaskID) // tasks of a chain never run at once here
			return struct{}{}, nil
		}, opts...)
	}
	flaky := task.Go("flaky", func(context.Context, *task.Run) (struct{}, error) {
		if tries.Add(1) == 1 {
			return struct{}{}, errors.New("first try fails")
		}
		return struct{}{}, nil
	})
	quality := task.NewGroup("quality", task.Retries(1), task.RetryDelay(0))
	quality.Add(flaky)
	extract, load := step("extract"), step("load")
	d := dag.New("grouped", dag.DefaultRetries(0, 0)).Add(extract, quality, load)
	task.Chain(extract, quality, load)
	e := setup(t, []*dag.DAG{d})
	run := e.trigger(d, "r1")
	e.runUntilIdle()
	e.expect(run, task.RunSuccess, map[string]task.State{"extract": task.StateSuccess, "quality.flaky": task.StateSuccess, "load": task.StateSuccess})
	if tries.Load() != 2 {
		t.Errorf("quality.flaky ran %d tries, want 2 (the group's retries)", tries.Load())
	}
	if len(order) != 2 || order[0] != "extract" || order[1] != "load" {
		t.Errorf("order = %v", order)
	}
}
