package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/trellisdag/trellis/storage"
)

//go:embed migrations/*.sql migrations_postgres/*.sql
var migrationFS embed.FS

// Errors callers branch on.
var (
	// ErrNotFound is storage.ErrNotFound.
	ErrNotFound = storage.ErrNotFound
	// ErrConflict is storage.ErrConflict.
	ErrConflict = storage.ErrConflict
	// ErrExists is storage.ErrExists.
	ErrExists = storage.ErrExists
	// ErrSchemaTooNew: the database was written by a newer trellis.
	ErrSchemaTooNew = errors.New("database schema is newer than this binary")
	// ErrNoDatabase: a read-only open found no database file.
	ErrNoDatabase = errors.New("no database")
)

// Sync is the durability of the writer's commits: SQLite's synchronous setting,
// PostgreSQL's synchronous_commit.
type Sync int

const (
	// SyncFull (the default) fsyncs every commit: a committed change survives a
	// crash of the process and of the machine (PostgreSQL: synchronous_commit on).
	SyncFull Sync = iota
	// SyncNormal fsyncs at WAL checkpoints only: a committed change survives a crash
	// of the process (kill -9), not a power loss (PostgreSQL: synchronous_commit
	// off, a commit survives a crash of trellis, not of the server).
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
	// (default 10s; PostgreSQL's lock_timeout).
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

	eng engine // what differs between SQLite and PostgreSQL

	logs     chan logReq // log chunks for the appender
	logsDone chan struct{}

	stats struct {
		batches, changes, logCommits, commitNanos atomic.Int64
	}
}

// Stats is storage.Stats.
type Stats = storage.Stats

// Stats returns the commit counters.
func (s *Store) Stats() Stats {
	return Stats{Batches: s.stats.batches.Load(), Changes: s.stats.changes.Load(),
		LogCommits: s.stats.logCommits.Load(), CommitTime: time.Duration(s.stats.commitNanos.Load())}
}

// Open opens (creating when needed) the database at path and applies migrations.
// A path that starts with postgres:// or postgresql:// is a PostgreSQL DSN: the
// store then lives in the schema its connections see first (the DSN's
// search_path, by default public), which must exist; anything else is a SQLite
// file.
func Open(ctx context.Context, path string, o Options) (*Store, error) {
	s := &Store{ro: o.ReadOnly, logMax: o.MaxLogBytes}
	switch {
	case s.logMax == 0:
		s.logMax = DefaultMaxLogBytes
	case s.logMax < 0:
		s.logMax = 0
	}
	name := path
	var err error
	if IsPostgres(path) {
		name = redactDSN(path)
		s.path = name
		var e *pgEngine
		if e, err = openPostgres(ctx, s, path, o); err == nil {
			s.eng = e
		}
	} else if s.path, err = filepath.Abs(path); err == nil {
		var e *sqliteEngine
		if e, err = openSQLite(s, s.path, o); err == nil {
			s.eng = e
		}
	}
	if err == nil {
		err = s.start(ctx, o)
	}
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("database %q: %w", name, err)
	}
	return s, nil
}

// start migrates (or, read-only, checks the version) and prepares the writer.
func (s *Store) start(ctx context.Context, o Options) error {
	if o.ReadOnly {
		v, exists, err := s.eng.schemaVersion(ctx, s.r)
		if err != nil {
			return err
		}
		if !exists {
			return ErrNoDatabase
		}
		return tooNew(v)
	}
	if err := s.migrate(ctx); err != nil {
		return err
	}
	if err := s.prepare(ctx); err != nil {
		return err
	}
	s.startLogAppender()
	return nil
}

// Path returns the database file's absolute path, or the PostgreSQL DSN with its
// password hidden.
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
	s.stmts = nil
	if s.eng != nil {
		errs = append(errs, s.eng.close())
	}
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

// migrations reads a migrations directory: migrations (SQLite) or
// migrations_postgres, same numbering, same meaning.
func migrations(dir string) ([]migration, error) {
	entries, err := migrationFS.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		n, err := strconv.Atoi(strings.SplitN(e.Name(), "_", 2)[0])
		if err != nil {
			return nil, fmt.Errorf("migration %q: no version prefix", e.Name())
		}
		b, err := migrationFS.ReadFile(dir + "/" + e.Name())
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
	ms, _ := migrations("migrations")
	if len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].version
}

func tooNew(v int) error {
	if v > SchemaVersion() {
		return fmt.Errorf("%w: it has version %d, this binary knows up to %d; use a newer trellis", ErrSchemaTooNew, v, SchemaVersion())
	}
	return nil
}

// migrate applies the migrations the database lacks, each in a transaction of
// its own, after checking that the database is not newer than this binary.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := migrations(s.eng.migrationDir())
	if err != nil {
		return err
	}
	v, _, err := s.eng.schemaVersion(ctx, s.w)
	if err != nil {
		return err
	}
	if err := tooNew(v); err != nil {
		return err
	}
	if err := s.eng.beforeMigrate(ctx, s); err != nil {
		return err
	}
	for _, m := range ms {
		err := s.tx(ctx, func(tx *sql.Tx) error {
			v, _, err := s.eng.schemaVersion(ctx, tx)
			if err != nil {
				return err
			}
			if v >= m.version {
				return nil
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return fmt.Errorf("migration %s: %w", m.name, err)
			}
			if err := s.eng.setSchemaVersion(ctx, tx, m.version); err != nil {
				return fmt.Errorf("migration %s: record the version: %w", m.name, err)
			}
			return nil
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
	if err := s.eng.beginWrite(ctx, tx); err != nil {
		tx.Rollback()
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
// by other processes cheaply. On SQLite it is PRAGMA data_version; on PostgreSQL
// a count of the change notifications (LISTEN/NOTIFY) of the store's schema,
// which every write transaction sends at its commit.
func (s *Store) DataVersion(ctx context.Context) (int64, error) {
	return s.eng.dataVersion(ctx)
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
