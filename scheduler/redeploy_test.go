package scheduler_test

import (
	"testing"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/task"
)

// TestRunMeetsNewerDefinition: a run created by an earlier binary (its DAG had
// tasks a and old) is loaded by a scheduler whose DAG has a, b (new, after a)
// and no longer old. As Airflow's verify_integrity: b gets an instance and
// runs, old is kept but ignored, and the run completes; before, the scheduler
// stopped with an error for every DAG.
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
	e.expect(run, task.RunSuccess, map[string]task.State{"a": task.StateSuccess, "b": task.StateSuccess, "old": task.StateNone})
	e.expect(otherRun, task.RunSuccess, map[string]task.State{"x": task.StateSuccess})
}
