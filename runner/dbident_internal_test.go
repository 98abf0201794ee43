package runner

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDBIdentity: every runner on one PostgreSQL database and schema gets the
// same identity, whatever its user, password, options or working directory;
// another schema, database or server is another identity; no identity holds
// a password; a SQLite file's is its absolute path.
func TestDBIdentity(t *testing.T) {
	same := []string{
		"postgres://trellis:secret@db.example.com:5432/team?search_path=etl&sslmode=require",
		"postgresql://other:changed@DB.example.com:5432/team?sslmode=disable&search_path=etl&application_name=x",
		"postgres://trellis:xxxxx@db.example.com:5432/team?search_path=etl", // the store's redacted Path
	}
	id := dbIdentity(same[0])
	for _, dsn := range same[1:] {
		if got := dbIdentity(dsn); got != id {
			t.Errorf("dbIdentity(%q) = %q, want %q", dsn, got, id)
		}
	}
	for _, dsn := range []string{
		"postgres://trellis@db.example.com:5432/team?search_path=other",
		"postgres://trellis@db.example.com:5432/team2?search_path=etl",
		"postgres://trellis@db2.example.com:5432/team?search_path=etl",
	} {
		if got := dbIdentity(dsn); got == id {
			t.Errorf("dbIdentity(%q) = %q, the identity of another database", dsn, got)
		}
	}
	for _, dsn := range same {
		if id := dbIdentity(dsn); strings.Contains(id, "secret") || strings.Contains(id, "changed") {
			t.Errorf("dbIdentity(%q) = %q holds the password", dsn, id)
		}
	}
	abs, err := filepath.Abs("trellis.db")
	if err != nil {
		t.Fatal(err)
	}
	if got := dbIdentity("trellis.db"); got != abs {
		t.Errorf("dbIdentity(trellis.db) = %q, want %q", got, abs)
	}
}

// TestCrashFile: a SQLite database's crash report is next to it; a
// PostgreSQL database's in the temporary directory, the same file for every
// runner of the database, without the password in its name.
func TestCrashFile(t *testing.T) {
	if got := crashFile("/data/trellis.db"); got != "/data/trellis.db.crash" {
		t.Errorf("crashFile(file) = %q", got)
	}
	a := crashFile("postgres://u:secret@h:5432/db?search_path=s")
	b := crashFile("postgres://u:xxxxx@h:5432/db?search_path=s&sslmode=disable")
	if a != b || filepath.Dir(a) != filepath.Clean(os.TempDir()) || strings.Contains(a, "secret") || !strings.HasSuffix(a, ".crash") {
		t.Errorf("crashFile(DSN) = %q and %q: want one file in %s", a, b, os.TempDir())
	}
	if c := crashFile("postgres://u@h:5432/db?search_path=t"); c == a {
		t.Errorf("two schemas share the crash file %s", c)
	}
}
