package runs

import (
	"context"
	"time"

	"github.com/trellisdag/trellis/storage"
	"github.com/trellisdag/trellis/task"
)

// Store is what the run operations need of a state store; internal/store
// implements it on SQLite and PostgreSQL, and the scheduler's and web's stores
// are it too.
type Store interface {
	Creator
	// Clear resets finished task instances to none with their retries back,
	// their results removed, and the run queued again; a task in flight is
	// storage.ErrActive and nothing changes.
	Clear(ctx context.Context, run int64, taskIDs []string, retries func(taskID string) int) error
	// MarkTask sets a task instance's state by hand (ending a try in flight).
	MarkTask(ctx context.Context, run int64, taskID string, to task.State, note string) (from task.State, err error)
	// DeleteRun deletes a finished run and everything it holds
	// (storage.ErrRunActive for an active run).
	DeleteRun(ctx context.Context, run int64) error
	// PreviousRun is the latest run of dagID before a logical date (in state
	// state, unless empty).
	PreviousRun(ctx context.Context, dagID string, before time.Time, state task.RunState) (storage.Run, bool, error)
	// DAG reads a DAG's stored record (paused flag).
	DAG(ctx context.Context, id string) (storage.DAG, error)
	// TaskInstances, TaskInstance and Instances read task instances.
	TaskInstances(ctx context.Context, run int64) ([]storage.TaskInstance, error)
	TaskInstance(ctx context.Context, run int64, taskID string) (storage.TaskInstance, error)
	Instances(ctx context.Context, run int64, taskID string) ([]storage.TaskInstance, error)
}

// Creator is what Create needs: a store that creates a run with its task
// instances (storage.ErrExists when its id is taken).
type Creator interface {
	CreateRun(ctx context.Context, r storage.Run, tasks []storage.TaskSeed) (storage.Run, error)
}
