package store

import (
	"net/url"

	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trellisdag/trellis/task"
)

// raw opens the database with the driver directly, outside the Store.
func raw(t *testing.T, be backend, path string) *sql.DB {
	t.Helper()
	driver, dsn := "sqlite", "file:"+path
	if be.pg {
		driver, dsn = "pgx", path
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// userVersion is the schema version the database records.
func userVersion(t *testing.T, s *Store) int {
	t.Helper()
	v, _, err := s.eng.schemaVersion(context.Background(), s.r)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// tables lists the tables of the store's database (of its schema on PostgreSQL,
// less the one holding the schema version).
func tables(t *testing.T, db *sql.DB, pg bool) []string {
	t.Helper()
	q := `SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`
	if pg {
		q = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()
			AND table_name <> 'trellis_schema_version' ORDER BY table_name`
	}
	rows, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

func testOpenMigrates(t *testing.T, be backend) {
	t.Parallel()
	s, path := setup(t, be)
	if SchemaVersion() < 1 {
		t.Fatalf("SchemaVersion() = %d, want at least 1", SchemaVersion())
	}
	if v := userVersion(t, s); v != SchemaVersion() {
		t.Errorf("schema version = %d, want SchemaVersion() = %d", v, SchemaVersion())
	}
	want := []string{"asset_consumers", "asset_events", "assets", "audit_log", "dag_runs", "dag_versions", "dags", "outbox", "pools", "run_asset_events", "task_instances", "task_logs", "task_tries", "xcom"}
	if got := tables(t, s.r, be.pg); !slices.Equal(got, want) {
		t.Errorf("tables = %v, want %v (every migration's tables)", got, want)
	}
	if !be.pg {
		var mode string
		if err := s.r.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
			t.Errorf("journal_mode = %q, %v; want wal", mode, err)
		}
	}
	if s.Path() != path {
		t.Errorf("Path() = %q, want %q", s.Path(), path)
	}
	// Opening again migrates nothing and fails nothing.
	again := open(t, path, Options{Sync: SyncNormal, BusyTimeout: time.Second})
	if v := userVersion(t, again); v != SchemaVersion() {
		t.Errorf("user_version after a second open = %d", v)
	}
}

// newerDB writes a database as a newer trellis would: a schema this binary does
// not know and a higher schema version.
func newerDB(t *testing.T, be backend, wal bool) string {
	t.Helper()
	path := be.newDB(t)
	db := raw(t, be, path)
	if wal {
		if _, err := db.Exec("PRAGMA journal_mode = wal"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`CREATE TABLE future (x INTEGER); INSERT INTO future VALUES (1);`); err != nil {
		t.Fatal(err)
	}
	q := `PRAGMA user_version = ` + strconv.Itoa(SchemaVersion()+1)
	if be.pg {
		q = `CREATE TABLE trellis_schema_version (version BIGINT NOT NULL); INSERT INTO trellis_schema_version VALUES (` +
			strconv.Itoa(SchemaVersion()+1) + `)`
	}
	if _, err := db.Exec(q); err != nil {
		t.Fatal(err)
	}
	db.Close()
	return path
}

// rawVersion reads the schema version as a newer trellis wrote it.
func rawVersion(t *testing.T, be backend, db *sql.DB) int {
	t.Helper()
	q := "PRAGMA user_version"
	if be.pg {
		q = "SELECT version FROM trellis_schema_version"
	}
	var v int
	if err := db.QueryRow(q).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func checkNewerRefused(t *testing.T, be backend, wal bool) {
	path := newerDB(t, be, wal)
	var before []byte
	if !be.pg {
		var err error
		if before, err = os.ReadFile(path); err != nil {
			t.Fatal(err)
		}
	}
	for _, o := range []Options{{}, {ReadOnly: true}} {
		s, err := Open(context.Background(), path, o)
		if !errors.Is(err, ErrSchemaTooNew) {
			if s != nil {
				s.Close()
			}
			t.Fatalf("Open(%+v) of a newer database = %v, want ErrSchemaTooNew", o, err)
		}
	}
	db := raw(t, be, path)
	if v := rawVersion(t, be, db); v != SchemaVersion()+1 {
		t.Errorf("schema version = %d after the refused open, want %d", v, SchemaVersion()+1)
	}
	if got := tables(t, db, be.pg); !slices.Equal(got, []string{"future"}) {
		t.Errorf("tables after the refused open = %v, want only [future]", got)
	}
	if be.pg {
		return
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Errorf("the database file changed although it was refused (%d bytes differ)", diffBytes(before, after))
	}
}

func diffBytes(a, b []byte) int {
	n := max(len(a), len(b)) - min(len(a), len(b))
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			n++
		}
	}
	return n
}

func testSchemaTooNew(t *testing.T, be backend) {
	t.Parallel()
	checkNewerRefused(t, be, !be.pg)
}

func testSchemaTooNewRollbackJournal(t *testing.T, be backend) {
	if be.pg {
		t.Skip("a SQLite journal mode")
	}
	t.Parallel()
	checkNewerRefused(t, be, false)
}

func testReadOnlyMissing(t *testing.T, be backend) {
	t.Parallel()
	if be.pg {
		// An empty schema, and a schema that does not exist.
		path := be.newDB(t)
		u, err := url.Parse(path)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		q.Set("search_path", "no_such_schema")
		u.RawQuery = q.Encode()
		for _, p := range []string{path, u.String()} {
			s, err := Open(context.Background(), p, Options{ReadOnly: true})
			if !errors.Is(err, ErrNoDatabase) {
				if s != nil {
					s.Close()
				}
				t.Fatalf("Open(ReadOnly) of %s = %v, want ErrNoDatabase", p, err)
			}
		}
		if got := tables(t, raw(t, be, path), true); len(got) != 0 {
			t.Errorf("a read-only open created tables: %v", got)
		}
		return
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "missing.db")
	s, err := Open(context.Background(), path, Options{ReadOnly: true})
	if !errors.Is(err, ErrNoDatabase) {
		if s != nil {
			s.Close()
		}
		t.Fatalf("Open(ReadOnly) of a missing file = %v, want ErrNoDatabase", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("a read-only open created files: %v", entries)
	}
}

func testReadOnly(t *testing.T, be backend) {
	t.Parallel()
	s, path := setup(t, be)
	ctx := context.Background()
	r := mkRun(t, s, "r1", "a")
	ro := open(t, path, Options{ReadOnly: true})
	got, err := ro.Run(ctx, "d", "r1")
	if err != nil || got.ID != r.ID {
		t.Fatalf("read-only Run = %+v, %v", got, err)
	}
	if _, err := ro.CreateRun(ctx, Run{DAGID: "d", RunID: "r2", Type: task.RunManual, State: task.RunQueued}, nil); err == nil {
		t.Error("CreateRun on a read-only store succeeded")
	}
	var b Batch
	b.SetTI(TIChange{From: task.StateNone, TI: TaskInstance{Run: r.ID, TaskID: "a", State: task.StateScheduled, MaxTries: 1}})
	if err := ro.Apply(ctx, &b); err == nil {
		t.Error("Apply on a read-only store succeeded")
	}
	if err := ro.SetPaused(ctx, "d", true); err == nil {
		t.Error("SetPaused on a read-only store succeeded")
	}
	if ti := getTI(t, s, r.ID, "a"); ti.State != task.StateNone {
		t.Errorf("state after refused writes = %s", ti.State)
	}
}

func testDAGRecords(t *testing.T, be backend) {
	t.Parallel()
	s, _ := setup(t, be)
	ctx := context.Background()
	if _, err := s.DAG(ctx, "etl"); !errors.Is(err, ErrNotFound) {
		t.Errorf("DAG of an unknown id = %v, want ErrNotFound", err)
	}
	if err := s.PutDAG(ctx, "etl", []byte(`{"id":"etl"}`), true); err != nil {
		t.Fatal(err)
	}
	start, end := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)
	if err := s.SetLastInterval(ctx, "etl", start, end); err != nil {
		t.Fatal(err)
	}
	// A new definition keeps the paused flag and the last interval.
	if err := s.PutDAG(ctx, "etl", []byte(`{"id":"etl","v":2}`), false); err != nil {
		t.Fatal(err)
	}
	d, err := s.DAG(ctx, "etl")
	if err != nil {
		t.Fatal(err)
	}
	if !d.Paused || string(d.Definition) != `{"id":"etl","v":2}` || !d.LastIntervalStart.Equal(start) || !d.LastIntervalEnd.Equal(end) || d.Updated.IsZero() {
		t.Errorf("DAG = %+v", d)
	}
	if err := s.SetPaused(ctx, "etl", false); err != nil {
		t.Fatal(err)
	}
	if err := s.SetPaused(ctx, "new", true); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.DAG(ctx, "etl"); d.Paused {
		t.Error("SetPaused(false) did not unpause")
	}
	if d, err := s.DAG(ctx, "new"); err != nil || !d.Paused || string(d.Definition) != "{}" {
		t.Errorf("DAG created by SetPaused = %+v, %v", d, err)
	}
}

func testDataVersion(t *testing.T, be backend) {
	t.Parallel()
	a, path := setup(t, be)
	b := open(t, path, Options{})
	ctx := context.Background()
	dv := func(s *Store) int64 {
		t.Helper()
		v, err := s.DataVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	v0 := dv(a)
	if v := dv(a); v != v0 {
		t.Fatalf("DataVersion changed from %d to %d with no commit", v0, v)
	}
	if err := b.SetPaused(ctx, "d", true); err != nil {
		t.Fatal(err)
	}
	v1 := dv(a)
	if v1 == v0 {
		t.Fatalf("DataVersion stayed %d after another Store committed", v0)
	}
	if v := dv(a); v != v1 {
		t.Fatalf("DataVersion changed from %d to %d with no commit", v1, v)
	}
	// The store's own writer is another connection too.
	if err := a.SetPaused(ctx, "d", false); err != nil {
		t.Fatal(err)
	}
	v2 := dv(a)
	if v2 == v1 {
		t.Fatalf("DataVersion stayed %d after this store's writer committed", v1)
	}
	// A batch (pipelined on PostgreSQL) is a commit too; a refused one is not.
	r := mkRun(t, b, "r1", "a")
	v3 := dv(a)
	if v3 == v2 {
		t.Fatalf("DataVersion stayed %d after another Store created a run", v2)
	}
	apply(t, b, ch(task.StateNone, TaskInstance{Run: r.ID, TaskID: "a", State: task.StateScheduled, MaxTries: 1}))
	v4 := dv(a)
	if v4 == v3 {
		t.Fatalf("DataVersion stayed %d after another Store applied a batch", v3)
	}
	if err := b.Apply(ctx, batch(ch(task.StateNone, TaskInstance{Run: r.ID, TaskID: "a", State: task.StateScheduled, MaxTries: 1}))); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale batch = %v, want ErrConflict", err)
	}
	if v := dv(a); v != v4 {
		t.Errorf("DataVersion changed from %d to %d after a batch that was refused", v4, v)
	}
}

// TestDataVersionWithBusyReader polls DataVersion while another query of the same
// store holds a reader connection, as happens when the scheduler polls while an
// executor reads results.
func testDataVersionWithBusyReader(t *testing.T, be backend) {
	t.Parallel()
	a, path := setup(t, be)
	b := open(t, path, Options{})
	ctx := context.Background()
	dv := func() int64 {
		t.Helper()
		v, err := a.DataVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	hold := func() *sql.Conn { // a concurrent reader in the middle of a query
		t.Helper()
		c, err := a.r.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	dv()
	busy := hold()
	dv() // a second reader connection now exists
	busy.Close()
	if err := b.SetPaused(ctx, "d", true); err != nil {
		t.Fatal(err)
	}
	seen := dv()
	if err := b.SetPaused(ctx, "d", false); err != nil {
		t.Fatal(err)
	}
	busy = hold()
	defer busy.Close()
	if v := dv(); v == seen {
		t.Fatalf("DataVersion = %d after another process committed, the same value as before the commit", v)
	}
}

func testLock(t *testing.T, be backend) {
	t.Parallel()
	_, path := setup(t, be)
	unlock, err := Lock(path)
	if err != nil {
		t.Fatal(err)
	}
	if u, err := Lock(path); !errors.Is(err, ErrLocked) {
		if u != nil {
			u()
		}
		t.Fatalf("second Lock while held = %v, want ErrLocked", err)
	}
	// Another process sees the lock too.
	if !lockedElsewhere(t, be, path) {
		t.Error("another process took the lock while it was held")
	}
	// A waiter gets the lock once it is released.
	got := make(chan func() error, 1)
	go func() {
		u, err := WaitLock(path)
		if err != nil {
			t.Error(err)
			got <- nil
			return
		}
		got <- u
	}()
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	var waiter func() error
	select {
	case waiter = <-got:
		if waiter == nil {
			t.FailNow()
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WaitLock did not return within 10s of the unlock")
	}
	if _, err := Lock(path); !errors.Is(err, ErrLocked) {
		t.Fatalf("Lock while WaitLock's holder has it = %v, want ErrLocked", err)
	}
	if err := waiter(); err != nil {
		t.Fatal(err)
	}
	again, err := Lock(path)
	if err != nil {
		t.Fatalf("Lock after unlock: %v", err)
	}
	if !lockedElsewhere(t, be, path) {
		t.Error("another process took the lock while it was held")
	}
	if err := again(); err != nil {
		t.Fatal(err)
	}
	if lockedElsewhere(t, be, path) {
		t.Error("another process could not take the lock after unlock")
	}
	// The store still works while the lock is held: flock does not disturb SQLite,
	// nor the scheduler's advisory lock the writer's.
	s := open(t, path, Options{})
	h, err := Hold(path)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Unlock()
	if err := s.SetPaused(context.Background(), "d", true); err != nil {
		t.Errorf("write while the scheduler lock is held: %v", err)
	}
	select {
	case <-h.Lost():
		t.Fatal("a lock in good health says it is lost")
	default:
	}
	if be.pg {
		// The lock dies with its holder's connection, as a flock with its process.
		c := pgConnect(t, path)
		if _, err := c.Exec(context.Background(), `SELECT pg_terminate_backend(pid) FROM pg_locks
			WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
			AND ((classid::bigint << 32) | objid::bigint) = $1`, schedulerKey(t, c)); err != nil {
			t.Fatal(err)
		}
		// Its holder is told, so that it stops scheduling.
		select {
		case <-h.Lost():
		case <-time.After(10 * LockCheckInterval):
			t.Fatalf("Hold's Lost did not say within %s that the lock's connection died", 10*LockCheckInterval)
		}
		got := make(chan error, 1)
		go func() {
			u, err := WaitLock(path)
			if err == nil {
				err = u()
			}
			got <- err
		}()
		select {
		case err := <-got:
			if err != nil {
				t.Fatalf("WaitLock after the holder's connection died: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the lock outlived its holder's connection by 10s")
		}
	}
}

// schedulerKey is the scheduler lock's advisory key of c's schema.
func schedulerKey(t *testing.T, c *pgx.Conn) int64 {
	t.Helper()
	var db, schema string
	if err := c.QueryRow(context.Background(), `SELECT current_database(), current_schema()`).Scan(&db, &schema); err != nil {
		t.Fatal(err)
	}
	return pgLockKey(db, schema, "scheduler")
}

// lockedElsewhere reports whether another process (a flock child; a connection of
// the test's own) finds the scheduler lock held.
func lockedElsewhere(t *testing.T, be backend, path string) bool {
	t.Helper()
	if !be.pg {
		return exec.Command("flock", "--nonblock", path, "true").Run() != nil
	}
	c := pgConnect(t, path)
	ctx := context.Background()
	key := schedulerKey(t, c)
	var got bool
	if err := c.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got {
		if _, err := c.Exec(ctx, `SELECT pg_advisory_unlock($1)`, key); err != nil {
			t.Fatal(err)
		}
	}
	return !got
}

func testSurvivesReopen(t *testing.T, be backend) {
	t.Parallel()
	ctx := context.Background()
	path := be.newDB(t)
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := mkRun(t, s, "r1", "a", "b")
	at := time.Date(2024, 3, 4, 5, 6, 7, 8000, time.UTC)
	apply(t, s,
		ch(task.StateNone, TaskInstance{Run: r.ID, TaskID: "a", State: task.StateSuccess, MaxTries: 1, Ended: at}),
		xc(r.ID, "a", `"done"`))
	appendChunk(t, s, r.ID, "a", 1, "hello\n")
	if err := s.PutDAG(ctx, "d", []byte(`{"id":"d"}`), true); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, path, Options{})
	if got, err := s.Run(ctx, "d", "r1"); err != nil || got.ID != r.ID {
		t.Fatalf("Run after reopen = %+v, %v", got, err)
	}
	if ti := getTI(t, s, r.ID, "a"); ti.State != task.StateSuccess || !ti.Ended.Equal(at) {
		t.Errorf("task a after reopen = %+v", ti)
	}
	if v, ok, err := s.XCom(ctx, r.ID, "a"); err != nil || !ok || string(v) != `"done"` {
		t.Errorf("XCom after reopen = %s, %v, %v", v, ok, err)
	}
	if data, _, err := s.Log(ctx, r.ID, "a", 1, 0); err != nil || string(data) != "hello\n" {
		t.Errorf("Log after reopen = %q, %v", data, err)
	}
	if d, err := s.DAG(ctx, "d"); err != nil || !d.Paused {
		t.Errorf("DAG after reopen = %+v, %v", d, err)
	}
}

// TestRecentRuns: one query returns each DAG's latest runs, newest first, n
// at most, the same as a Runs call per DAG.
func testRecentRuns(t *testing.T, be backend) {
	t.Parallel()
	s, _ := setup(t, be)
	ctx := context.Background()
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, d := range []string{"a", "b", "c"} {
		for i := range 7 {
			ld := base.Add(time.Duration(i) * time.Hour)
			if _, err := s.CreateRun(ctx, Run{DAGID: d, RunID: fmt.Sprintf("%s-%d", d, i), Type: task.RunManual, State: task.RunQueued,
				LogicalDate: ld, IntervalStart: ld, IntervalEnd: ld}, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	got, err := s.RecentRuns(ctx, []string{"a", "c", "none"}, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"a", "c"} {
		want, err := s.Runs(ctx, RunFilter{DAGID: d, Limit: 3})
		if err != nil {
			t.Fatal(err)
		}
		if len(got[d]) != 3 || got[d][0].RunID != d+"-6" || got[d][2].RunID != d+"-4" {
			t.Errorf("%s: %+v", d, got[d])
		}
		for i := range want {
			if got[d][i].RunID != want[i].RunID {
				t.Errorf("%s[%d] = %s, Runs says %s", d, i, got[d][i].RunID, want[i].RunID)
			}
		}
	}
	if len(got["b"]) != 0 || len(got["none"]) != 0 {
		t.Errorf("DAGs not asked for, or without runs: %+v", got)
	}
}
