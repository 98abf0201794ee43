package storage

import (
	"encoding/json"
	"time"

	"github.com/trellisdag/trellis/task"
)

// DAG is a DAG's stored record.
type DAG struct {
	ID         string
	Paused     bool
	Definition json.RawMessage // a snapshot of tasks, edges and settings, for tools
	// LastInterval is the data interval of the latest scheduled run (zero when none).
	LastIntervalStart, LastIntervalEnd time.Time
	Updated                            time.Time
}

// Run is a DAG run.
type Run struct {
	ID            int64 // the store's key
	DAGID         string
	RunID         string
	Type          task.RunType
	State         task.RunState
	LogicalDate   time.Time
	IntervalStart time.Time
	IntervalEnd   time.Time
	Conf          json.RawMessage
	Created       time.Time
	Started       time.Time
	Ended         time.Time
	// Version changes whenever a process other than the scheduler changes the run
	// or its task instances (clear, mark), so the scheduler reloads it.
	Version int64
	// DAGVersion is the version of the DAG's definition the run was created
	// with, or last reconciled to (dag.DAG.Version; "" for runs older than
	// versions).
	DAGVersion string
}

// TaskInstance is one task in one run.
type TaskInstance struct {
	Run       int64
	TaskID    string
	State     task.State
	Try       int // number of the latest try; 0 before the first
	MaxTries  int
	Started   time.Time
	Ended     time.Time
	NextRetry time.Time
	ExitCode  *int
	Error     string
	Executor  string
	Host      string
	Pod       string
	// Pokes is how many pokes the current try of a sensor has made.
	Pokes int
}

// Duration is how long the latest try ran (0 while it runs).
func (ti TaskInstance) Duration() time.Duration {
	if ti.Started.IsZero() || ti.Ended.IsZero() {
		return 0
	}
	return ti.Ended.Sub(ti.Started)
}

// Try is one try of a task instance.
type Try struct {
	Run      int64
	TaskID   string
	Try      int
	State    task.State
	Queued   time.Time
	Started  time.Time
	Ended    time.Time
	ExitCode *int
	Error    string
	Executor string
	Host     string
	Pod      string
}

// TaskSeed is a task instance created with its run.
type TaskSeed struct {
	TaskID   string
	MaxTries int
}

// Reconcile is what ReconcileRun changes in a run that meets another
// definition of its DAG.
type Reconcile struct {
	// Add lists tasks the DAG gained: each gets an instance in state none
	// (an instance that exists is left alone).
	Add []TaskSeed
	// Remove lists tasks the DAG no longer has: their instances become
	// removed, keeping their tries, logs and results. A try still recorded in
	// flight is ended as failed, since no runner of this definition can run or
	// report it.
	Remove []string
	// Restore lists removed tasks the DAG has again: they go back to none with
	// MaxTries more tries, and their try numbers go on from where they were.
	Restore []TaskSeed
	// DAGVersion is the version the run now runs with.
	DAGVersion string
}

// RunGroup is runs of one DAG to create, with the task instances each gets.
type RunGroup struct {
	DAGID string
	Runs  []Run
	Tasks []TaskSeed
	// Advance records the last run's data interval as the DAG's last scheduled
	// interval, in the same transaction as the runs, so that a crash can neither
	// lose a scheduled run nor create one twice.
	Advance bool
}

// RunFilter selects runs. Zero fields select everything.
type RunFilter struct {
	DAGID  string
	States []task.RunState
	Limit  int // 0 means 100
	Offset int
	// Since and Until bound the logical date: Since <= logical date < Until.
	Since, Until time.Time
}

// AssetEvent is an update of an asset: by a successful try of a task that
// declares the asset (Source* set), or posted through the API (Source names
// who posted it).
type AssetEvent struct {
	ID                               int64
	URI                              string
	SourceDAG, SourceRun, SourceTask string
	SourceTry                        int
	Source                           string
	Extra                            []byte // JSON, optional
	Created                          time.Time
}

// Asset is an asset with a summary of its events.
type Asset struct {
	URI       string
	Created   time.Time
	Events    int
	LastEvent time.Time // zero when it has none
}

// OutboxEntry is a side effect of a committed change (a callback, a
// notification, a deadline alert): written in the same transaction as the
// change, delivered after the commit, at least once.
type OutboxEntry struct {
	ID int64
	// Key identifies the event; a second entry with the same key is ignored,
	// so an event is recorded once however often its cause is seen.
	Key   string
	DAGID string
	Run   int64 // 0: not about one run
	Kind  string
	// Event is the event, JSON.
	Event []byte
	// Created is when the entry was written; NextAt when to deliver it (again).
	Created, NextAt time.Time
	// Attempts counts the deliveries tried so far; LastError is the last one's.
	Attempts  int
	LastError string
}

// Stats counts what the store committed since it was opened.
type Stats struct {
	Batches    int64         // Apply calls that committed
	Changes    int64         // task-instance, run and result changes in them
	LogCommits int64         // transactions that appended log chunks
	CommitTime time.Duration // time spent in Apply transactions, commit included
}

// StateCounts counts runs, task instances and tries by state.
type StateCounts struct {
	Runs          map[task.RunState]int
	TaskInstances map[task.State]int
	Tries         map[task.State]int
}

// AuditEntry is one action recorded in the audit log.
type AuditEntry struct {
	ID     int64
	At     time.Time
	Actor  string // who: the token's name, or "anonymous" when access control is off
	Role   string
	Action string // what: "trigger", "clear", "mark_success", "pause", ...
	DAGID  string
	RunID  string
	TaskID string
	Detail string // the action's parameters, as given
	// Outcome is "ok", or the error the action ended with.
	Outcome string
}

// AuditFilter selects audit entries. Zero fields select everything.
type AuditFilter struct {
	DAGID  string
	Limit  int // 0 means 100
	Offset int
}

// GridCell is one task of one run as the grid shows it: for a task that is
// not mapped (or not yet expanded) its instance's state and try; for a mapped
// task, one row per state of its instances with how many have it and their
// highest try.
type GridCell struct {
	Run    int64
	TaskID string // the task's id, without a map index
	// MapIndexed is true for rows that count mapped instances.
	MapIndexed bool
	State      task.State
	Try        int
	// Count is how many instances have State (1 for an unmapped task).
	Count int
}
