package runner

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

	"github.com/trellisdag/trellis/internal/store"
)

// maxCrashReport bounds the part of a crash report attached to each try that
// was in flight (its end, where the panic's goroutine is usually printed last).
const maxCrashReport = 64 << 10

// crashReport sets up the crash report of this process (crashFile: a fatal
// error or an unrecovered panic in any goroutine is written there by the Go
// runtime) and returns the previous process's report, if it crashed, for the
// tries that were in flight then. The previous report is kept with the suffix
// .prev.
func crashReport(db string, stderr io.Writer) []byte {
	path := crashFile(db)
	prev, err := os.ReadFile(path)
	if err == nil && len(prev) > 0 {
		if err := os.Rename(path, path+".prev"); err != nil {
			fmt.Fprintf(stderr, "warning: keep the previous crash report: %v\n", err)
		}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		fmt.Fprintf(stderr, "warning: no crash report will be kept: %v\n", err)
		return prev
	}
	defer f.Close() // SetCrashOutput keeps its own descriptor
	if err := debug.SetCrashOutput(f, debug.CrashOptions{}); err != nil {
		fmt.Fprintf(stderr, "warning: no crash report will be kept: %v\n", err)
	}
	if len(prev) > maxCrashReport {
		prev = append([]byte("…\n"), prev[len(prev)-maxCrashReport:]...)
	}
	return prev
}

// crashFile is where the crash report of a runner on the database db goes:
// next to a SQLite file (<db>.crash); for a PostgreSQL database, which has no
// file, in the OS temporary directory ($TMPDIR, else /tmp), named by a hash of
// the database's identity (trellis-<hash>.crash), so that the next runner on
// the same machine and database finds it. A standby on another machine does
// not: the tries it recovers carry no crash report.
func crashFile(db string) string {
	if !store.IsPostgres(db) {
		return db + ".crash"
	}
	sum := sha256.Sum256([]byte(dbIdentity(db)))
	return filepath.Join(os.TempDir(), "trellis-"+hex.EncodeToString(sum[:5])+".crash")
}

// dbIdentity names the database that db locates, the same for every runner
// that uses it: a SQLite file's absolute path, or for a PostgreSQL DSN its
// hosts, database and search_path, without the user, the password or the
// connection options (which may differ between replicas and over time, and
// must not leak into names). A DSN that does not parse is its own identity.
// dbHash (the runner instance of pods and process markers) hashes it, so
// that replicas on one database agree whatever their working directory.
func dbIdentity(db string) string {
	if !store.IsPostgres(db) {
		if abs, err := filepath.Abs(db); err == nil {
			return abs
		}
		return db
	}
	u, err := url.Parse(db)
	if err != nil {
		return db
	}
	name := strings.TrimPrefix(u.Path, "/")
	if name == "" && u.User != nil {
		name = u.User.Username() // libpq's default database is the user's name
	}
	id := "postgres://" + strings.ToLower(u.Host) + "/" + name
	if sp := u.Query().Get("search_path"); sp != "" {
		id += "?search_path=" + url.QueryEscape(sp)
	}
	return id
}
