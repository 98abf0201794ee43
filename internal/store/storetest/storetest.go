// Package storetest gives tests outside internal/store fresh databases on
// every backend the store supports: a SQLite file always, and a new schema of
// the PostgreSQL database named by $TRELLIS_TEST_POSTGRES when it is set
// (hack/postgres.sh up; eval $(hack/postgres.sh env)). Each database is
// removed when its test ends, so tests on either backend may run in parallel.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Env is the variable that holds the DSN of the PostgreSQL database the tests
// may create schemas in.
const Env = "TRELLIS_TEST_POSTGRES"

// Backend is one kind of database tests run on.
type Backend struct {
	// Name is "sqlite" or "postgres", the name of the backend's subtest.
	Name string
	// Postgres is set for PostgreSQL.
	Postgres bool
	dsn      string // $TRELLIS_TEST_POSTGRES, for PostgreSQL
}

// Backends returns SQLite, and PostgreSQL when $TRELLIS_TEST_POSTGRES is set.
func Backends() []Backend {
	bs := []Backend{{Name: "sqlite"}}
	if dsn := os.Getenv(Env); dsn != "" {
		bs = append(bs, Backend{Name: "postgres", Postgres: true, dsn: dsn})
	}
	return bs
}

// Postgres returns the PostgreSQL backend, or skips the test (saying how to
// run it) when $TRELLIS_TEST_POSTGRES is empty.
func Postgres(t testing.TB) Backend {
	t.Helper()
	dsn := os.Getenv(Env)
	if dsn == "" {
		t.Skip("$" + Env + " is empty (hack/postgres.sh up; eval $(hack/postgres.sh env))")
	}
	return Backend{Name: "postgres", Postgres: true, dsn: dsn}
}

// Run runs f as a parallel subtest per backend, named by the backend. Without
// $TRELLIS_TEST_POSTGRES the postgres subtest is reported as skipped, with how
// to run it.
func Run(t *testing.T, f func(t *testing.T, be Backend)) {
	t.Helper()
	if os.Getenv(Env) == "" {
		t.Run("postgres", func(t *testing.T) { Postgres(t) })
	}
	for _, be := range Backends() {
		t.Run(be.Name, func(t *testing.T) {
			t.Parallel()
			f(t, be)
		})
	}
}

// NewDB returns where a new, empty database is: a file in a temporary
// directory that does not exist yet, or the DSN of a new empty schema (the
// DSN's search_path names it). The database is removed when the test ends.
func (be Backend) NewDB(t testing.TB) string {
	t.Helper()
	if !be.Postgres {
		return filepath.Join(t.TempDir(), "trellis.db")
	}
	dsn, err := newSchema(be.dsn)
	if err != nil {
		t.Fatalf("$%s: %v", Env, err)
	}
	t.Cleanup(func() {
		if err := dropSchema(be.dsn, dsn); err != nil {
			t.Errorf("$%s: %v", Env, err)
		}
	})
	return dsn
}

// newSchema creates a schema with a random name in the database of dsn and
// returns a DSN whose search_path is that schema.
func newSchema(dsn string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "", fmt.Errorf("parse the DSN: %w", err)
	}
	b := make([]byte, 8)
	rand.Read(b)
	schema := "test_" + hex.EncodeToString(b)
	if err := exec(dsn, `CREATE SCHEMA `+schema); err != nil {
		return "", fmt.Errorf("create schema %s: %w", schema, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// dropSchema drops the schema of a DSN newSchema returned, with all it holds.
func dropSchema(dsn, schemaDSN string) error {
	u, err := url.Parse(schemaDSN)
	if err != nil {
		return fmt.Errorf("parse the DSN: %w", err)
	}
	schema := u.Query().Get("search_path")
	if err := exec(dsn, `DROP SCHEMA `+pgx.Identifier{schema}.Sanitize()+` CASCADE`); err != nil {
		return fmt.Errorf("drop schema %s: %w", schema, err)
	}
	return nil
}

// exec runs one statement on a connection of its own.
func exec(dsn, stmt string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer c.Close(ctx)
	_, err = c.Exec(ctx, stmt)
	return err
}
