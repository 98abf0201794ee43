package executor

import (
	"context"
	"encoding/json"
	"time"

	"github.com/trellisdag/trellis/task"
)

// Key identifies one try of one task in one DAG run.
type Key struct {
	Run    int64 // the store's key of the run
	DAGID  string
	RunID  string
	TaskID string
	Try    int
}

// Try is one try handed to an executor.
type Try struct {
	Key
	Task   task.Task
	Info   task.Info
	Params map[string]any
	Conf   json.RawMessage
	Inputs task.Inputs
	// Timeout is the execution timeout (0 means none).
	Timeout time.Duration
	// State is the try's state in the store: queued or running. Recover uses it.
	State task.State
	// Host and Pod are what the store knows of where the try runs (for Recover).
	Host, Pod string
	// Lookup lets a try in the runner read (and trigger) other DAGs' runs
	// (task.LookupFrom); nil where the scheduler gives none.
	Lookup task.Lookup
}

// Status is what a report says about a try.
type Status int

// Statuses.
const (
	// Started: the try's code is running.
	Started Status = iota
	// Succeeded: the try ended without error; Result holds its result.
	Succeeded
	// Failed: the try ended with an error; retries apply.
	Failed
	// Skipped: the try skipped itself (task.ErrSkip).
	Skipped
	// Lost: the try never ran (its process or pod was lost before the task's code
	// started); the scheduler runs it again without spending a retry.
	Lost
	// Interrupted: the runner died while the try was queued or running in its
	// process, so the try may have run, in part. The try is ended (its number
	// is never used again) and the task runs again without spending a retry,
	// unless its tries were interrupted that way several times in a row: then
	// the task is the likely cause of the crashes and fails.
	Interrupted
	// Deferred: a sensor's poke found its condition not met (task.ErrNotDone);
	// the try waits, deferred and holding no slot, for its next poke.
	Deferred
)

// InterruptedPrefix starts the error of every Interrupted report, so that the
// tries a crash interrupted can be told apart in the store.
const InterruptedPrefix = "interrupted: "

func (s Status) String() string {
	return [...]string{"started", "succeeded", "failed", "skipped", "lost", "interrupted", "deferred"}[s]
}

// Report is an executor's word about a try.
type Report struct {
	Key
	Status Status
	Result []byte // JSON; Succeeded only
	Error  string // Failed, Skipped or Lost: what happened, one line
	// NoRetry says the failure must not be retried (task.ErrFailNow).
	NoRetry  bool
	ExitCode *int
	Host     string
	Pod      string
	At       time.Time // when it happened
}

// ReportFunc receives reports. It may block briefly; it must not call back into the
// executor.
type ReportFunc func(Report)

// Executor runs tries.
type Executor interface {
	// Start hands one try over (a goroutine started, a process started, a pod
	// created) and returns; its end is reported later. An error means the try was
	// not handed over.
	Start(ctx context.Context, t Try) error
	// Kill stops a running try (run timeout, shutdown). Its end is still reported.
	Kill(ctx context.Context, k Key, reason string) error
	// Recover is called once at start-up with the tries the store says are queued
	// or running; the executor adopts what still runs and reports the rest.
	Recover(ctx context.Context, tries []Try) error
	// Shutdown stops taking tries and ends the executor's work within ctx:
	// the local executor stops its tries (their ends are reported); the
	// Kubernetes executor leaves its pods running for the next runner to
	// adopt. Start fails after it.
	Shutdown(ctx context.Context) error
}
