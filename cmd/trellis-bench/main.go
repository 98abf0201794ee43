package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"github.com/trellisdag/trellis/internal/bench"
	"github.com/trellisdag/trellis/internal/store"
	_ "modernc.org/sqlite"
)

type measurement struct {
	Result   bench.Result
	Ceiling  string
	PeakRSS  int64 // KiB
	Scenario string
}

func main() {
	only := flag.String("only", "", "run one scenario: chain, fanout, mapped, bash, sqlite, spawn")
	child := flag.String("child", "", "internal: run one scenario in this process and print JSON")
	syncFlag := flag.String("sync", "normal", "store durability for the trellis scenarios: normal or full")
	dbFlag := flag.String("db", os.Getenv("TRELLIS_BENCH_DB"), "PostgreSQL DSN to run the trellis scenarios on, each in a new schema (default $TRELLIS_BENCH_DB; empty: a SQLite file)")
	flag.Parse()
	if *dbFlag != "" && !store.IsPostgres(*dbFlag) {
		fmt.Fprintf(os.Stderr, "error: -db %q: want a postgres:// DSN\n", *dbFlag)
		os.Exit(2)
	}
	durability := store.SyncNormal
	switch *syncFlag {
	case "normal":
	case "full":
		durability = store.SyncFull
	default:
		fmt.Fprintf(os.Stderr, "error: -sync %q: want normal or full\n", *syncFlag)
		os.Exit(2)
	}
	if *child != "" {
		if err := runChild(*child, durability, *dbFlag); err != nil {
			fmt.Fprintln(os.Stderr, "error:", err)
			os.Exit(1)
		}
		return
	}
	names := []string{"sqlite", "spawn", "chain", "fanout", "mapped", "bash"}
	backend := "SQLite"
	if *dbFlag != "" {
		names = []string{"postgres", "spawn", "chain", "fanout", "mapped", "bash"}
		backend = "PostgreSQL"
	}
	if *only != "" {
		names = []string{*only}
	}
	fmt.Printf("Measured %s on %s (%d CPUs), `go run ./cmd/trellis-bench -sync %s`, store on %s.\n\n", time.Now().UTC().Format("2006-01-02"),
		host(), numCPU(), *syncFlag, backend)
	for _, n := range names {
		m, err := runIsolated(n, *syncFlag, *dbFlag)
		if err != nil {
			fmt.Fprintf(os.Stderr, "error: %s: %v\n", n, err)
			os.Exit(1)
		}
		fmt.Printf("- **%s**: %s; peak RSS %d MiB\n", n, m.Ceiling, m.PeakRSS/1024)
	}
}

func host() string { h, _ := os.Hostname(); return h }

func numCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "processor\t:")
}

// runIsolated runs a scenario in a child process and reads its peak RSS.
func runIsolated(name, syncFlag, db string) (measurement, error) {
	self, err := os.Executable()
	if err != nil {
		return measurement{}, err
	}
	cmd := exec.Command(self, "-child", name, "-sync", syncFlag, "-db", db)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return measurement{}, err
	}
	var m measurement
	if err := json.Unmarshal(out, &m); err != nil {
		return measurement{}, fmt.Errorf("child output %q: %w", out, err)
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		m.PeakRSS = ru.Maxrss
	}
	return m, nil
}

// runChild runs one scenario on a new database: a SQLite file in a temporary
// directory, or a new schema of the PostgreSQL database dsn, dropped after.
func runChild(name string, durability store.Sync, dsn string) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "trellis-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	db := bench.DB{Sync: durability}
	if dsn != "" {
		path, drop, err := newSchema(ctx, dsn)
		if err != nil {
			return err
		}
		defer drop()
		db.Path = path
	}
	var m measurement
	m.Scenario = name
	switch name {
	case "chain":
		r, err := bench.Chain(ctx, dir, db, 1000)
		if err != nil {
			return err
		}
		m.Result, m.Ceiling = r, r.String()
	case "fanout":
		r, err := bench.FanOut(ctx, dir, db, 10000, 64)
		if err != nil {
			return err
		}
		m.Result, m.Ceiling = r, r.String()
	case "mapped":
		r, err := bench.Mapped(ctx, dir, db, 10000, 64)
		if err != nil {
			return err
		}
		m.Result, m.Ceiling = r, r.String()
	case "bash":
		r, err := bench.Bash(ctx, dir, db, 1000, 8)
		if err != nil {
			return err
		}
		m.Result, m.Ceiling = r, r.String()
	case "sqlite":
		s, err := rawSQLite(dir)
		if err != nil {
			return err
		}
		m.Ceiling = s
	case "postgres":
		if db.Path == "" {
			return fmt.Errorf("scenario postgres needs -db")
		}
		s, err := rawPostgres(ctx, db.Path)
		if err != nil {
			return err
		}
		m.Ceiling = s
	case "spawn":
		m.Ceiling = spawn()
	default:
		return fmt.Errorf("unknown scenario %q", name)
	}
	return json.NewEncoder(os.Stdout).Encode(m)
}

// rawSQLite measures the commit ceiling: single-row transactions with
// synchronous=FULL and NORMAL in WAL mode, one connection, as the store uses.
func rawSQLite(dir string) (string, error) {
	var parts []string
	for _, sync := range []string{"full", "normal"} {
		db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, sync+".db")+"?_pragma=journal_mode(wal)&_pragma=synchronous("+sync+")")
		if err != nil {
			return "", err
		}
		db.SetMaxOpenConns(1)
		if _, err := db.Exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)`); err != nil {
			return "", err
		}
		const n = 2000
		began := time.Now()
		for i := 0; i < n; i++ {
			if _, err := db.Exec(`INSERT INTO t (v) VALUES ('x')`); err != nil {
				return "", err
			}
		}
		el := time.Since(began)
		db.Close()
		parts = append(parts, fmt.Sprintf("synchronous=%s %.0f single-row commits/s (%s per commit)", strings.ToUpper(sync),
			n/el.Seconds(), (el/n).Round(time.Microsecond)))
	}
	return "raw SQLite ceiling: " + strings.Join(parts, "; "), nil
}

// newSchema creates an empty schema in the PostgreSQL database dsn and returns
// a DSN whose search_path is that schema, and a function that drops it.
func newSchema(ctx context.Context, dsn string) (string, func(), error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return "", nil, err
	}
	schema := fmt.Sprintf("bench_%d_%d", os.Getpid(), time.Now().UnixNano())
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		db.Close()
		return "", nil, fmt.Errorf("create schema: %w", err)
	}
	drop := func() {
		if _, err := db.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			fmt.Fprintf(os.Stderr, "warning: drop schema %s: %v\n", schema, err)
		}
		db.Close()
	}
	u, err := url.Parse(dsn)
	if err != nil {
		drop()
		return "", nil, err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), drop, nil
}

// rawPostgres measures the commit ceiling of the PostgreSQL server: single-row
// transactions over one connection, with synchronous_commit on and off.
func rawPostgres(ctx context.Context, dsn string) (string, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return "", err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, `CREATE TABLE t (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, v TEXT)`); err != nil {
		return "", err
	}
	var parts []string
	for _, sync := range []string{"on", "off"} {
		if _, err := db.ExecContext(ctx, "SET synchronous_commit = "+sync); err != nil {
			return "", err
		}
		const n = 2000
		began := time.Now()
		for i := 0; i < n; i++ {
			if _, err := db.ExecContext(ctx, `INSERT INTO t (v) VALUES ('x')`); err != nil {
				return "", err
			}
		}
		el := time.Since(began)
		parts = append(parts, fmt.Sprintf("synchronous_commit=%s %.0f single-row commits/s (%s per commit)", sync,
			n/el.Seconds(), (el/n).Round(time.Microsecond)))
	}
	return "raw PostgreSQL ceiling: " + strings.Join(parts, "; "), nil
}

// spawn measures the process ceiling: /bin/true started from Go, one at a time and
// eight at a time.
func spawn() string {
	run := func(par int) float64 {
		const n = 1000
		var wg sync.WaitGroup
		ch := make(chan struct{}, par)
		began := time.Now()
		for i := 0; i < n; i++ {
			ch <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				exec.Command("/bin/true").Run()
				<-ch
			}()
		}
		wg.Wait()
		return n / time.Since(began).Seconds()
	}
	return fmt.Sprintf("process ceiling: /bin/true from Go %.0f/s one at a time, %.0f/s eight at a time", run(1), run(8))
}
