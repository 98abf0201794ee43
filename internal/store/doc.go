// Package store keeps trellis's state in one SQLite file (modernc.org/sqlite, pure
// Go): DAGs, DAG runs, task instances and their tries, results (XCom) and per-try
// logs. It is the only package that speaks SQL.
//
// The database runs in WAL mode with one writer connection and a pool of readers.
// Migrations are embedded and applied at Open; a database written by a newer
// binary is refused with ErrSchemaTooNew.
//
// Writes that move task instances go through Apply, which commits a Batch in one
// transaction. Every task-instance change in a batch is a compare-and-swap on the
// state the caller believes the row is in, checked against the one table of legal
// transitions (task.CheckTransition): an illegal or stale change fails the whole
// batch and nothing of it is applied. The scheduler groups all changes that are
// ready at the same moment into one batch (group commit) and acts on them only once
// Apply has returned, so a crash at any moment loses nothing it acted on.
package store
