package runs

import (
	"context"
	"fmt"
	"slices"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/internal/store"
	"github.com/trellisdag/trellis/task"
)

// ClearOptions says what a clear takes along.
type ClearOptions struct {
	// Downstream also clears every task downstream of the chosen ones.
	Downstream bool
	// FailedOnly clears only failed and upstream_failed tasks.
	FailedOnly bool
}

// Clear resets the chosen tasks of a run (every task when chosen is empty),
// with the setups and teardowns of their scope (dag.ClearScope, as Airflow),
// so that they run again; the run goes back to queued. Tasks in state none, and
// with FailedOnly those that did not fail, are left alone. A chosen task with
// a try in flight is an error wrapping store.ErrActive, and nothing is
// changed. It returns the ids cleared, sorted. The CLI and the API clear
// through it.
func Clear(ctx context.Context, st *store.Store, d *dag.DAG, run store.Run, chosen []task.Task, o ClearOptions) ([]string, error) {
	if len(chosen) == 0 {
		chosen = d.Tasks()
	}
	chosen = d.ClearScope(chosen, o.Downstream)
	tis, err := st.TaskInstances(ctx, run.ID)
	if err != nil {
		return nil, fmt.Errorf("run %q: %w", run.RunID, err)
	}
	state := make(map[string]task.State, len(tis))
	for _, ti := range tis {
		state[ti.TaskID] = ti.State
	}
	ids := []string{}
	for _, t := range chosen {
		s, ok := state[t.ID()]
		if !ok {
			continue // added to the DAG after the run was created: the scheduler gives it an instance
		}
		if o.FailedOnly && s != task.StateFailed && s != task.StateUpstreamFailed {
			continue
		}
		if s.Active() {
			return nil, fmt.Errorf("task %q of run %q is %s; wait for its try to end before clearing it: %w", t.ID(), run.RunID, s, store.ErrActive)
		}
		if s != task.StateNone {
			ids = append(ids, t.ID())
		}
	}
	if len(ids) == 0 {
		return ids, nil
	}
	retries := func(id string) int {
		t, _ := d.Task(id)
		return task.PolicyOf(t, d.Defaults()).Retries
	}
	if err := st.Clear(ctx, run.ID, ids, retries); err != nil {
		return nil, fmt.Errorf("clear run %q: %w", run.RunID, err)
	}
	slices.Sort(ids)
	return ids, nil
}
