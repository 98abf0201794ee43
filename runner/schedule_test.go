package runner_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/runner"
	"github.com/trellisdag/trellis/task"
)

func scheduledDAGs() []*dag.DAG {
	ams, _ := time.LoadLocation("Europe/Amsterdam")
	nightly := dag.New("nightly", dag.Schedule("30 2 * * *"), dag.Timezone(ams),
		dag.StartDate(time.Date(2024, 3, 1, 0, 0, 0, 0, ams)), dag.Catchup(false), dag.DefaultRetries(0, 0))
	nightly.Add(task.Go("work", func(ctx context.Context, r *task.Run) (string, error) {
		start, _ := r.DataInterval()
		return start.UTC().Format(time.RFC3339), nil
	}))
	return []*dag.DAG{nightly}
}

func runCLI(t *testing.T, dags []*dag.DAG, db string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	r := runner.New(runner.Config{Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }}, dags...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code := r.Run(ctx, append(args, "--db", db))
	return code, stdout.String(), stderr.String()
}

// TestDagsNextAcrossDST previews the spring-forward night in Amsterdam: 02:30 does
// not exist on 2024-03-31 and moves forward by the gap to 03:30 CEST.
func TestDagsNextAcrossDST(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "t.db")
	code, out, errOut := runCLI(t, scheduledDAGs(), db, "dags", "next", "nightly", "--count", "5", "--now", "2024-03-29T12:00:00")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"2024-03-30 02:30 CET", // logical date of the run created on the 31st
		"2024-03-31 03:30 CEST",
		"2024-04-01 02:30 CEST",
		"2024-03-31T01:30Z",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dags next lacks %q:\n%s", want, out)
		}
	}
	if fileExists(db) {
		t.Error("dags next created a database")
	}
}

func TestScheduleBadInputWritesNothing(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		dags []*dag.DAG
		args []string
		want string
	}{
		{"invalid cron", []*dag.DAG{dag.New("c", dag.Schedule("61 * * * *"))}, []string{"dags", "list"}, `dag "c": schedule "61 * * * *"`},
		{"unknown timezone", []*dag.DAG{dag.New("z", dag.TimezoneName("Mars/Olympus"))}, []string{"dags", "list"}, `dag "z": unknown timezone "Mars/Olympus"`},
		{"Every(0)", []*dag.DAG{dag.New("e", dag.Every(0))}, []string{"dags", "list"}, `dag "e": schedule: Every(0s): the interval must be positive`},
		{"negative Every", []*dag.DAG{dag.New("e", dag.Every(-time.Hour))}, []string{"dags", "list"}, `Every(-1h0m0s)`},
		{"from after to", scheduledDAGs(), []string{"dags", "backfill", "nightly", "--from", "2024-04-02", "--to", "2024-04-01"}, `dag "nightly": backfill --from 2024-04-02T00:00:00+02:00 is after --to 2024-04-01T00:00:00+02:00`},
		{"before start date", scheduledDAGs(), []string{"dags", "backfill", "nightly", "--from", "2023-01-01", "--to", "2023-02-01"}, `dag "nightly": backfill range ends 2023-02-01T00:00:00+01:00, before the start date 2024-03-01T00:00:00+01:00`},
		{"missing --to", scheduledDAGs(), []string{"dags", "backfill", "nightly", "--from", "2024-04-01"}, "--from and --to are required"},
		{"bad date", scheduledDAGs(), []string{"dags", "backfill", "nightly", "--from", "soon", "--to", "2024-04-01"}, `--from "soon": not a date`},
		{"bad count", scheduledDAGs(), []string{"dags", "next", "nightly", "--count", "0"}, "--count 0: want 1 to 10000"},
		{"pause unknown", scheduledDAGs(), []string{"dags", "pause", "nope"}, `unknown dag "nope"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := filepath.Join(t.TempDir(), "t.db")
			code, _, errOut := runCLI(t, tc.dags, db, tc.args...)
			if code != runner.ExitUsage {
				t.Fatalf("exit %d, want 2: %s", code, errOut)
			}
			if !strings.Contains(errOut, tc.want) {
				t.Errorf("stderr = %q, want %q", errOut, tc.want)
			}
			if fileExists(db) {
				t.Error("a database was created")
			}
		})
	}
}

func TestBackfillRunsAndResumes(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "t.db")
	dags := scheduledDAGs()
	code, out, errOut := runCLI(t, dags, db, "dags", "backfill", "nightly", "--from", "2024-03-29", "--to", "2024-04-01", "--max-active-runs", "2")
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "3 succeeded, 0 failed, 0 already done before") {
		t.Errorf("summary:\n%s", out)
	}
	// A wider range runs only what is missing.
	code, out, _ = runCLI(t, dags, db, "dags", "backfill", "nightly", "--from", "2024-03-29", "--to", "2024-04-02")
	if code != 0 || !strings.Contains(out, "4 intervals, 1 to run, 3 already done") {
		t.Fatalf("resume: exit %d:\n%s", code, out)
	}
	code, out, _ = runCLI(t, dags, db, "runs", "list", "nightly")
	if code != 0 || strings.Count(out, "backfill__") != 4 {
		t.Errorf("runs:\n%s", out)
	}
	// The spring-forward run's interval starts 02:30 CET on the 30th and ends at
	// 03:30 CEST on the 31st (23 hours).
	if !strings.Contains(out, "backfill__2024-03-30T01:30:00+00:00") || !strings.Contains(out, "backfill__2024-03-31T01:30:00+00:00") {
		t.Errorf("runs:\n%s", out)
	}
}

func TestPauseUnpause(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "t.db")
	dags := scheduledDAGs()
	if code, out, errOut := runCLI(t, dags, db, "dags", "pause", "nightly"); code != 0 || !strings.Contains(out, "is paused") {
		t.Fatalf("pause: %d %s %s", code, out, errOut)
	}
	if code, out, _ := runCLI(t, dags, db, "dags", "list"); code != 0 || !strings.Contains(out, "yes") {
		t.Errorf("list after pause:\n%s", out)
	}
	if code, out, _ := runCLI(t, dags, db, "dags", "next", "nightly"); code != 0 || !strings.Contains(out, "paused") {
		t.Errorf("next after pause:\n%s", out)
	}
	if code, out, _ := runCLI(t, dags, db, "dags", "unpause", "nightly"); code != 0 || !strings.Contains(out, "unpaused") {
		t.Errorf("unpause:\n%s", out)
	}
}

// TestPauseNewDAGs: with --pause-new-dags a DAG the database has never seen
// starts paused (serve creates none of its runs) and stays paused on later
// starts until dags unpause; without it, serve schedules the newest interval.
func TestPauseNewDAGs(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "t.db")
	dags := scheduledDAGs()
	if code, out, errOut := runCLI(t, dags, db, "serve", "--until-idle", "--pause-new-dags"); code != 0 {
		t.Fatalf("serve --pause-new-dags: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, _ := runCLI(t, dags, db, "dags", "list"); code != 0 || !strings.Contains(out, "yes") {
		t.Errorf("a new DAG under --pause-new-dags is not paused:\n%s", out)
	}
	if code, out, _ := runCLI(t, dags, db, "serve", "--until-idle"); code != 0 {
		t.Fatalf("serve: exit %d\n%s", code, out)
	}
	if code, out, _ := runCLI(t, dags, db, "runs", "list", "nightly"); code != 0 || strings.Contains(out, "scheduled__") {
		t.Errorf("a paused DAG got scheduled runs:\n%s", out)
	}
	if code, _, errOut := runCLI(t, dags, db, "dags", "unpause", "nightly"); code != 0 {
		t.Fatalf("unpause: exit %d %s", code, errOut)
	}
	if code, out, errOut := runCLI(t, dags, db, "serve", "--until-idle"); code != 0 {
		t.Fatalf("serve after unpause: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, _ := runCLI(t, dags, db, "runs", "list", "nightly"); code != 0 || strings.Count(out, "scheduled__") != 1 {
		t.Errorf("after unpause, want the newest interval scheduled (catchup off):\n%s", out)
	}
}

// TestDagsNextCountsCatchup: a DAG with an old start date and catchup on
// would create every missed run at once; dags next says how many.
func TestDagsNextCountsCatchup(t *testing.T) {
	t.Parallel()
	hourly := dag.New("hourly", dag.Schedule("@hourly"), dag.StartDate(time.Date(2024, 3, 31, 0, 0, 0, 0, time.UTC)), dag.Catchup(true))
	hourly.Add(task.Go("work", func(context.Context, *task.Run) (int, error) { return 1, nil }))
	db := filepath.Join(t.TempDir(), "t.db")
	code, out, errOut := runCLI(t, []*dag.DAG{hourly}, db, "dags", "next", "hourly", "--now", "2024-04-02T00:00:00Z", "--count", "2")
	if code != 0 || !strings.Contains(out, "Catchup: 48 runs are due now (from logical date 2024-03-31 00:00 UTC); serve creates them all at once") {
		t.Errorf("exit %d:\n%s%s", code, out, errOut)
	}
	code, out, _ = runCLI(t, []*dag.DAG{hourly}, db, "dags", "next", "hourly", "--now", "2040-01-01T00:00:00Z", "--count", "1")
	if code != 0 || !strings.Contains(out, "Catchup: at least 100000 runs are due now") {
		t.Errorf("bounded count: exit %d:\n%s", code, out)
	}
}

// TestServeLogsCatchup: serve says, before it schedules, how many catchup
// runs a DAG is about to get at once.
func TestServeLogsCatchup(t *testing.T) {
	t.Parallel()
	start := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -10)
	d := dag.New("behind", dag.Schedule("@daily"), dag.StartDate(start))
	d.Add(task.Go("t", func(context.Context, *task.Run) (int, error) { return 0, nil }))
	c := &cli{t: t, db: filepath.Join(t.TempDir(), "trellis.db"), dags: []*dag.DAG{d}}
	if code := c.run("serve", "--until-idle", "--listen", ""); code != 0 {
		t.Fatalf("serve: %d\n%s", code, &c.stderr)
	}
	if !strings.Contains(c.stderr.String(), "catchup: runs are due now") || !strings.Contains(c.stderr.String(), `"runs":"10"`) {
		t.Errorf("serve's log does not announce the 10 catchup runs:\n%s", &c.stderr)
	}
}
