package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/trellisdag/trellis/internal/runs"
	"github.com/trellisdag/trellis/storage"
	"github.com/trellisdag/trellis/task"
)

// lookup is the task.Lookup the scheduler gives to tries that run in the
// runner: reads of the store and run creation through internal/runs (the one
// way runs are created), for DAGs of this binary.
type lookup struct{ s *Scheduler }

var _ task.Lookup = lookup{}

func (l lookup) known(dagID string) error {
	if _, ok := l.s.plans[dagID]; !ok {
		return fmt.Errorf("dag %q: this binary has no such DAG", dagID)
	}
	return nil
}

func (l lookup) RunStates(ctx context.Context, dagID string, logical time.Time) ([]task.RunState, error) {
	if err := l.known(dagID); err != nil {
		return nil, err
	}
	return l.s.st.RunStatesAt(ctx, dagID, logical)
}

func (l lookup) TaskStates(ctx context.Context, dagID, taskID string, logical time.Time) ([]task.State, error) {
	if err := l.known(dagID); err != nil {
		return nil, err
	}
	if _, ok := l.s.plans[dagID].index[taskID]; !ok {
		return nil, fmt.Errorf("dag %q has no task %q", dagID, taskID)
	}
	return l.s.st.TaskStatesAt(ctx, dagID, taskID, logical)
}

func (l lookup) RunState(ctx context.Context, dagID, runID string) (task.RunState, bool, error) {
	if err := l.known(dagID); err != nil {
		return "", false, err
	}
	r, err := l.s.st.Run(ctx, dagID, runID)
	if errors.Is(err, storage.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return r.State, true, nil
}

func (l lookup) TriggerRun(ctx context.Context, dagID, runID string, logical time.Time, conf json.RawMessage) (bool, error) {
	if err := l.known(dagID); err != nil {
		return false, err
	}
	_, err := runs.Create(ctx, l.s.st, l.s.plans[dagID].dag, runs.Spec{Type: task.RunManual, RunID: runID, LogicalDate: logical, Conf: conf})
	if errors.Is(err, runs.ErrExists) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	l.s.Wake() // the new run is picked up at once
	return true, nil
}
