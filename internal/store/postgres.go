package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"hash/fnv"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// PostgreSQL runs the same statements as SQLite: every statement of this package
// is written once, in the SQL that both understand, with ? placeholders. The few
// constructs that differ are written in SQLite's form and rewritten, with the
// placeholders, by the connections of a PostgreSQL store (pgSQL), once per
// statement text.

// IsPostgres reports whether path names a PostgreSQL database (a postgres:// or
// postgresql:// DSN) rather than a SQLite file.
func IsPostgres(path string) bool {
	return strings.HasPrefix(path, "postgres://") || strings.HasPrefix(path, "postgresql://")
}

// pgRewrites are the fragments written in SQLite's dialect that PostgreSQL spells
// otherwise. Each must appear in a statement of this package (a test checks).
var pgRewrites = []struct{ sqlite, postgres string }{
	// A JSON array bound to one parameter, one row per element (column value):
	// jsonb_array_elements with a better row estimate (migrations_postgres/0001).
	{`json_each(?)`, `trellis_json_rows(CAST(? AS jsonb))`},
	// A log chunk travels hex-encoded in the JSON array.
	{`unhex(c.value->>'d')`, `decode(c.value->>'d', 'hex')`},
	// A result's JSON text (a string in the array), stored as bytes.
	{`CAST(c.value->>'v' AS BLOB)`, `convert_to(c.value->>'v', 'UTF8')`},
}

var pgCache sync.Map // SQLite-dialect statement -> PostgreSQL statement

// pgSQL rewrites a statement for PostgreSQL: the fragments of pgRewrites, and ?
// placeholders to $1, $2... (a ? in a string literal, a quoted identifier or a
// comment stays).
func pgSQL(q string) string {
	if v, ok := pgCache.Load(q); ok {
		return v.(string)
	}
	out := q
	for _, r := range pgRewrites {
		out = strings.ReplaceAll(out, r.sqlite, r.postgres)
	}
	out = rebind(out)
	pgCache.Store(q, out)
	return out
}

// rebind numbers the ? placeholders of q outside literals and comments.
func rebind(q string) string {
	if !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'' || c == '"':
			j := i + 1
			for j < len(q) && q[j] != c {
				j++
			}
			b.WriteString(q[i:min(j+1, len(q))])
			i = j
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			j := strings.IndexByte(q[i:], '\n')
			if j < 0 {
				j = len(q) - i
			}
			b.WriteString(q[i : i+j])
			i += j - 1
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// pgConnector opens pgx's database/sql connections wrapped in pgConn.
type pgConnector struct {
	base  driver.Connector
	begin string // pgConn.begin
}

func (c pgConnector) Connect(ctx context.Context) (driver.Conn, error) {
	cn, err := c.base.Connect(ctx)
	if err != nil {
		return nil, err
	}
	sc, ok := cn.(*stdlib.Conn)
	if !ok {
		cn.Close()
		return nil, fmt.Errorf("pgx returned a %T, not a *stdlib.Conn", cn)
	}
	return &pgConn{sc, c.begin}, nil
}

func (c pgConnector) Driver() driver.Driver { return c.base.Driver() }

// pgConn is pgx's connection with every statement rewritten by pgSQL; the rest of
// its methods (argument checks, session reset) are pgx's own.
type pgConn struct {
	*stdlib.Conn
	// begin, when set, begins every read-write transaction of default isolation
	// (the writer's): BEGIN and the writer lock in one round trip.
	begin string
}

func (c *pgConn) Prepare(q string) (driver.Stmt, error) { return c.Conn.Prepare(pgSQL(q)) }

func (c *pgConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	return c.Conn.PrepareContext(ctx, pgSQL(q))
}

func (c *pgConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	return c.Conn.ExecContext(ctx, pgSQL(q), args)
}

func (c *pgConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	return c.Conn.QueryContext(ctx, pgSQL(q), args)
}

// BeginTx begins a transaction; the writer's begin with c.begin.
func (c *pgConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if c.begin == "" || opts.ReadOnly || sql.IsolationLevel(opts.Isolation) != sql.LevelDefault {
		return c.Conn.BeginTx(ctx, opts)
	}
	if c.Conn.Conn().IsClosed() {
		return nil, driver.ErrBadConn
	}
	tx, err := c.Conn.Conn().BeginTx(ctx, pgx.TxOptions{BeginQuery: c.begin})
	if err != nil {
		return nil, err
	}
	return pgTx{ctx, tx}, nil
}

// pgTx is a transaction begun by pgConn.BeginTx.
type pgTx struct {
	ctx context.Context
	tx  pgx.Tx
}

func (t pgTx) Commit() error   { return t.tx.Commit(t.ctx) }
func (t pgTx) Rollback() error { return t.tx.Rollback(t.ctx) }

// pgChannel is the channel every write transaction notifies, with its schema's
// name.
const pgChannel = "trellis_changes"

// pgEngine is the PostgreSQL side of a Store.
type pgEngine struct {
	cfg       *pgx.ConnConfig // the DSN's, for the listener
	schema    string          // current_schema() of the DSN's connections
	writerKey int64           // advisory lock that serializes write transactions

	mu       sync.Mutex
	listener *pgx.Conn // LISTENs on pgChannel; nil until DataVersion is first called
	changes  atomic.Int64
}

func pgConfig(dsn string) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse DSN: %w", err)
	}
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["application_name"] = "trellis"
	return cfg, nil
}

// openPostgres opens the writer (unless read-only) and the readers of a
// PostgreSQL store. Sync maps to synchronous_commit (SyncFull: on, the commit
// waits for the WAL flush; SyncNormal: off, a commit survives a crash of the
// trellis process, not of the server), BusyTimeout to lock_timeout.
func openPostgres(ctx context.Context, s *Store, dsn string, o Options) (*pgEngine, error) {
	cfg, err := pgConfig(dsn)
	if err != nil {
		return nil, err
	}
	e := &pgEngine{cfg: cfg}
	rc := cfg.Copy()
	rc.RuntimeParams["default_transaction_read_only"] = "on"
	s.r = sql.OpenDB(pgConnector{base: stdlib.GetConnector(*rc)})
	s.r.SetMaxOpenConns(4)
	s.r.SetConnMaxIdleTime(time.Minute)
	var db string
	var schema sql.NullString
	if err := s.r.QueryRowContext(ctx, `SELECT current_database(), current_schema()`).Scan(&db, &schema); err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	if !schema.Valid {
		return nil, fmt.Errorf("the search_path names no existing schema: %w", ErrNoDatabase)
	}
	e.schema = schema.String
	e.writerKey = pgLockKey(db, e.schema, "writer")
	if o.ReadOnly {
		return e, nil
	}
	wc := cfg.Copy()
	wc.RuntimeParams["synchronous_commit"] = "on"
	if o.Sync == SyncNormal {
		wc.RuntimeParams["synchronous_commit"] = "off"
	}
	busy := o.BusyTimeout
	if busy <= 0 {
		busy = 10 * time.Second
	}
	wc.RuntimeParams["lock_timeout"] = strconv.FormatInt(busy.Milliseconds(), 10)
	// Write transactions of every process are serialized by the schema's writer
	// lock, taken with BEGIN, as SQLite's BEGIN IMMEDIATE serializes them: a
	// read-then-write in a transaction sees no concurrent change.
	// The transaction notifies its change to the DataVersion listeners, at
	// commit (a rolled back one notifies nothing).
	begin := fmt.Sprintf("BEGIN; SELECT pg_advisory_xact_lock(%d); SELECT pg_notify('%s', %s)", e.writerKey, pgChannel, pgQuote(e.schema))
	s.w = sql.OpenDB(pgConnector{stdlib.GetConnector(*wc), begin})
	s.w.SetMaxOpenConns(1)
	s.w.SetConnMaxIdleTime(0)
	return e, nil
}

func (e *pgEngine) migrationDir() string { return "migrations_postgres" }

func (e *pgEngine) schemaVersion(ctx context.Context, q queryer) (int, bool, error) {
	var exists bool
	if err := q.QueryRowContext(ctx, `SELECT to_regclass('trellis_schema_version') IS NOT NULL`).Scan(&exists); err != nil {
		return 0, false, fmt.Errorf("schema version: %w", err)
	}
	if !exists {
		return 0, false, nil
	}
	var v int
	if err := q.QueryRowContext(ctx, `SELECT COALESCE(max(version), 0) FROM trellis_schema_version`).Scan(&v); err != nil {
		return 0, false, fmt.Errorf("schema version: %w", err)
	}
	return v, true, nil
}

func (e *pgEngine) setSchemaVersion(ctx context.Context, tx *sql.Tx, v int) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM trellis_schema_version`); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO trellis_schema_version (version) VALUES (?)`, v)
	return err
}

// beforeMigrate creates the table that holds the schema version (SQLite keeps it
// in the file's header).
func (e *pgEngine) beforeMigrate(ctx context.Context, s *Store) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS trellis_schema_version (version BIGINT NOT NULL)`)
		return err
	})
}

// beginWrite does nothing: the writer's BEGIN takes the writer lock (see
// openPostgres).
func (e *pgEngine) beginWrite(context.Context, *sql.Tx) error { return nil }

// pipeline sends a batch's transaction in one round trip (pgx's pipelined
// batch: BEGIN, the writer lock, every step) and commits it in a second, if
// every step changed the rows it had to. Otherwise it rolls back and leaves the
// batch to the sequential way, which names the conflict (or applies the batch,
// if what conflicted changed meanwhile: every step is a compare-and-swap).
func (e *pgEngine) pipeline(ctx context.Context, s *Store, steps []step) (bool, error) {
	if s.w == nil {
		return false, nil
	}
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	done := false
	err = conn.Raw(func(dc any) error {
		pc, ok := dc.(*pgConn)
		if !ok {
			return fmt.Errorf("writer connection is a %T", dc)
		}
		c := pc.Conn.Conn()
		b := &pgx.Batch{}
		b.Queue("BEGIN")
		b.Queue("SELECT pg_advisory_xact_lock($1)", e.writerKey)
		b.Queue("SELECT pg_notify($1, $2)", pgChannel, e.schema)
		for _, st := range steps {
			b.Queue(pgSQL(st.q), st.args...)
		}
		br := c.SendBatch(ctx, b)
		ok = true
		var failed error
		for i := -3; i < len(steps); i++ {
			tag, err := br.Exec()
			switch {
			case err != nil:
				if failed == nil {
					failed = err
					if i >= 0 {
						failed = fmt.Errorf("%s: %w", steps[i].what, err)
					}
				}
				ok = false
			case i >= 0 && steps[i].want >= 0 && tag.RowsAffected() != steps[i].want:
				ok = false
			}
		}
		if err := br.Close(); err != nil && failed == nil {
			failed = err
		}
		end := "COMMIT"
		if !ok || failed != nil {
			end = "ROLLBACK"
		}
		if _, err := c.Exec(ctx, end); err != nil {
			return fmt.Errorf("%s: %w", strings.ToLower(end), errors.Join(err, failed))
		}
		var pgErr *pgconn.PgError
		if failed != nil && !errors.As(failed, &pgErr) {
			return failed // the connection's, not a statement's
		}
		done = ok && failed == nil
		return nil
	})
	return done, err
}

// dataVersion counts the notifications of the schema's changes received on a
// dedicated LISTEN connection. Each call makes one round trip on it, which reads
// every notification the server sent before: a change committed before the call
// is counted by it. A lost listener connection counts as a change (notifications
// may have been missed) and is opened again by the next call.
func (e *pgEngine) dataVersion(ctx context.Context) (int64, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.listener == nil {
		cfg := e.cfg.Copy()
		cfg.OnNotification = func(_ *pgconn.PgConn, n *pgconn.Notification) {
			if n.Channel == pgChannel && n.Payload == e.schema {
				e.changes.Add(1)
			}
		}
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			return 0, fmt.Errorf("data version: listen: %w", err)
		}
		if _, err := conn.Exec(ctx, "LISTEN "+pgChannel); err != nil {
			conn.Close(context.Background())
			return 0, fmt.Errorf("data version: listen: %w", err)
		}
		e.listener = conn
		e.changes.Add(1)
		return e.changes.Load(), nil
	}
	if _, err := e.listener.Exec(ctx, "SELECT 1"); err != nil {
		e.listener.Close(context.Background())
		e.listener = nil
		e.changes.Add(1)
		return 0, fmt.Errorf("data version: %w", err)
	}
	return e.changes.Load(), nil
}

func (e *pgEngine) close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.listener == nil {
		return nil
	}
	err := e.listener.Close(context.Background())
	e.listener = nil
	return err
}

// pgLockKey is the advisory lock key of a purpose in one schema of one database.
func pgLockKey(db, schema, what string) int64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "trellis\x00%s\x00%s\x00%s", db, schema, what)
	return int64(h.Sum64())
}

// pgLock takes the scheduler lock of a PostgreSQL database: a session advisory
// lock held by a connection of its own, released by closing it (or when the
// process or its connection dies).
func pgLock(dsn string, wait bool, lost chan<- struct{}) (func() error, error) {
	ctx := context.Background()
	cfg, err := pgConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", redactDSN(dsn), err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", redactDSN(dsn), err)
	}
	fail := func(err error) (func() error, error) {
		conn.Close(ctx)
		return nil, err
	}
	var db string
	var schema *string
	if err := conn.QueryRow(ctx, `SELECT current_database(), current_schema()`).Scan(&db, &schema); err != nil {
		return fail(fmt.Errorf("lock %s: %w", redactDSN(dsn), err))
	}
	if schema == nil {
		return fail(fmt.Errorf("lock %s: the search_path names no existing schema", redactDSN(dsn)))
	}
	key := pgLockKey(db, *schema, "scheduler")
	if wait {
		if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, key); err != nil {
			return fail(fmt.Errorf("lock %s: %w", redactDSN(dsn), err))
		}
	} else {
		var got bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&got); err != nil {
			return fail(fmt.Errorf("lock %s: %w", redactDSN(dsn), err))
		}
		if !got {
			return fail(fmt.Errorf("%s: %w", redactDSN(dsn), ErrLocked))
		}
	}
	var once sync.Once
	var mu sync.Mutex // a pgx connection serves one caller at a time
	stop, watched := make(chan struct{}), make(chan struct{})
	if lost != nil {
		// The lock lives as long as its connection: check it every
		// LockCheckInterval, and say so at once when it is gone.
		go func() {
			defer close(watched)
			t := time.NewTicker(LockCheckInterval)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
				}
				mu.Lock()
				pctx, cancel := context.WithTimeout(ctx, LockCheckInterval*5)
				err := conn.Ping(pctx)
				cancel()
				mu.Unlock()
				if err != nil {
					close(lost)
					return
				}
			}
		}()
	} else {
		close(watched)
	}
	return func() error {
		var err error
		once.Do(func() {
			close(stop)
			<-watched
			mu.Lock()
			defer mu.Unlock()
			_, uerr := conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, key)
			err = errors.Join(uerr, conn.Close(ctx))
		})
		return err
	}, nil
}

// pgQuote quotes a string literal.
func pgQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// redactDSN hides a DSN's password, for messages and Path.
func redactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "postgres://(unparsable DSN)"
	}
	return u.Redacted()
}
