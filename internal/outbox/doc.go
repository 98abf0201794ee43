// Package outbox delivers the side effects of committed changes: task and DAG
// callbacks, notifications and deadline alerts. The scheduler writes an
// outbox entry in the same transaction as the change that causes it; a Worker
// reads the due entries, calls the callback each names, and records the
// outcome. Delivery is at least once (a crash between a call and its record
// calls it again after the restart; every call of one entry carries the same
// task.Event.Key), each call is bounded in time, a failed call is retried with
// a growing delay a few times, and a callback's error never changes a task's
// or a run's state: it is logged, counted and kept in the entry.
package outbox
