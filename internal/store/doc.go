// Package store keeps trellis's state in one SQLite file (modernc.org/sqlite, pure
// Go), or in a PostgreSQL database (github.com/jackc/pgx/v5) when Open is given a
// postgres:// DSN: DAGs, DAG runs, task instances and their tries, results (XCom)
// and per-try logs. It is the only package that speaks SQL.
//
// Both backends run the same statements, written once with ? placeholders in the
// SQL both understand; a PostgreSQL store's connections rewrite them (pgSQL: $n
// placeholders and the few fragments listed in pgRewrites). What differs lies
// behind the engine interface: migrations (migrations/ and
// migrations_postgres/, same numbering and meaning), the schema version
// (PRAGMA user_version; a table), change detection for DataVersion (PRAGMA
// data_version; a NOTIFY sent by every write transaction and counted on a LISTEN
// connection), the serialization of write transactions (BEGIN IMMEDIATE; a
// transaction-level advisory lock taken with BEGIN), and the scheduler lock of
// Lock (flock; a session advisory lock). On PostgreSQL a batch's statements are
// pipelined in one round trip. A PostgreSQL store lives in the first schema of
// the DSN's search_path, so several stores can share a database.
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
