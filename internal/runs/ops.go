package runs

import (
	"context"
	"errors"
	"fmt"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/storage"
	"github.com/trellisdag/trellis/task"
)

// ErrBadState is wrapped by Mark's error for a state a person may not set.
var ErrBadState = errors.New("a task can be marked success or failed only")

// Mark sets a task instance's state by hand (Airflow's mark success or
// failed): a try in flight is ended and stopped by the scheduler, a finished
// run is queued again so that its state follows. note is recorded as the
// error of a task marked failed. The task must be one of d's; a transition
// the state machine refuses wraps storage.ErrConflict, a task the run lacks
// storage.ErrNotFound. It returns the state the task had. The CLI and the API
// mark through it.
func Mark(ctx context.Context, st Store, d *dag.DAG, run storage.Run, taskID string, to task.State, note string) (task.State, error) {
	if to != task.StateSuccess && to != task.StateFailed {
		return "", fmt.Errorf("mark task %q: state %q: %w", taskID, to, ErrBadState)
	}
	base, k := task.ParseInstanceID(taskID)
	t, ok := d.Task(base)
	if !ok || (k >= 0 && !task.SettingsOf(t).Mapped) {
		return "", fmt.Errorf("dag %q has no task %q: %w", d.ID(), taskID, storage.ErrNotFound)
	}
	if k < 0 && task.SettingsOf(t).Mapped {
		// An expanded mapped task is marked through its instances.
		if _, err := st.TaskInstance(ctx, run.ID, taskID); errors.Is(err, storage.ErrNotFound) {
			tis, err := st.Instances(ctx, run.ID, taskID)
			if err != nil {
				return "", fmt.Errorf("mark task %q of run %q: %w", taskID, run.RunID, err)
			}
			var from task.State
			for _, ti := range tis {
				if ti.State == to || ti.State == task.StateRemoved {
					continue
				}
				if from, err = st.MarkTask(ctx, run.ID, ti.TaskID, to, note); err != nil {
					return from, fmt.Errorf("mark task %q of run %q %s: %w", ti.TaskID, run.RunID, to, err)
				}
			}
			return from, nil
		}
	}
	from, err := st.MarkTask(ctx, run.ID, taskID, to, note)
	if err != nil {
		return from, fmt.Errorf("mark task %q of run %q %s: %w", taskID, run.RunID, to, err)
	}
	return from, nil
}

// Delete removes a finished run with its task instances, tries, logs,
// results and audit entries, in small transactions; an active run wraps
// storage.ErrRunActive and nothing is deleted. The CLI, the API and retention
// delete through it.
func Delete(ctx context.Context, st Store, run storage.Run) error {
	if err := st.DeleteRun(ctx, run.ID); err != nil {
		return fmt.Errorf("delete run %q of dag %q: %w", run.RunID, run.DAGID, err)
	}
	return nil
}
