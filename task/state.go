package task

import "fmt"

// State is the state of one task instance (a task in one DAG run). The values and
// their meanings are Airflow's.
type State string

// Task instance states.
const (
	StateNone           State = "none"            // not yet considered
	StateScheduled      State = "scheduled"       // dependencies met, waiting for a slot
	StateQueued         State = "queued"          // handed to an executor, not yet confirmed running
	StateRunning        State = "running"         // a try is running
	StateDeferred       State = "deferred"        // a sensor between pokes: holds no slot, wakes at its next poke time
	StateSuccess        State = "success"         // finished successfully
	StateFailed         State = "failed"          // finished with an error and no retries left
	StateUpForRetry     State = "up_for_retry"    // failed; waits for its retry delay
	StateUpstreamFailed State = "upstream_failed" // an upstream failed and the trigger rule cannot be met
	StateSkipped        State = "skipped"         // skipped by itself, a branch, a short-circuit or its trigger rule
	StateRemoved        State = "removed"         // its task left the DAG's definition; kept with its tries, logs and result
)

// States lists every task instance state, in lifecycle order.
var States = []State{StateNone, StateScheduled, StateQueued, StateRunning, StateDeferred, StateSuccess,
	StateFailed, StateUpForRetry, StateUpstreamFailed, StateSkipped, StateRemoved}

// Finished reports whether s is terminal: success, failed, upstream_failed,
// skipped or removed (as in Airflow, where removed is a finished state).
func (s State) Finished() bool {
	switch s {
	case StateSuccess, StateFailed, StateUpstreamFailed, StateSkipped, StateRemoved:
		return true
	}
	return false
}

// Active reports whether a try is in flight: queued or running.
func (s State) Active() bool { return s == StateQueued || s == StateRunning }

// Valid reports whether s is one of the defined states.
func (s State) Valid() bool {
	for _, v := range States {
		if s == v {
			return true
		}
	}
	return false
}

// transitions is the single definition of the legal task instance state changes.
// Anything not listed is illegal and is refused by CheckTransition.
var transitions = map[State][]State{
	// The scheduler decides from upstream states: run, skip, or upstream_failed.
	// success/failed come from a user's "mark" on a task that never ran.
	StateNone: {StateScheduled, StateSkipped, StateUpstreamFailed, StateSuccess, StateFailed, StateRemoved},
	// A scheduled task is handed over, or a run timeout / mark ends it before it starts.
	StateScheduled: {StateQueued, StateNone, StateSkipped, StateUpstreamFailed, StateSuccess, StateFailed, StateRemoved},
	// A queued try starts, finishes before its start was recorded, or is put back
	// (its executor lost it before it ran, without spending a try).
	StateQueued: {StateRunning, StateScheduled, StateSuccess, StateFailed, StateUpForRetry, StateSkipped, StateRemoved, StateDeferred},
	// A running try ends, or a sensor's poke defers it; a run timeout or mark stops it.
	StateRunning: {StateSuccess, StateFailed, StateUpForRetry, StateSkipped, StateRemoved, StateDeferred},
	// A sensor between pokes: a poke ends it (met, failed, timed out) or
	// defers it again to its next poke time (the only self edge); a run
	// timeout, mark, clear or redeploy ends the wait.
	StateDeferred: {StateDeferred, StateSuccess, StateFailed, StateUpForRetry, StateSkipped, StateNone, StateRemoved},
	// A retry becomes due; a run timeout, mark or clear ends the wait.
	StateUpForRetry: {StateScheduled, StateNone, StateSkipped, StateSuccess, StateFailed, StateRemoved},
	// Finished states change only by clear (back to none), by a user's mark, or
	// by a redeploy that removes the task from the DAG.
	StateSuccess:        {StateNone, StateFailed, StateRemoved},
	StateFailed:         {StateNone, StateSuccess, StateRemoved},
	StateUpstreamFailed: {StateNone, StateSuccess, StateFailed, StateRemoved},
	StateSkipped:        {StateNone, StateSuccess, StateFailed, StateRemoved},
	// A removed task that comes back in a later definition is restored.
	StateRemoved: {StateNone},
}

// ErrIllegalTransition is wrapped by CheckTransition's errors.
var ErrIllegalTransition = fmt.Errorf("illegal task state transition")

// CheckTransition returns nil if a task instance may go from one state to the other,
// and an error wrapping ErrIllegalTransition if not.
func CheckTransition(from, to State) error {
	for _, s := range transitions[from] {
		if s == to {
			return nil
		}
	}
	return fmt.Errorf("%w: %s -> %s", ErrIllegalTransition, from, to)
}

// RunState is the state of a DAG run.
type RunState string

// DAG run states.
const (
	RunQueued  RunState = "queued"  // created, waiting for max_active_runs
	RunRunning RunState = "running" // its tasks are being scheduled
	RunSuccess RunState = "success" // every leaf task succeeded or was skipped
	RunFailed  RunState = "failed"  // a leaf task failed, or the run timed out
)

// Finished reports whether the run is done.
func (s RunState) Finished() bool { return s == RunSuccess || s == RunFailed }

// RunType says how a DAG run came to be.
type RunType string

// DAG run types.
const (
	RunManual    RunType = "manual"    // triggered by a person or the API
	RunScheduled RunType = "scheduled" // created by the scheduler for a data interval
	RunBackfill  RunType = "backfill"  // created by dags backfill
	// RunAssetTriggered: created when the assets a DAG is scheduled on had
	// new events (Airflow's asset_triggered).
	RunAssetTriggered RunType = "asset_triggered"
)
