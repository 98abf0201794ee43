package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Errors callers branch on.
var (
	// ErrNotFound: the DAG, run or task instance does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a batch's change did not find the row in the state it expected
	// (someone else changed it), or the change is not a legal transition.
	ErrConflict = errors.New("conflicting state change")
	// ErrExists: a run with that id already exists.
	ErrExists = errors.New("already exists")
	// ErrSchemaTooNew: the database was written by a newer trellis.
	ErrSchemaTooNew = errors.New("database schema is newer than this binary")
	// ErrNoDatabase: a read-only open found no database file.
	ErrNoDatabase = errors.New("no database")
)

// Sync is SQLite's synchronous setting for the writer.
type Sync int

const (
	// SyncFull (the default) fsyncs every commit: a committed change survives a
	// crash of the process and of the machine.
	SyncFull Sync = iota
	// SyncNormal fsyncs at WAL checkpoints only: a committed change survives a crash
	// of the process (kill -9), not a power loss.
	SyncNormal
)

// Options configure Open. The zero value is a sane default.
type Options struct {
	// Sync is the durability of commits (default SyncFull).
	Sync Sync
	// ReadOnly opens an existing database for reading only; nothing is created or
	// migrated. A missing file is ErrNoDatabase.
	ReadOnly bool
	// BusyTimeout is how long a connection waits for another process's lock
	// (default 10s).
	BusyTimeout time.Duration
	// MaxLogBytes bounds the log the TryLog writer keeps of one try (default
	// DefaultMaxLogBytes; negative: unbounded). Past it, the first half and the
	// last half are kept with a line between them that says how much was dropped.
	MaxLogBytes int64
}

// DefaultMaxLogBytes is Options.MaxLogBytes's default: 64 MiB.
const DefaultMaxLogBytes = 64 << 20

// Store is an open trellis database. It is safe for concurrent use.
type Store struct {
	path   string
	logMax int64   // Options.MaxLogBytes, resolved (0: unbounded)
	w      *sql.DB // the single writer connection
	r      *sql.DB // readers
	ro     bool

	stmts map[string]*sql.Stmt // the batch statements, prepared once on the writer

	verMu   sync.Mutex
	verConn *sql.Conn // the one connection DataVersion asks: the value is per connection

	logs     chan logReq // log chunks for the appender
	logsDone chan struct{}

	stats struct {
		batches, changes, logCommits, commitNanos atomic.Int64
	}
}

// Stats counts what the store committed since it was opened.
type Stats struct {
	Batches    int64         // Apply calls that committed
	Changes    int64         // task-instance, run and result changes in them
	LogCommits int64         // transactions that appended log chunks
	CommitTime time.Duration // time spent in Apply transactions, commit included
}

// Stats returns the commit counters.
func (s *Store) Stats() Stats {
	return Stats{Batches: s.stats.batches.Load(), Changes: s.stats.changes.Load(),
		LogCommits: s.stats.logCommits.Load(), CommitTime: time.Duration(s.stats.commitNanos.Load())}
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

// Open opens (creating when needed) the database at path and applies migrations.
func Open(ctx context.Context, path string, o Options) (*Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("database %q: %w", path, err)
	}
	s := &Store{path: abs, ro: o.ReadOnly, logMax: o.MaxLogBytes}
	switch {
	case s.logMax == 0:
		s.logMax = DefaultMaxLogBytes
	case s.logMax < 0:
		s.logMax = 0
	}
	if o.ReadOnly {
		if _, err := os.Stat(abs); err != nil {
			return nil, fmt.Errorf("database %q: %w", path, ErrNoDatabase)
		}
	} else {
		s.w, err = sql.Open("sqlite", dsn(abs, o, false))
		if err != nil {
			return nil, fmt.Errorf("database %q: %w", path, err)
		}
		s.w.SetMaxOpenConns(1)
		s.w.SetConnMaxIdleTime(0)
		if err := s.migrate(ctx); err != nil {
			s.w.Close()
			return nil, fmt.Errorf("database %q: %w", path, err)
		}
		if err := s.prepare(ctx); err != nil {
			s.w.Close()
			return nil, fmt.Errorf("database %q: %w", path, err)
		}
		s.startLogAppender()
	}
	s.r, err = sql.Open("sqlite", dsn(abs, o, true))
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("database %q: %w", path, err)
	}
	s.r.SetMaxOpenConns(5) // four readers and the DataVersion connection
	if o.ReadOnly {
		if err := s.checkVersion(ctx, s.r); err != nil {
			s.Close()
			return nil, fmt.Errorf("database %q: %w", path, err)
		}
	}
	return s, nil
}

// Path returns the database file's absolute path.
func (s *Store) Path() string { return s.path }

// Close waits for pending log appends and closes the database.
func (s *Store) Close() error {
	if s.logs != nil {
		close(s.logs)
		<-s.logsDone
		s.logs = nil
	}
	var errs []error
	for _, st := range s.stmts {
		errs = append(errs, st.Close())
	}
	s.verMu.Lock()
	if s.verConn != nil {
		errs = append(errs, s.verConn.Close())
		s.verConn = nil
	}
	s.verMu.Unlock()
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	if s.w != nil {
		errs = append(errs, s.w.Close())
	}
	return errors.Join(errs...)
}

type migration struct {
	version int
	name    string
	sql     string
}

func migrations() ([]migration, error) {
	entries, err := migrationFS.ReadDir("migrations")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		n, err := strconv.Atoi(strings.SplitN(e.Name(), "_", 2)[0])
		if err != nil {
			return nil, fmt.Errorf("migration %q: no version prefix", e.Name())
		}
		b, err := migrationFS.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{n, e.Name(), string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	return ms, nil
}

// SchemaVersion is the schema version this binary writes.
func SchemaVersion() int {
	ms, _ := migrations()
	if len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].version
}

func (s *Store) checkVersion(ctx context.Context, db *sql.DB) error {
	var v int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return err
	}
	if v > SchemaVersion() {
		return fmt.Errorf("%w: it has version %d, this binary knows up to %d; use a newer trellis", ErrSchemaTooNew, v, SchemaVersion())
	}
	return nil
}

func (s *Store) migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	if err := s.checkVersion(ctx, s.w); err != nil {
		return err
	}
	var mode string
	if err := s.w.QueryRowContext(ctx, "PRAGMA journal_mode = WAL").Scan(&mode); err != nil {
		return fmt.Errorf("set WAL mode: %w", err)
	}
	if mode != "wal" {
		return fmt.Errorf("set WAL mode: the database stays in %q mode", mode)
	}
	for _, m := range ms {
		err := s.tx(ctx, func(tx *sql.Tx) error {
			var v int
			if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
				return err
			}
			if v >= m.version {
				return nil
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return fmt.Errorf("migration %s: %w", m.name, err)
			}
			_, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", m.version))
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	if s.w == nil {
		return errors.New("store is read-only")
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// DataVersion returns a number that changes whenever another connection (another
// process, or this store's writer) commits. Pollers use it to notice changes made
// by other processes cheaply.
func (s *Store) DataVersion(ctx context.Context) (int64, error) {
	s.verMu.Lock()
	defer s.verMu.Unlock()
	if s.verConn == nil {
		conn, err := s.r.Conn(ctx)
		if err != nil {
			return 0, err
		}
		s.verConn = conn
	}
	var v int64
	err := s.verConn.QueryRowContext(ctx, "PRAGMA data_version").Scan(&v)
	return v, err
}

func micros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

func fromMicros(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMicro(v.Int64).UTC()
}

func intPtr(v sql.NullInt64) *int {
	if !v.Valid {
		return nil
	}
	i := int(v.Int64)
	return &i
}
