package scheduler

import (
	"context"
	"time"

	"github.com/trellisdag/trellis/storage"
	"github.com/trellisdag/trellis/task"
)

// Store is what the scheduler needs of a state store: the runs and task
// instances to schedule, one transaction per batch of changes (each change a
// compare-and-swap on the state it expects), the results tasks read, and a
// number that changes whenever another process commits. The store of
// internal/store implements it on SQLite and on PostgreSQL; its tests are the
// conformance suite both pass.
type Store interface {
	// Apply commits every change of b in one transaction, or none: a change
	// whose row is not in its From state fails it with a *storage.ConflictError.
	Apply(ctx context.Context, b *storage.Batch) error
	// DataVersion changes whenever another connection commits.
	DataVersion(ctx context.Context) (int64, error)

	// ActiveRuns returns the queued and running runs, oldest first.
	ActiveRuns(ctx context.Context) ([]storage.Run, error)
	// Run and RunByID read one run, or storage.ErrNotFound.
	Run(ctx context.Context, dagID, runID string) (storage.Run, error)
	RunByID(ctx context.Context, id int64) (storage.Run, error)
	// PreviousRun is the latest run of dagID before a logical date (in state
	// state, unless empty).
	PreviousRun(ctx context.Context, dagID string, before time.Time, state task.RunState) (storage.Run, bool, error)
	// CreateRun creates one run with its task instances (storage.ErrExists
	// when its id is taken); CreateRuns creates runs with their task instances; runs whose id exists
	// are skipped.
	CreateRun(ctx context.Context, r storage.Run, tasks []storage.TaskSeed) (storage.Run, error)
	CreateRuns(ctx context.Context, groups []storage.RunGroup) ([]storage.Run, error)
	// ReconcileRun adds, removes and restores a run's task instances for
	// another version of its DAG.
	ReconcileRun(ctx context.Context, run int64, rc storage.Reconcile) (added int, err error)
	// RunStatesAt and TaskStatesAt are the states of a DAG's runs, and of one
	// task in them, at a logical date (depends_on_past across clears).
	RunStatesAt(ctx context.Context, dagID string, logical time.Time) ([]task.RunState, error)
	TaskStatesAt(ctx context.Context, dagID, taskID string, logical time.Time) ([]task.State, error)

	// TaskInstances returns a run's task instances; TaskInstance one of them
	// (storage.ErrNotFound when missing); InstanceCounts counts a mapped
	// task's instances by state.
	TaskInstances(ctx context.Context, run int64) ([]storage.TaskInstance, error)
	TaskInstance(ctx context.Context, run int64, taskID string) (storage.TaskInstance, error)
	InstanceCounts(ctx context.Context, run int64, taskID string) (map[task.State]int, error)
	// InterruptedStreak counts a task's latest tries in a row whose error
	// starts with prefix.
	InterruptedStreak(ctx context.Context, run int64, taskID, prefix string) (int, error)
	// XCom returns a task's result (a mapped task's: its instances' results as
	// one JSON array); ok is false when it stored none.
	XCom(ctx context.Context, run int64, taskID string) (value []byte, ok bool, err error)

	// DAGs returns the DAGs the store knows (paused flags, last intervals).
	DAGs(ctx context.Context) ([]storage.DAG, error)
	// PoolSlots returns the pool sizes set at run time.
	PoolSlots(ctx context.Context) (map[string]int, error)
	// RegisterAssetConsumer records that dagID is scheduled on uris;
	// CreateAssetRun creates the run their events call for, consuming them in
	// the same transaction (ok is false when they are not ready).
	RegisterAssetConsumer(ctx context.Context, dagID string, uris []string) error
	CreateAssetRun(ctx context.Context, dagID string, uris []string, anyOf bool, r storage.Run, tasks []storage.TaskSeed) (storage.Run, bool, error)
}
