package storage

import "errors"

// Errors callers branch on (with errors.Is).
var (
	// ErrNotFound: the DAG, run or task instance does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a batch's change did not find the row in the state it expected
	// (someone else changed it), or the change is not a legal transition.
	ErrConflict = errors.New("conflicting state change")
	// ErrExists: a run with that id already exists.
	ErrExists = errors.New("already exists")
	// ErrActive: a task to clear has a try in flight.
	ErrActive = errors.New("task has a try in flight")
	// ErrRunActive: a run to delete is queued or running.
	ErrRunActive = errors.New("the run is active; wait for it to end (or mark its tasks) before deleting it")
	// ErrLocked: another scheduler holds the database's scheduler lock.
	ErrLocked = errors.New("another scheduler holds the lock on this database")
)
