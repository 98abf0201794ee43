package dag

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/trellisdag/trellis/task"
)

// OnSuccess calls fn after a run of the DAG succeeded (Airflow's DAG-level
// on_success_callback). Like every callback it runs after the change is
// committed, from a durable outbox, at least once (see task.Callback); its
// error is logged and never changes the run's state. Several calls add
// callbacks.
func OnSuccess(fn func(ctx context.Context, e task.Event) error) Option {
	return addCallback(task.EventRunSuccess, fn)
}

// OnFailure calls fn after a run of the DAG failed (Airflow's DAG-level
// on_failure_callback): a leaf task failed, or the run timed out.
func OnFailure(fn func(ctx context.Context, e task.Event) error) Option {
	return addCallback(task.EventRunFailure, fn)
}

func addCallback(kind task.EventKind, fn func(ctx context.Context, e task.Event) error) Option {
	return func(d *DAG) {
		if fn == nil {
			d.fail("%s callback is nil", kind)
			return
		}
		if d.callbacks == nil {
			d.callbacks = map[task.EventKind][]task.Callback{}
		}
		d.callbacks[kind] = append(d.callbacks[kind], fn)
	}
}

// Callbacks returns the DAG's callbacks for a run event kind (run_success,
// run_failure), in the order given. Deadline alerts are in Deadlines.
func (d *DAG) Callbacks(kind task.EventKind) []task.Callback { return d.callbacks[kind] }

// DeadlineFrom is the reference time of a deadline alert.
type DeadlineFrom string

// Deadline references, as Airflow 3.1's deadline alerts.
const (
	// FromIntervalEnd: the end of the run's data interval (for a scheduled
	// run, when it was due).
	FromIntervalEnd DeadlineFrom = "interval_end"
	// FromQueued: when the run was created (queued).
	FromQueued DeadlineFrom = "queued"
)

// Deadline is a deadline alert: Callback is called once when a run has not
// finished After its reference time From; the run goes on.
type Deadline struct {
	From     DeadlineFrom
	After    time.Duration
	Callback task.Callback
}

// At is the moment a run with the given data interval end and creation time
// is late.
func (dl Deadline) At(intervalEnd, queued time.Time) time.Time {
	if dl.From == FromQueued {
		return queued.Add(dl.After)
	}
	return intervalEnd.Add(dl.After)
}

// AlertAfter adds a deadline alert (Airflow 3.1's DeadlineAlert): fn is called
// once with a deadline_missed event when a run has not finished after the
// reference time from plus after. The run is not stopped.
func AlertAfter(after time.Duration, from DeadlineFrom, fn func(ctx context.Context, e task.Event) error) Option {
	return func(d *DAG) {
		switch {
		case fn == nil:
			d.fail("deadline alert: callback is nil")
		case after <= 0:
			d.fail("deadline alert: %s: want a positive duration", after)
		case from != FromIntervalEnd && from != FromQueued:
			d.fail("deadline alert: reference %q: want %q or %q", from, FromIntervalEnd, FromQueued)
		default:
			d.deadlines = append(d.deadlines, Deadline{From: from, After: after, Callback: fn})
		}
	}
}

// Deadlines returns the DAG's deadline alerts.
func (d *DAG) Deadlines() []Deadline { return slices.Clone(d.deadlines) }

// String describes the alert, as dags show prints it.
func (dl Deadline) String() string {
	return fmt.Sprintf("alert when not finished %s after %s", dl.After, dl.From)
}
