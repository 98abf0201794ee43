package runs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/storage"
	"github.com/trellisdag/trellis/task"
)

// Waiting says, for each task instance of an active run that has not started
// (and for each awaiting a retry), what it waits for: the run's admission, a
// paused DAG, its upstream tasks, its previous run (depends_on_past), a free
// slot or its retry time. It reads the store as any process can; the
// scheduler decides. Finished runs wait for nothing (nil).
func Waiting(ctx context.Context, st Store, d *dag.DAG, run storage.Run, tis []storage.TaskInstance) (map[string]string, error) {
	if run.State.Finished() {
		return nil, nil
	}
	rec, err := st.DAG(ctx, d.ID())
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("run %q: %w", run.RunID, err)
	}
	paused := rec.Paused
	state := map[string]task.State{}
	for _, ti := range tis {
		state[ti.TaskID] = ti.State
	}
	why := map[string]string{}
	for _, ti := range tis {
		base, _ := task.ParseInstanceID(ti.TaskID) // a mapped instance waits as its task does
		t, ok := d.Task(base)
		if !ok {
			continue // removed from the DAG: it waits for nothing
		}
		set := task.SettingsOf(t)
		switch {
		case ti.State == task.StateDeferred:
			pol := task.SensorPolicyOf(t)
			why[ti.TaskID] = fmt.Sprintf("deferred: condition not met after %d poke(s); next poke at %s (it holds no slot); gives up at %s",
				ti.Pokes, ti.NextRetry.UTC().Format(time.RFC3339), ti.Started.Add(pol.Timeout).UTC().Format(time.RFC3339))
			continue
		case ti.State != task.StateNone && ti.State != task.StateScheduled && ti.State != task.StateUpForRetry:
			continue
		case paused && ti.State != task.StateUpForRetry:
			why[ti.TaskID] = "the DAG is paused (dags unpause)"
		case run.State == task.RunQueued:
			why[ti.TaskID] = fmt.Sprintf("the run is queued: it starts when the DAG has fewer than %d active runs", d.MaxActiveRunsLimit())
		case ti.State == task.StateUpForRetry:
			why[ti.TaskID] = "retry " + fmt.Sprint(ti.Try+1) + " at " + ti.NextRetry.UTC().Format(time.RFC3339)
		case ti.State == task.StateScheduled:
			pool := set.Pool
			if pool == "" {
				pool = "default_pool"
			}
			why[ti.TaskID] = fmt.Sprintf("ready: waiting for a free slot (pool %s, the DAG's %d active tasks, the runner's parallelism)",
				pool, d.MaxActiveTasksLimit())
		default:
			var pending []string
			for _, u := range task.Upstream(t) {
				if !state[u.ID()].Finished() {
					pending = append(pending, u.ID())
				}
			}
			if len(pending) > 0 {
				why[ti.TaskID] = "upstream not done: " + strings.Join(pending, ", ")
				continue
			}
			// Airflow's setup constraint: an indirect upstream setup must be done too.
			if setups := unfinishedSetups(t, state); len(setups) > 0 && !set.Teardown {
				why[ti.TaskID] = "setup not done (the setup constraint): " + strings.Join(setups, ", ")
				continue
			}
			if !set.DependsOnPast {
				continue
			}
			prev, ok, err := st.PreviousRun(ctx, d.ID(), run.LogicalDate, "")
			if err != nil {
				return nil, fmt.Errorf("run %q: previous run: %w", run.RunID, err)
			}
			if !ok {
				continue
			}
			pt, err := st.TaskInstance(ctx, prev.ID, ti.TaskID)
			if err != nil || pt.State == task.StateRemoved {
				continue // the previous run did not have the task: nothing to wait for
			}
			if pt.State != task.StateSuccess && pt.State != task.StateSkipped {
				why[ti.TaskID] = fmt.Sprintf("depends_on_past: %s of run %s is %s (it must succeed or be skipped)", ti.TaskID, prev.RunID, pt.State)
			}
		}
	}
	return why, nil
}

// unfinishedSetups lists the setups upstream of t (directly or not) that have
// not finished.
func unfinishedSetups(t task.Task, state map[string]task.State) []string {
	var out []string
	seen := map[string]bool{}
	var walk func(task.Task)
	walk = func(x task.Task) {
		for _, u := range task.Upstream(x) {
			if seen[u.ID()] {
				continue
			}
			seen[u.ID()] = true
			if task.SettingsOf(u).Setup && !state[u.ID()].Finished() {
				out = append(out, u.ID())
			}
			walk(u)
		}
	}
	walk(t)
	return out
}
