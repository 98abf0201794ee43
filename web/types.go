package web

import (
	"encoding/json"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/storage"
	"github.com/trellisdag/trellis/task"
)

// DAGSummary is a DAG in the DAG list.
type DAGSummary struct {
	ID          string   `json:"id"`
	Description string   `json:"description,omitempty"`
	Tags        []string `json:"tags,omitempty"`
	Schedule    string   `json:"schedule"`
	// Version is the version of this binary's definition of the DAG (see
	// dag.DAG.Version); a run made with another one names it in its own.
	Version string      `json:"version"`
	Paused  bool        `json:"paused"`
	Tasks   int         `json:"tasks"`
	Params  []dag.Param `json:"params,omitempty"`
	// NextRun is the logical date (data interval start) of the next scheduled
	// run, absent for a paused DAG or one without a schedule.
	NextRun *time.Time `json:"nextRun,omitempty"`
	// NextRunAt is when the scheduler creates that run (its interval's end).
	NextRunAt *time.Time `json:"nextRunAt,omitempty"`
	// Timezone is the IANA name of the zone of the DAG's schedule ("UTC" when
	// it sets none); the UI can show times in it.
	Timezone string `json:"timezone"`
	// LatestRuns are the latest runs (at most 10), newest first.
	LatestRuns []Run `json:"latestRuns"`
	// RunCounts counts the latest runs (at most RecentRuns) by state.
	RunCounts RunCounts `json:"runCounts"`
}

// RecentRuns is how many of a DAG's latest runs DAGSummary.RunCounts counts.
const RecentRuns = 25

// RunCounts counts a DAG's latest runs by state.
type RunCounts struct {
	// Of is how many runs were counted: the DAG's latest, at most RecentRuns.
	Of      int `json:"of"`
	Queued  int `json:"queued"`
	Running int `json:"running"`
	Success int `json:"success"`
	Failed  int `json:"failed"`
}

// DAGDetail is one DAG: its summary and its full definition.
type DAGDetail struct {
	DAGSummary
	Definition dag.Snapshot `json:"definition"`
}

// DAGList is the answer of GET /dags: the DAGs that match its search and
// tag filters, by id.
type DAGList struct {
	DAGs []DAGSummary `json:"dags"`
	// Total is how many DAGs match (all of them in DAGs).
	Total int `json:"total"`
	// All is how many DAGs the binary has, filters aside.
	All int `json:"all"`
	// Tags are the tags of every DAG of the binary, sorted, filters aside (for
	// a tag filter's choices).
	Tags []string `json:"tags"`
}

// Run is a DAG run.
type Run struct {
	DAGID         string          `json:"dagId"`
	RunID         string          `json:"runId"`
	Type          task.RunType    `json:"type"`
	State         task.RunState   `json:"state"`
	LogicalDate   time.Time       `json:"logicalDate"`
	IntervalStart time.Time       `json:"dataIntervalStart"`
	IntervalEnd   time.Time       `json:"dataIntervalEnd"`
	Conf          json.RawMessage `json:"conf,omitempty"`
	Created       time.Time       `json:"created"`
	Started       *time.Time      `json:"started,omitempty"`
	Ended         *time.Time      `json:"ended,omitempty"`
	// Duration is in seconds (absent until the run ended).
	Duration *float64 `json:"duration,omitempty"`
	// DAGVersion is the version of the DAG's definition the run has (see
	// dag.DAG.Version); the DAG's current one is in its detail.
	DAGVersion string `json:"dagVersion,omitempty"`
}

// RunList is a page of runs.
type RunList struct {
	Runs   []Run `json:"runs"`
	Total  int   `json:"total"`
	Limit  int   `json:"limit"`
	Offset int   `json:"offset"`
}

// TaskInstance is one task in one run, with its latest try.
type TaskInstance struct {
	DAGID     string     `json:"dagId"`
	RunID     string     `json:"runId"`
	TaskID    string     `json:"taskId"`
	Kind      task.Kind  `json:"kind"`
	State     task.State `json:"state"`
	Try       int        `json:"try"`
	MaxTries  int        `json:"maxTries"`
	Started   *time.Time `json:"started,omitempty"`
	Ended     *time.Time `json:"ended,omitempty"`
	Duration  *float64   `json:"duration,omitempty"`
	NextRetry *time.Time `json:"nextRetry,omitempty"`
	ExitCode  *int       `json:"exitCode,omitempty"`
	Error     string     `json:"error,omitempty"`
	Executor  string     `json:"executor,omitempty"`
	Host      string     `json:"host,omitempty"`
	Pod       string     `json:"pod,omitempty"`
	// Waiting says what a task that has not started waits for (its upstream
	// tasks, its previous run, a free slot, a paused DAG, ...), and for a
	// deferred sensor when it pokes next, in the run's task list and the task
	// instance.
	Waiting string `json:"waiting,omitempty"`
	// Pokes is how many times the current try of a sensor has poked.
	Pokes int `json:"pokes,omitempty"`
	// NextPoke is when a deferred sensor pokes next.
	NextPoke *time.Time `json:"nextPoke,omitempty"`
	// Removed is true for a task the run has but the DAG no longer does.
	Removed bool `json:"removed,omitempty"`
	// MapIndex is the index of a mapped task instance's element (absent for
	// a task that is not mapped and for a mapped task's summary entry).
	MapIndex *int `json:"mapIndex,omitempty"`
	// Mapped is true for a mapped task's summary entry: its State is the
	// summary state of its instances (task.SummaryState), Try and MaxTries the
	// highest of theirs, Started the earliest start and Ended the latest end
	// (once all have ended). Before the task is expanded (or when its list
	// was empty) the entry is the task's own instance, with MapCount 0.
	Mapped bool `json:"mapped,omitempty"`
	// MapCount is how many instances a mapped task has in the run (removed
	// ones not counted).
	MapCount int `json:"mapCount,omitempty"`
	// StateCounts counts a mapped task's instances by state (removed ones
	// included).
	StateCounts map[task.State]int `json:"stateCounts,omitempty"`
}

// InstanceList is a page of a mapped task's instances in a run, by map
// index (GET .../tasks/{task}/instances).
type InstanceList struct {
	DAGID  string `json:"dagId"`
	RunID  string `json:"runId"`
	TaskID string `json:"taskId"`
	// State is the task's summary state (task.SummaryState of StateCounts).
	State task.State `json:"state"`
	// StateCounts counts all its instances by state, not only this page's.
	StateCounts map[task.State]int `json:"stateCounts"`
	// Instances are the page's instances, each with its MapIndex.
	Instances []TaskInstance `json:"instances"`
	// Total is how many instances the task has (removed ones included);
	// Limit and Offset are the page's.
	Total  int `json:"total"`
	Limit  int `json:"limit"`
	Offset int `json:"offset"`
}

// TaskInstanceList is the task instances of a run.
type TaskInstanceList struct {
	TaskInstances []TaskInstance `json:"taskInstances"`
	Total         int            `json:"total"`
}

// Try is one try of a task instance.
type Try struct {
	TaskID string `json:"taskId"`
	// MapIndex is the map index of a mapped task instance's try (TaskID is
	// then the task's id without it).
	MapIndex *int       `json:"mapIndex,omitempty"`
	Try      int        `json:"try"`
	State    task.State `json:"state"`
	Queued   *time.Time `json:"queued,omitempty"`
	Started  *time.Time `json:"started,omitempty"`
	Ended    *time.Time `json:"ended,omitempty"`
	Duration *float64   `json:"duration,omitempty"`
	ExitCode *int       `json:"exitCode,omitempty"`
	Error    string     `json:"error,omitempty"`
	Executor string     `json:"executor,omitempty"`
	Host     string     `json:"host,omitempty"`
	Pod      string     `json:"pod,omitempty"`
}

// TryList is the tries of a task instance.
type TryList struct {
	Tries []Try `json:"tries"`
}

// LogChunk is what a try's log holds after a position.
type LogChunk struct {
	// Content is the log text appended after the position given as after.
	Content string `json:"content"`
	// Next is the position to pass as after to read only what comes later.
	Next int64 `json:"next"`
	// More is true when the log holds more than this page (at most 1 MiB):
	// ask again at once with after set to Next.
	More bool `json:"more"`
	// Finished is true when the try has ended and this page reached the end
	// of its log, so nothing more will come.
	Finished bool `json:"finished"`
	// Prev is the position of this page's first part: pass it as before to
	// read the page that precedes it (with tail or before); Earlier is true
	// when such a page exists.
	Prev    int64 `json:"prev,omitempty"`
	Earlier bool  `json:"earlier,omitempty"`
}

// XCom is a task's stored result.
type XCom struct {
	Present bool            `json:"present"`
	Value   json.RawMessage `json:"value,omitempty"`
}

// PodInfo is the pod of a try: its name and, when the runner can render it, the
// pod's YAML.
type PodInfo struct {
	Pod       string `json:"pod,omitempty"`
	Available bool   `json:"available"`
	YAML      string `json:"yaml,omitempty"`
	// Reason says why no YAML is available.
	Reason string `json:"reason,omitempty"`
}

// TriggerRequest is the body of POST /dags/{dag}/runs.
type TriggerRequest struct {
	Conf json.RawMessage `json:"conf,omitempty"`
	// LogicalDate defaults to now.
	LogicalDate *time.Time `json:"logicalDate,omitempty"`
	// RunID defaults to manual__<logical date>.
	RunID string `json:"runId,omitempty"`
}

// ClearRequest is the body of POST /dags/{dag}/runs/{run}/clear.
type ClearRequest struct {
	// Tasks to clear; empty means every task of the run.
	Tasks      []string `json:"tasks,omitempty"`
	Downstream bool     `json:"downstream,omitempty"`
	FailedOnly bool     `json:"failedOnly,omitempty"`
}

// ClearTaskRequest is the body of POST .../tasks/{task}/clear, which clears
// one task (or, with map_index, one instance of a mapped task).
type ClearTaskRequest struct {
	Downstream bool `json:"downstream,omitempty"`
	FailedOnly bool `json:"failedOnly,omitempty"`
}

// ClearResult lists the task instances a clear reset.
type ClearResult struct {
	Cleared []string `json:"cleared"`
}

// MarkRequest is the body of POST .../tasks/{task}/mark.
type MarkRequest struct {
	State task.State `json:"state"`
}

// PauseRequest is the body of PATCH /dags/{dag}.
type PauseRequest struct {
	Paused *bool `json:"paused"`
}

// Grid is a DAG's recent runs (columns, oldest first) by task (rows, in
// topological order, except that the tasks of a task group come together,
// where its first task comes, and so do those of a group nested in it);
// Cells[row][column] is the task instance's state and try.
type Grid struct {
	DAGID string     `json:"dagId"`
	Tasks []GridTask `json:"tasks"`
	Runs  []Run      `json:"runs"`
	Cells [][]Cell   `json:"cells"`
	// Groups are the DAG's task groups in the order of their rows (a group
	// before those nested in it), each with its summary state per run.
	Groups []GridGroup `json:"groups,omitempty"`
}

// GridTask is a row of the grid.
type GridTask struct {
	ID    string `json:"id"`
	Level int    `json:"level"`
	// Mapped says the task is mapped: its cells are its summary state, with
	// the number of its instances in N.
	Mapped bool `json:"mapped,omitempty"`
	// Group is the full id of the task's innermost group ("" when none).
	Group string `json:"group,omitempty"`
	// Setup and Teardown say the task is a setup or a teardown.
	Setup    bool `json:"setup,omitempty"`
	Teardown bool `json:"teardown,omitempty"`
}

// GridGroup is a task group in the grid: its tasks are the rows Row to
// Row+Tasks-1 (those of the groups nested in it included).
type GridGroup struct {
	ID string `json:"id"`
	// Parent is the full id of the group it is nested in ("" at the top), and
	// Depth how deep it is (0 at the top).
	Parent string `json:"parent,omitempty"`
	Depth  int    `json:"depth"`
	Row    int    `json:"row"`
	Tasks  int    `json:"tasks"`
	// States is the group's summary state in each run (a column of Cells): the
	// first state its tasks have in this order, Airflow's for a group in its
	// grid: failed, upstream_failed, up_for_retry, queued, scheduled,
	// deferred, running, none, success, skipped, removed; "" when none of its
	// tasks has an instance in the run.
	States []task.State `json:"states"`
}

// Cell is one task instance in the grid: its state and latest try.
type Cell struct {
	State task.State `json:"s"`
	Try   int        `json:"t,omitempty"`
	// N is how many instances a mapped task has in the run (removed ones not
	// counted); State is then their summary state and Try the highest try.
	N int `json:"n,omitempty"`
}

// Calendar is a DAG's runs by day of their logical date, for the calendar
// view: the days from the first of a month some months ago to today, in a
// time zone.
type Calendar struct {
	DAGID string `json:"dagId"`
	// Timezone is the zone whose days these are (an IANA name).
	Timezone string `json:"timezone"`
	// From is the first day covered, the first of a month (YYYY-MM-DD).
	From string `json:"from"`
	// Today is today in Timezone, the last day with runs (YYYY-MM-DD).
	Today string `json:"today"`
	// Days are the days with at least one run, oldest first.
	Days []CalendarDay `json:"days"`
	// Planned are the days after today, to the end of the month, on which
	// the schedule plans a run (none for a paused or unscheduled DAG).
	Planned []string `json:"planned"`
	// Truncated is true when the DAG has more runs in these months than one
	// calendar reads (the newest 10,000): the days before the oldest one read
	// are then missing or incomplete.
	Truncated bool `json:"truncated,omitempty"`
}

// CalendarDay is the runs of one day.
type CalendarDay struct {
	Date    string `json:"date"` // YYYY-MM-DD in the calendar's time zone
	Total   int    `json:"total"`
	Queued  int    `json:"queued"`
	Running int    `json:"running"`
	Success int    `json:"success"`
	Failed  int    `json:"failed"`
	// State is the day's outcome: failed when a run failed, else running when
	// one is queued or running, else success.
	State task.RunState `json:"state"`
}

// TaskDurations is how long each task's latest try took in each of a DAG's
// recent runs, for the task duration view.
type TaskDurations struct {
	DAGID string `json:"dagId"`
	// Runs are the runs, oldest first.
	Runs []Run `json:"runs"`
	// Tasks are the DAG's tasks in topological order.
	Tasks []TaskDurationSeries `json:"tasks"`
}

// TaskDurationSeries is one task's durations, one per run of TaskDurations.Runs.
type TaskDurationSeries struct {
	TaskID string    `json:"taskId"`
	Kind   task.Kind `json:"kind"`
	// Durations are in seconds; null where the task has no finished try in
	// that run.
	Durations []*float64 `json:"durations"`
	// States are the task instance's state in each run ("" where the run
	// has no instance of the task).
	States []task.State `json:"states"`
	// Tries are the number of its latest try in each run (0: none).
	Tries []int `json:"tries"`
}

// Gantt is the tries of a run on a time axis.
type Gantt struct {
	Run   Run   `json:"run"`
	Tries []Try `json:"tries"`
}

// AuditEntry is one recorded action.
type AuditEntry struct {
	ID      int64     `json:"id"`
	At      time.Time `json:"at"`
	Actor   string    `json:"actor"`
	Role    string    `json:"role,omitempty"`
	Action  string    `json:"action"`
	DAGID   string    `json:"dagId,omitempty"`
	RunID   string    `json:"runId,omitempty"`
	TaskID  string    `json:"taskId,omitempty"`
	Detail  string    `json:"detail,omitempty"`
	Outcome string    `json:"outcome"`
}

// AuditList is a page of the audit log.
type AuditList struct {
	Entries []AuditEntry `json:"entries"`
	Total   int          `json:"total"`
	Limit   int          `json:"limit"`
	Offset  int          `json:"offset"`
}

// Session is who the caller is.
type Session struct {
	Name string `json:"name"`
	Role Role   `json:"role"`
	// AuthRequired is false when access control is off (loopback).
	AuthRequired bool `json:"authRequired"`
	// CSRFToken must be sent as X-CSRF-Token with state-changing requests made
	// with the session cookie.
	CSRFToken string `json:"csrfToken,omitempty"`
}

// LoginRequest is the body of POST /session.
type LoginRequest struct {
	Token string `json:"token"`
}

// Changes is the polling fallback of the event stream: Seq grows with every
// change the server has seen.
type Changes struct {
	Seq int64 `json:"seq"`
}

func tp(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func dur(a, b time.Time) *float64 {
	if a.IsZero() || b.IsZero() {
		return nil
	}
	d := b.Sub(a).Seconds()
	return &d
}

func runOf(r storage.Run) Run {
	return Run{DAGID: r.DAGID, RunID: r.RunID, Type: r.Type, State: r.State, LogicalDate: r.LogicalDate,
		IntervalStart: r.IntervalStart, IntervalEnd: r.IntervalEnd, Conf: r.Conf, Created: r.Created,
		Started: tp(r.Started), Ended: tp(r.Ended), Duration: dur(r.Started, r.Ended), DAGVersion: r.DAGVersion}
}

// indexPtr is k as a MapIndex: nil for a negative k (no map index).
func indexPtr(k int) *int {
	if k < 0 {
		return nil
	}
	return &k
}

func tiOf(r storage.Run, kind task.Kind, ti storage.TaskInstance) TaskInstance {
	id, k := task.ParseInstanceID(ti.TaskID)
	out := TaskInstance{DAGID: r.DAGID, RunID: r.RunID, TaskID: id, MapIndex: indexPtr(k), Kind: kind, State: ti.State, Try: ti.Try,
		MaxTries: ti.MaxTries, Started: tp(ti.Started), Ended: tp(ti.Ended), Duration: dur(ti.Started, ti.Ended),
		NextRetry: tp(ti.NextRetry), ExitCode: ti.ExitCode, Error: ti.Error, Executor: ti.Executor, Host: ti.Host, Pod: ti.Pod,
		Pokes: ti.Pokes}
	if ti.State == task.StateDeferred {
		out.NextPoke = tp(ti.NextRetry) // a deferred sensor's next poke is kept as its next retry time
	}
	return out
}

func tryOf(t storage.Try) Try {
	id, k := task.ParseInstanceID(t.TaskID)
	return Try{TaskID: id, MapIndex: indexPtr(k), Try: t.Try, State: t.State, Queued: tp(t.Queued), Started: tp(t.Started),
		Ended: tp(t.Ended), Duration: dur(t.Started, t.Ended), ExitCode: t.ExitCode, Error: t.Error,
		Executor: t.Executor, Host: t.Host, Pod: t.Pod}
}

func auditOf(e storage.AuditEntry) AuditEntry {
	return AuditEntry{ID: e.ID, At: e.At, Actor: e.Actor, Role: e.Role, Action: e.Action, DAGID: e.DAGID,
		RunID: e.RunID, TaskID: e.TaskID, Detail: e.Detail, Outcome: e.Outcome}
}
