package web

import (
	"context"
	"encoding/json"
	"io"
	"time"

	"github.com/trellisdag/trellis/storage"
	"github.com/trellisdag/trellis/task"
)

// Store is what the UI and the API need of a state store: reads of DAGs,
// runs, task instances, tries, logs and results in pages; the run operations
// (create, clear, mark, delete, pause, pools, assets); the audit log; and the
// change counter that keeps listings fresh. The store of internal/store
// implements it on SQLite and on PostgreSQL.
type Store interface {
	// Apply commits a batch of changes in one transaction, or none.
	Apply(ctx context.Context, b *storage.Batch) error
	// DataVersion changes whenever another connection commits.
	DataVersion(ctx context.Context) (int64, error)
	// Ping checks that the store answers.
	Ping(ctx context.Context) error
	// Stats counts the commits made through this store.
	Stats() storage.Stats

	// DAGs, DAG, PutDAG, SetPaused, DAGVersion and PutDAGVersion read and
	// write the stored DAG records and definition snapshots.
	DAGs(ctx context.Context) ([]storage.DAG, error)
	DAG(ctx context.Context, id string) (storage.DAG, error)
	PutDAG(ctx context.Context, id string, definition []byte, paused bool) error
	SetPaused(ctx context.Context, id string, paused bool) error
	DAGVersion(ctx context.Context, dagID, version string) (json.RawMessage, error)
	PutDAGVersion(ctx context.Context, dagID, version string, definition []byte) error

	// Runs, CountRuns, RecentRuns, Run, RunByID, ActiveRuns and PreviousRun
	// read runs; CreateRun creates one; DeleteRun deletes a finished one.
	Runs(ctx context.Context, f storage.RunFilter) ([]storage.Run, error)
	CountRuns(ctx context.Context, f storage.RunFilter) (int, error)
	RecentRuns(ctx context.Context, dagIDs []string, n int) (map[string][]storage.Run, error)
	Run(ctx context.Context, dagID, runID string) (storage.Run, error)
	RunByID(ctx context.Context, id int64) (storage.Run, error)
	ActiveRuns(ctx context.Context) ([]storage.Run, error)
	PreviousRun(ctx context.Context, dagID string, before time.Time, state task.RunState) (storage.Run, bool, error)
	CreateRun(ctx context.Context, r storage.Run, tasks []storage.TaskSeed) (storage.Run, error)
	DeleteRun(ctx context.Context, run int64) error

	// TaskInstances, TaskInstancesOfRuns, TaskInstance, Instances,
	// InstancesPage, InstanceCounts and GridCells read task instances (a mapped
	// task's by map index); Clear and MarkTask change them by hand.
	TaskInstances(ctx context.Context, run int64) ([]storage.TaskInstance, error)
	TaskInstancesOfRuns(ctx context.Context, runs []int64) (map[int64][]storage.TaskInstance, error)
	TaskInstance(ctx context.Context, run int64, taskID string) (storage.TaskInstance, error)
	Instances(ctx context.Context, run int64, taskID string) ([]storage.TaskInstance, error)
	InstancesPage(ctx context.Context, run int64, taskID string, offset, limit int) ([]storage.TaskInstance, error)
	InstanceCounts(ctx context.Context, run int64, taskID string) (map[task.State]int, error)
	GridCells(ctx context.Context, runs []int64) ([]storage.GridCell, error)
	Clear(ctx context.Context, run int64, taskIDs []string, retries func(taskID string) int) error
	MarkTask(ctx context.Context, run int64, taskID string, to task.State, note string) (from task.State, err error)

	// Tries and TriesOfRun read tries; LogPage and LogPageBefore read a try's
	// log in bounded pages; TryLog appends to it; XCom reads a result.
	Tries(ctx context.Context, run int64, taskID string) ([]storage.Try, error)
	TriesOfRun(ctx context.Context, run int64) ([]storage.Try, error)
	LogPage(ctx context.Context, run int64, taskID string, try int, after int64, maxBytes int) (data []byte, last int64, more bool, err error)
	LogPageBefore(ctx context.Context, run int64, taskID string, try int, before int64, maxBytes int) (data []byte, first, last int64, more bool, err error)
	TryLog(run int64, taskID string, try int) io.WriteCloser
	XCom(ctx context.Context, run int64, taskID string) (value []byte, ok bool, err error)

	// PoolSlots and SetPoolSlots read and set pool sizes.
	PoolSlots(ctx context.Context) (map[string]int, error)
	SetPoolSlots(ctx context.Context, name string, slots int) error

	// Assets, AssetEvents, PostAssetEvent and RegisterAssetConsumer serve
	// data-aware scheduling.
	Assets(ctx context.Context) ([]storage.Asset, error)
	AssetEvents(ctx context.Context, uri string, limit, offset int) ([]storage.AssetEvent, int, error)
	PostAssetEvent(ctx context.Context, e storage.AssetEvent) (id int64, err error)
	RegisterAssetConsumer(ctx context.Context, dagID string, uris []string) error

	// CountStates, OutboxStats, AddAudit and Audit serve metrics and the
	// audit log.
	CountStates(ctx context.Context) (storage.StateCounts, error)
	OutboxStats(ctx context.Context) (delivered, pending, failed int, err error)
	AddAudit(ctx context.Context, e storage.AuditEntry) (int64, error)
	Audit(ctx context.Context, f storage.AuditFilter) ([]storage.AuditEntry, int, error)
}
