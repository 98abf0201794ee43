package task

import (
	"context"
	"time"
)

// EventKind says what a callback is called for.
type EventKind string

// Event kinds.
const (
	// EventTaskSuccess: a task succeeded (OnSuccess).
	EventTaskSuccess EventKind = "task_success"
	// EventTaskRetry: a try failed and the task will be retried (OnRetry).
	EventTaskRetry EventKind = "task_retry"
	// EventTaskFailure: the task's last try failed (OnFailure); not called for
	// a try that will be retried.
	EventTaskFailure EventKind = "task_failure"
	// EventRunSuccess and EventRunFailure: a run ended (the DAG's callbacks).
	EventRunSuccess EventKind = "run_success"
	EventRunFailure EventKind = "run_failure"
	// EventDeadlineMissed: a run had not finished by its deadline (the DAG's
	// deadline alert); the run goes on.
	EventDeadlineMissed EventKind = "deadline_missed"
)

// Event is what a callback receives: what happened, to which task and run, and
// what helps a person act on it.
type Event struct {
	Kind   EventKind
	DAGID  string
	RunID  string
	TaskID string // empty for a run's events
	// Try is the try that ended (0 for a run's events); MaxTries its task's.
	Try, MaxTries int
	// State is the task's or the run's state after the change.
	State string
	// Error is the try's (or the run's) error; empty on success.
	Error string
	// LogicalDate and the data interval of the run.
	LogicalDate                        time.Time
	DataIntervalStart, DataIntervalEnd time.Time
	// At is when the change was committed.
	At time.Time
	// LogTail is the end of the try's log (at most a few KiB), for task events.
	LogTail string
	// URL links to the try (or the run) in the web UI when the runner knows its
	// base URL (runner.Config.BaseURL), else empty.
	URL string
	// Key identifies the event: every delivery of one event (they are at least
	// once: a crash between a call and its record repeats it) has the same key,
	// for receivers that deduplicate.
	Key string
}

// Callback is called after a change is committed, from a durable outbox: at
// least once (again after a crash of the runner), bounded in time (its ctx has
// a deadline), and retried a few times when it returns an error. Its error is
// logged and counted; it never changes a task's or a run's state.
type Callback func(ctx context.Context, e Event) error

// OnFailure calls fn after the task's last try failed (Airflow's
// on_failure_callback), not after a try that will be retried. Several calls
// add callbacks; they run in order.
func OnFailure(fn func(ctx context.Context, e Event) error) Option {
	return addCallback(EventTaskFailure, fn)
}

// OnSuccess calls fn after the task succeeded (Airflow's on_success_callback).
func OnSuccess(fn func(ctx context.Context, e Event) error) Option {
	return addCallback(EventTaskSuccess, fn)
}

// OnRetry calls fn after a try failed and the task will be retried (Airflow's
// on_retry_callback).
func OnRetry(fn func(ctx context.Context, e Event) error) Option {
	return addCallback(EventTaskRetry, fn)
}

func addCallback(kind EventKind, fn func(ctx context.Context, e Event) error) Option {
	return func(d *Def) {
		if fn == nil {
			d.fail("%s callback is nil", kind)
			return
		}
		if d.callbacks == nil {
			d.callbacks = map[EventKind][]Callback{}
		}
		d.callbacks[kind] = append(d.callbacks[kind], fn)
	}
}

// CallbacksOf returns the task's callbacks for an event kind, in the order
// they were given.
func CallbacksOf(t Task, kind EventKind) []Callback { return t.def().callbacks[kind] }
