package runs

import (
	"context"
	"fmt"
	"slices"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/storage"
	"github.com/trellisdag/trellis/task"
)

// ClearOptions says what a clear takes along.
type ClearOptions struct {
	// Downstream also clears every task downstream of the chosen ones.
	Downstream bool
	// FailedOnly clears only failed and upstream_failed tasks.
	FailedOnly bool
	// MapIndexes, when set, clears only these instances of the chosen mapped
	// tasks (Airflow's clear of one mapped task instance); the tasks taken
	// along (downstream, setups, teardowns) are cleared whole.
	MapIndexes []int
}

// Clear resets the chosen tasks of a run (every task when chosen is empty),
// with the setups and teardowns of their scope (dag.ClearScope, as Airflow),
// so that they run again; the run goes back to queued. Tasks in state none, and
// with FailedOnly those that did not fail, are left alone. A chosen task with
// a try in flight is an error wrapping storage.ErrActive, and nothing is
// changed. It returns the ids cleared, sorted. The CLI and the API clear
// through it.
func Clear(ctx context.Context, st Store, d *dag.DAG, run storage.Run, chosen []task.Task, o ClearOptions) ([]string, error) {
	if len(chosen) == 0 {
		chosen = d.Tasks()
	}
	picked := chosen
	chosen = d.ClearScope(chosen, o.Downstream)
	tis, err := st.TaskInstances(ctx, run.ID)
	if err != nil {
		return nil, fmt.Errorf("run %q: %w", run.RunID, err)
	}
	state := make(map[string]task.State, len(tis))
	instances := map[string][]string{} // a mapped task's instance ids
	for _, ti := range tis {
		state[ti.TaskID] = ti.State
		if base, k := task.ParseInstanceID(ti.TaskID); k >= 0 {
			instances[base] = append(instances[base], ti.TaskID)
		}
	}
	asked := map[string]bool{}
	for _, t := range picked {
		asked[t.ID()] = true
	}
	ids := []string{}
	add := func(id string) error {
		s, ok := state[id]
		if !ok {
			return nil // added to the DAG after the run was created: the scheduler gives it an instance
		}
		if o.FailedOnly && s != task.StateFailed && s != task.StateUpstreamFailed {
			return nil
		}
		if s.Active() {
			return fmt.Errorf("task %q of run %q is %s; wait for its try to end before clearing it: %w", id, run.RunID, s, storage.ErrActive)
		}
		if s != task.StateNone && s != task.StateRemoved {
			ids = append(ids, id)
		}
		return nil
	}
	for _, t := range chosen {
		targets := []string{t.ID()}
		if task.SettingsOf(t).Mapped {
			// A mapped task is its own row until expanded, then its instances.
			targets = append(targets, instances[t.ID()]...)
			if asked[t.ID()] && len(o.MapIndexes) > 0 {
				targets = targets[:0]
				for _, k := range o.MapIndexes {
					id := task.InstanceID(t.ID(), k)
					if _, ok := state[id]; !ok {
						return nil, fmt.Errorf("task %q of run %q has no map index %d: %w", t.ID(), run.RunID, k, storage.ErrNotFound)
					}
					targets = append(targets, id)
				}
			}
		}
		for _, id := range targets {
			if err := add(id); err != nil {
				return nil, err
			}
		}
	}
	if len(ids) == 0 {
		return ids, nil
	}
	retries := func(id string) int {
		base, _ := task.ParseInstanceID(id)
		t, _ := d.Task(base)
		return task.PolicyOf(t, d.Defaults()).Retries
	}
	if err := st.Clear(ctx, run.ID, ids, retries); err != nil {
		return nil, fmt.Errorf("clear run %q: %w", run.RunID, err)
	}
	slices.Sort(ids)
	return ids, nil
}
