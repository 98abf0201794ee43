package storage

import (
	"fmt"
	"time"

	"github.com/trellisdag/trellis/task"
)

// Batch collects changes that a store applies together in one transaction,
// or not at all. The zero value is an empty batch. Build it with its methods;
// a store reads its fields.
type Batch struct {
	// TIs are task-instance changes, each a compare-and-swap on its From state.
	TIs []TIChange
	// Runs are run changes, each a compare-and-swap on its From state.
	Runs []RunChange
	// Results are tasks' results (Airflow's XComs) to store.
	Results []Result
	// Outbox holds side effects to deliver after the commit.
	Outbox []OutboxEntry
	// Assets are asset events to record.
	Assets []AssetEvent
	// Expansions create the instances of mapped tasks; a store applies them
	// before TIs, which may then move the new instances.
	Expansions []Expansion
}

// Result is one task instance's result, as JSON.
type Result struct {
	Run    int64
	TaskID string
	Value  []byte
}

// SetTI adds a task-instance change.
func (b *Batch) SetTI(c TIChange) { b.TIs = append(b.TIs, c) }

// SetRun adds a run change.
func (b *Batch) SetRun(c RunChange) { b.Runs = append(b.Runs, c) }

// PutXCom adds a task's result.
func (b *Batch) PutXCom(run int64, taskID string, value []byte) {
	b.Results = append(b.Results, Result{Run: run, TaskID: taskID, Value: value})
}

// PutOutbox adds a side effect to deliver once the batch is committed (see
// OutboxEntry); an entry whose key exists already is ignored.
func (b *Batch) PutOutbox(e OutboxEntry) { b.Outbox = append(b.Outbox, e) }

// PutAssetEvent adds an asset event.
func (b *Batch) PutAssetEvent(e AssetEvent) { b.Assets = append(b.Assets, e) }

// Expand adds an expansion of a mapped task.
func (b *Batch) Expand(e Expansion) { b.Expansions = append(b.Expansions, e) }

// Len is the number of changes in the batch.
func (b *Batch) Len() int {
	return len(b.TIs) + len(b.Runs) + len(b.Results) + len(b.Outbox) + len(b.Assets) + len(b.Expansions)
}

// Reset empties the batch, keeping its memory.
func (b *Batch) Reset() {
	b.TIs, b.Runs, b.Results, b.Outbox, b.Assets = b.TIs[:0], b.Runs[:0], b.Results[:0], b.Outbox[:0], b.Assets[:0]
	b.Expansions = b.Expansions[:0]
}

// TIChange moves a task instance from state From to the values in TI. It applies
// only if the row is in state From, and only if From -> TI.State is a legal
// transition.
//
// The task's tries follow: a change to queued inserts the try TI.Try; a change out
// of queued or running ends that try with TI's end, exit code and error; queued
// back to scheduled removes the try (it never ran).
type TIChange struct {
	From task.State
	TI   TaskInstance
	// At is when the change happened (the try's queued time for a change to queued).
	At time.Time
}

// RunChange moves a run from state From to state To.
type RunChange struct {
	Run      int64
	From, To task.RunState
	At       time.Time // the start time for a change to running, the end time for an end
}

// ConflictError says which change of a batch did not apply. It wraps ErrConflict.
type ConflictError struct {
	Run    int64
	TaskID string // empty for a run change
	Reason string
}

func (e *ConflictError) Error() string {
	if e.TaskID == "" {
		return fmt.Sprintf("run #%d: %s", e.Run, e.Reason)
	}
	return fmt.Sprintf("task %q in run #%d: %s", e.TaskID, e.Run, e.Reason)
}

// Unwrap returns ErrConflict.
func (e *ConflictError) Unwrap() error { return ErrConflict }

// Expansion gives a mapped task one instance per element of its list
// (Airflow's expand), in the transaction of the batch that holds it, so a crash
// never leaves half an expansion. Instances are named task.InstanceID(TaskID,
// i); those missing are created in state none with MaxTries, removed ones
// within Count are restored, and those at Count or past it become removed
// (the list got shorter after a clear). With Count > 0 the task's own
// unexpanded instance, which must be in state none, is deleted (Airflow turns
// it into index 0); with Count 0 it stays, for the scheduler to skip.
type Expansion struct {
	Run      int64
	TaskID   string
	Count    int
	MaxTries int
}
