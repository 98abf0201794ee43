// Package storage holds what a trellis state store records: DAG records,
// runs, task instances (a mapped task's instances among them), tries, results,
// batches of changes, asset events and outbox entries, and the errors callers
// branch on. It has no code that touches a database.
//
// The seam is owned by its users: the scheduler (scheduler.Store), the UI and
// API (web.Store) and the run operations each declare the methods they need,
// over these types. The store of internal/store implements all of them on
// SQLite (the embedded default: one file) and on PostgreSQL (for a hot
// standby: `--db postgres://...`), and its test suite, run against both, is the
// conformance suite a backend must pass.
//
// Every change goes through a Batch, applied in one transaction: each
// task-instance or run change is a compare-and-swap on the state it expects
// (TIChange.From, RunChange.From) and a legal transition (task.CheckTransition);
// a change that finds another state fails the whole batch with a
// *ConflictError, so a scheduler never overwrites what another process did.
package storage
