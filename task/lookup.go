package task

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Lookup is what a task may read and do about other DAGs of the same binary:
// the states of their runs and tasks at a logical date, and triggering a run.
// Sensors that wait on other DAGs (sensors.ExternalTask) and the trigger task
// (sensors.TriggerDAG) use it; the scheduler provides it to tries that run in
// the runner (LookupFrom).
type Lookup interface {
	// RunStates returns the states of dagID's runs at logicalDate (none: no run).
	RunStates(ctx context.Context, dagID string, logicalDate time.Time) ([]RunState, error)
	// TaskStates returns the states of taskID in dagID's runs at logicalDate.
	TaskStates(ctx context.Context, dagID, taskID string, logicalDate time.Time) ([]State, error)
	// RunState returns the state of dagID's run runID (found false: no such run).
	RunState(ctx context.Context, dagID, runID string) (state RunState, found bool, err error)
	// TriggerRun creates a manual run of dagID with the given id, logical date
	// and conf (checked against the DAG's params); a run with that id that
	// exists already is not an error (created false), so a retried trigger
	// does not create a second run.
	TriggerRun(ctx context.Context, dagID, runID string, logicalDate time.Time, conf json.RawMessage) (created bool, err error)
}

// ErrNoLookup is returned by tasks that need a Lookup where the try has none
// (a worker pod, an isolated child process).
var ErrNoLookup = errors.New("this try cannot see other DAGs' runs: it must run in the runner (it does as a sensor)")

type lookupKey struct{}

// WithLookup returns a context that carries l; the local executor sets it.
func WithLookup(ctx context.Context, l Lookup) context.Context {
	return context.WithValue(ctx, lookupKey{}, l)
}

// LookupFrom returns the Lookup ctx carries, or ErrNoLookup.
func LookupFrom(ctx context.Context) (Lookup, error) {
	if l, ok := ctx.Value(lookupKey{}).(Lookup); ok && l != nil {
		return l, nil
	}
	return nil, ErrNoLookup
}
