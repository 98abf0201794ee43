package store

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// engine is what differs between the two databases a Store runs on, SQLite and
// PostgreSQL; every query and the rest of the Store are shared.
type engine interface {
	// migrationDir is the directory of migrationFS with this database's
	// migrations (same numbering and meaning in both).
	migrationDir() string
	// schemaVersion is the last migration applied, and whether the database
	// exists at all.
	schemaVersion(ctx context.Context, q queryer) (v int, exists bool, err error)
	setSchemaVersion(ctx context.Context, tx *sql.Tx, v int) error
	// beforeMigrate runs once the version is known not to be too new.
	beforeMigrate(ctx context.Context, s *Store) error
	// beginWrite runs first in every write transaction.
	beginWrite(ctx context.Context, tx *sql.Tx) error
	// pipeline commits steps in one transaction if it can do so faster than one
	// statement at a time; done false (with no error) leaves nothing changed and
	// the batch to the sequential way.
	pipeline(ctx context.Context, s *Store, steps []step) (done bool, err error)
	dataVersion(ctx context.Context) (int64, error)
	close() error
}

// queryer is a *sql.DB or a *sql.Tx.
type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// sqliteEngine is the SQLite side of a Store: WAL mode, one writer connection
// whose transactions are BEGIN IMMEDIATE, PRAGMA user_version and data_version.
type sqliteEngine struct {
	r *sql.DB

	mu      sync.Mutex
	verConn *sql.Conn // the one connection DataVersion asks: the value is per connection
}

// openSQLite opens the writer (unless read-only) and the readers of a SQLite
// store; a read-only open of a missing file is ErrNoDatabase.
func openSQLite(s *Store, path string, o Options) (*sqliteEngine, error) {
	if o.ReadOnly {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrNoDatabase, err)
		}
	} else {
		w, err := sql.Open("sqlite", dsn(path, o, false))
		if err != nil {
			return nil, err
		}
		w.SetMaxOpenConns(1)
		w.SetConnMaxIdleTime(0)
		s.w = w
	}
	r, err := sql.Open("sqlite", dsn(path, o, true))
	if err != nil {
		return nil, err
	}
	r.SetMaxOpenConns(5) // four readers and the DataVersion connection
	s.r = r
	return &sqliteEngine{r: r}, nil
}

func dsn(path string, o Options, readOnly bool) string {
	busy := o.BusyTimeout
	if busy <= 0 {
		busy = 10 * time.Second
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busy.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	if readOnly {
		q.Add("mode", "ro")
	} else {
		// journal_mode is set by migrate, after the schema version is checked, so
		// that a refused database is not modified.
		sync := "full"
		if o.Sync == SyncNormal {
			sync = "normal"
		}
		q.Add("_pragma", "synchronous("+sync+")")
		q.Add("_txlock", "immediate")
	}
	return "file:" + path + "?" + q.Encode()
}

func (e *sqliteEngine) migrationDir() string { return "migrations" }

func (e *sqliteEngine) schemaVersion(ctx context.Context, q queryer) (int, bool, error) {
	var v int
	if err := q.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return 0, false, fmt.Errorf("schema version: %w", err)
	}
	return v, true, nil
}

func (e *sqliteEngine) setSchemaVersion(ctx context.Context, tx *sql.Tx, v int) error {
	_, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v))
	return err
}

// beforeMigrate sets WAL mode; it is set after the version check so that a
// refused database is not modified.
func (e *sqliteEngine) beforeMigrate(ctx context.Context, s *Store) error {
	var mode string
	if err := s.w.QueryRowContext(ctx, "PRAGMA journal_mode = WAL").Scan(&mode); err != nil {
		return fmt.Errorf("set WAL mode: %w", err)
	}
	if mode != "wal" {
		return fmt.Errorf("set WAL mode: the database stays in %q mode", mode)
	}
	return nil
}

// beginWrite does nothing: the writer's transactions are BEGIN IMMEDIATE.
func (e *sqliteEngine) beginWrite(context.Context, *sql.Tx) error { return nil }

// pipeline leaves every batch to the sequential way: SQLite runs in this
// process, a statement costs no round trip.
func (e *sqliteEngine) pipeline(context.Context, *Store, []step) (bool, error) { return false, nil }

func (e *sqliteEngine) dataVersion(ctx context.Context) (int64, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.verConn == nil {
		conn, err := e.r.Conn(ctx)
		if err != nil {
			return 0, fmt.Errorf("data version: %w", err)
		}
		e.verConn = conn
	}
	var v int64
	if err := e.verConn.QueryRowContext(ctx, "PRAGMA data_version").Scan(&v); err != nil {
		return 0, fmt.Errorf("data version: %w", err)
	}
	return v, nil
}

func (e *sqliteEngine) close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.verConn == nil {
		return nil
	}
	err := e.verConn.Close()
	e.verConn = nil
	return err
}
