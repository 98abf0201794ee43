package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver, for the tests' own connections
)

// The store's tests form one suite, run against every backend (river-style):
// SQLite always, PostgreSQL when $TRELLIS_TEST_POSTGRES holds a DSN (see
// hack/postgres.sh). Each test gets a database of its own: a file in a
// temporary directory, or a new schema of the PostgreSQL database, dropped when
// the test ends; tests run in parallel.

// backend opens fresh databases of one kind for the suite.
type backend struct {
	name string
	// newDB returns where a new, empty database is: a file that does not exist
	// yet, or the DSN of a new empty schema. It is removed when the test ends.
	newDB func(t testing.TB) string
	pg    bool
}

// suite is every test of the store, each run once per backend.
var suite = []struct {
	name string
	fn   func(*testing.T, backend)
}{
	{"CreateRun", testCreateRun},
	{"CreateRunDuplicate", testCreateRunDuplicate},
	{"RunsFilter", testRunsFilter},
	{"ApplyStaleChangeAppliesNothing", testApplyStaleChangeAppliesNothing},
	{"ApplyIllegalTransition", testApplyIllegalTransition},
	{"ApplyRunTimes", testApplyRunTimes},
	{"ApplyTries", testApplyTries},
	{"XCom", testXCom},
	{"Clear", testClear},
	{"CreateAssetRunOncePerEventSet", testCreateAssetRunOncePerEventSet},
	{"LogTail", testLogTail},
	{"TryLog", testTryLog},
	{"LogPageBefore", testLogPageBefore},
	{"LogCapKeepsHeadAndTail", testLogCapKeepsHeadAndTail},
	{"LogPages", testLogPages},
	{"DeleteRun", testDeleteRun},
	{"OpenMigrates", testOpenMigrates},
	{"SchemaTooNew", testSchemaTooNew},
	{"SchemaTooNewRollbackJournal", testSchemaTooNewRollbackJournal},
	{"ReadOnlyMissing", testReadOnlyMissing},
	{"ReadOnly", testReadOnly},
	{"DAGRecords", testDAGRecords},
	{"DataVersion", testDataVersion},
	{"DataVersionWithBusyReader", testDataVersionWithBusyReader},
	{"Lock", testLock},
	{"SurvivesReopen", testSurvivesReopen},
	{"RecentRuns", testRecentRuns},
	{"Outbox", testOutbox},
	{"PoolsAndVersions", testPoolsAndVersions},
	{"MappedInstances", testMappedInstances},
	{"MarkAndCount", testMarkAndCount},
	{"RunsByDate", testRunsByDate},
	{"AssetListings", testAssetListings},
	{"XComText", testXComText},
}

// TestStore runs the suite on every backend available.
func TestStore(t *testing.T) {
	if os.Getenv("TRELLIS_TEST_POSTGRES") == "" {
		t.Run("postgres", func(t *testing.T) {
			const how = "$TRELLIS_TEST_POSTGRES is empty (hack/postgres.sh up; eval $(hack/postgres.sh env))"
			if os.Getenv("CI") != "" && os.Getenv("TRELLIS_PG") != "0" {
				t.Fatal(how + "; under CI the suite must run on PostgreSQL too (make test starts it; TRELLIS_PG=0 skips it)")
			}
			t.Skip(how)
		})
	}
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			for _, tc := range suite {
				t.Run(tc.name, func(t *testing.T) { tc.fn(t, be) })
			}
		})
	}
}

// backends are SQLite, and PostgreSQL when $TRELLIS_TEST_POSTGRES holds a DSN.
func backends() []backend {
	bs := []backend{{name: "sqlite", newDB: func(t testing.TB) string { return filepath.Join(t.TempDir(), "trellis.db") }}}
	dsn := os.Getenv("TRELLIS_TEST_POSTGRES")
	if dsn == "" {
		return bs
	}
	return append(bs, backend{name: "postgres", pg: true, newDB: func(t testing.TB) string { return pgSchema(t, dsn) }})
}

var (
	pgAdminOnce sync.Once
	pgAdmin     *sql.DB
	pgAdminErr  error
)

// pgSchema creates an empty schema in the database of dsn and returns a DSN whose
// search_path is that schema; the schema is dropped when the test ends.
func pgSchema(t testing.TB, dsn string) string {
	t.Helper()
	pgAdminOnce.Do(func() {
		pgAdmin, pgAdminErr = sql.Open("pgx", dsn)
		if pgAdminErr == nil {
			pgAdminErr = pgAdmin.Ping()
		}
	})
	if pgAdminErr != nil {
		t.Fatalf("$TRELLIS_TEST_POSTGRES: %v", pgAdminErr)
	}
	b := make([]byte, 8)
	rand.Read(b)
	schema := "test_" + hex.EncodeToString(b)
	if _, err := pgAdmin.Exec(`CREATE SCHEMA ` + schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		if _, err := pgAdmin.Exec(`DROP SCHEMA ` + schema + ` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// pgConnect opens a connection of the test's own to a PostgreSQL store's schema.
func pgConnect(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// setup opens a store on a new database; it is closed when the test ends. It
// returns the store and its path (or DSN).
func setup(t *testing.T, be backend) (*Store, string) {
	t.Helper()
	path := be.newDB(t)
	s, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, path
}

// open opens another Store on an existing database, closed when the test ends.
func open(t *testing.T, path string, o Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), path, o)
	if err != nil {
		t.Fatalf("Open(%s, %+v): %v", path, o, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestMigrationsMatch: PostgreSQL's migrations have SQLite's numbering and names.
func TestMigrationsMatch(t *testing.T) {
	lite, err := migrations("migrations")
	if err != nil {
		t.Fatal(err)
	}
	pg, err := migrations("migrations_postgres")
	if err != nil {
		t.Fatal(err)
	}
	name := func(m migration) string { return m.name }
	if a, b := mapSlice(lite, name), mapSlice(pg, name); !slices.Equal(a, b) || len(a) == 0 {
		t.Errorf("migrations %v, migrations_postgres %v: want the same files", a, b)
	}
}

func mapSlice[T, U any](s []T, f func(T) U) []U {
	out := make([]U, len(s))
	for i, v := range s {
		out[i] = f(v)
	}
	return out
}

// TestRebind: ? becomes $n outside literals, quoted identifiers and comments.
func TestRebind(t *testing.T) {
	for in, want := range map[string]string{
		`SELECT ?`:                            `SELECT $1`,
		`a = ? AND b IN (?, ?)`:               `a = $1 AND b IN ($2, $3)`,
		`x = '?' AND y = ?`:                   `x = '?' AND y = $1`,
		`"a?" = ? -- why?` + "\n" + `AND z=?`: `"a?" = $1 -- why?` + "\n" + `AND z=$2`,
		`no placeholders`:                     `no placeholders`,
		`'it''s' = ?`:                         `'it''s' = $1`,
	} {
		if got := rebind(in); got != want {
			t.Errorf("rebind(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestRewritesUsed: every PostgreSQL rewrite matches a statement of the package
// (a statement changed without its rewrite would reach PostgreSQL in SQLite's
// dialect, and fail there).
func TestRewritesUsed(t *testing.T) {
	var all string
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if f == "postgres.go" || strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all += string(b)
	}
	for _, r := range pgRewrites {
		if !strings.Contains(all, r.sqlite) {
			t.Errorf("rewrite of %q: no statement has it", r.sqlite)
		}
	}
}
