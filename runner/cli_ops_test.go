package runner_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/internal/store"
	"github.com/trellisdag/trellis/runner"
	"github.com/trellisdag/trellis/task"
)

// TestMarkAndLatest: tasks mark sets a finished task's state by hand (the
// scheduler then re-evaluates the run), and "latest" names a DAG's newest run.
func TestMarkAndLatest(t *testing.T) {
	t.Parallel()
	c := setup(t)
	if code := c.run("runs", "show", "etl", "latest"); code != 2 || !strings.Contains(c.stderr.String(), `has no run "latest"`) {
		t.Errorf("latest before any run: exit %d: %s", code, &c.stderr)
	}
	for _, ld := range []string{"2024-03-05", "2024-03-07", "2024-03-06"} {
		if code := c.run("dags", "test", "etl", "--logical-date", ld); code != 0 {
			t.Fatalf("dags test %s: exit %d\n%s", ld, code, &c.stderr)
		}
	}
	if code := c.run("tasks", "mark", "etl", "latest", "say", "--state", "failed", "--note", "bad data upstream"); code != 0 ||
		!strings.Contains(c.stdout.String(), "Marked say of run manual__2024-03-07T00:00:00+00:00 failed (it was success)") {
		t.Fatalf("tasks mark: exit %d\n%s%s", code, &c.stdout, &c.stderr)
	}
	if code := c.run("serve", "--until-idle", "--listen", ""); code != 0 {
		t.Fatalf("serve: exit %d\n%s", code, &c.stderr)
	}
	if code := c.run("runs", "show", "etl", "latest"); code != 0 || !strings.Contains(c.stdout.String(), "manual__2024-03-07T00:00:00+00:00 of etl: failed") ||
		!strings.Contains(rowOf(c.stdout.String(), "say"), "bad data upstream") {
		t.Errorf("runs show latest after the mark: exit %d\n%s%s", code, &c.stdout, &c.stderr)
	}
	for _, bad := range [][]string{
		{"tasks", "mark", "etl", "latest", "say", "--state", "skipped"},
		{"tasks", "mark", "etl", "latest", "nope", "--state", "success"},
	} {
		if code := c.run(bad...); code != 2 {
			t.Errorf("%v: exit %d, want 2: %s", bad, code, &c.stderr)
		}
	}
}

// TestRunsListTimesCarryTheirZone: every time runs list prints is RFC 3339
// in UTC (before, STARTED was local time without a zone beside UTC dates).
func TestRunsListTimesCarryTheirZone(t *testing.T) {
	t.Parallel()
	c := setup(t)
	if code := c.run("dags", "test", "etl", "--logical-date", "2024-03-05"); code != 0 {
		t.Fatalf("dags test: exit %d\n%s", code, &c.stderr)
	}
	if code := c.run("runs", "list", "etl"); code != 0 {
		t.Fatalf("runs list: exit %d\n%s", code, &c.stderr)
	}
	row := strings.Fields(rowOf(c.stdout.String(), "manual__2024-03-05T00:00:00+00:00"))
	if len(row) < 5 || row[3] != "2024-03-05T00:00:00Z" || !strings.HasSuffix(row[4], "Z") || strings.Count(row[4], "T") != 1 {
		t.Errorf("runs list row %q: want the logical date and the start, both RFC 3339 UTC", row)
	}
}

// TestCLIActionsAudited: what the command line changes is in the audit log
// beside the API's actions, with the user who ran it.
func TestCLIActionsAudited(t *testing.T) {
	t.Parallel()
	c := setup(t)
	steps := [][]string{
		{"dags", "test", "etl", "--logical-date", "2024-03-05"},
		{"dags", "trigger", "etl", "--logical-date", "2024-03-06"},
		{"tasks", "mark", "etl", "manual__2024-03-05T00:00:00+00:00", "say", "--state", "failed", "--note", "why not"},
		{"tasks", "clear", "etl", "manual__2024-03-05T00:00:00+00:00", "--task", "say"},
		{"dags", "pause", "etl"},
	}
	for _, args := range steps {
		if code := c.run(args...); code != 0 {
			t.Fatalf("%v: exit %d\n%s", args, code, &c.stderr)
		}
	}
	st, err := store.Open(context.Background(), c.db, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	entries, _, err := st.Audit(context.Background(), store.AuditFilter{DAGID: "etl"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		if e.Role != "cli" || !strings.HasPrefix(e.Actor, "cli:") || e.Outcome != "ok" {
			t.Errorf("entry %+v: want role cli, actor cli:<user>, outcome ok", e)
		}
		got = append(got, e.Action+" "+e.RunID+" "+e.TaskID)
	}
	want := "trigger manual__2024-03-06T00:00:00+00:00 |mark_failed manual__2024-03-05T00:00:00+00:00 say|clear manual__2024-03-05T00:00:00+00:00 say|pause  "
	if strings.Join(got, "|") != want {
		t.Errorf("audit log:\n%s\nwant\n%s", strings.Join(got, "|"), want)
	}
}

// TestDagsShowEverySetting: dags show prints retry delay and backoff,
// priority, depends_on_past and the docs, besides what it printed before.
func TestDagsShowEverySetting(t *testing.T) {
	t.Parallel()
	d := dag.New("full", dag.Doc("Loads the warehouse."))
	a := task.Go("a", func(context.Context, *task.Run) (int, error) { return 1, nil }, task.Retries(3),
		task.RetryDelay(time.Minute), task.ExponentialBackoff(true), task.MaxRetryDelay(time.Hour), task.Priority(7),
		task.DependsOnPast(true), task.Doc("Reads the orders."))
	d.Add(a)
	c := &cli{t: t, db: filepath.Join(t.TempDir(), "t.db"), dags: []*dag.DAG{d}}
	if code := c.run("dags", "show", "full"); code != 0 {
		t.Fatalf("exit %d: %s", code, &c.stderr)
	}
	out := c.stdout.String()
	row := rowOf(out, "a")
	for _, want := range []string{"1m0s (exponential up to 1h0m0s)", " 7 ", "depends_on_past", " 3 "} {
		if !strings.Contains(row, want) {
			t.Errorf("row %q lacks %q", row, want)
		}
	}
	for _, want := range []string{"RETRY DELAY", "PRIORITY", "Loads the warehouse.", "a: Reads the orders."} {
		if !strings.Contains(out, want) {
			t.Errorf("dags show lacks %q:\n%s", want, out)
		}
	}
}

// TestRetention: db clean deletes finished runs older than a date with their
// rows (keeping each DAG's newest finished run), --dry-run deletes nothing,
// and runs delete removes one finished run but refuses an active one.
func TestRetention(t *testing.T) {
	t.Parallel()
	c := setup(t)
	for _, ld := range []string{"2024-03-01", "2024-03-02", "2024-03-03", "2024-03-04", "2024-03-05"} {
		if code := c.run("dags", "test", "etl", "--logical-date", ld); code != 0 {
			t.Fatalf("dags test %s: exit %d\n%s", ld, code, &c.stderr)
		}
	}
	if code := c.run("db", "clean", "--before", "2024-03-04", "--dry-run"); code != 0 || !strings.Contains(c.stdout.String(), "Would delete 3 finished run(s)") {
		t.Fatalf("dry run: exit %d\n%s%s", code, &c.stdout, &c.stderr)
	}
	if code := c.run("db", "clean", "--before", "2030-01-01"); code != 0 || !strings.Contains(c.stdout.String(), "Deleted 4 finished run(s)") {
		t.Fatalf("clean: exit %d\n%s%s", code, &c.stdout, &c.stderr)
	}
	if code := c.run("runs", "list", "etl"); code != 0 || strings.Count(c.stdout.String(), "manual__") != 1 || !strings.Contains(c.stdout.String(), "manual__2024-03-05") {
		t.Errorf("runs left after clean (want only the newest):\n%s", &c.stdout)
	}
	if code := c.run("logs", "etl", "manual__2024-03-01T00:00:00+00:00", "say"); code != 2 {
		t.Errorf("logs of a deleted run: exit %d", code)
	}
	if code := c.run("dags", "trigger", "etl", "--logical-date", "2024-03-09"); code != 0 {
		t.Fatalf("trigger: exit %d", code)
	}
	if code := c.run("runs", "delete", "etl", "latest"); code != 2 || !strings.Contains(c.stderr.String(), "is queued") {
		t.Errorf("runs delete of a queued run: exit %d %s", code, &c.stderr)
	}
	if code := c.run("runs", "delete", "etl", "manual__2024-03-05T00:00:00+00:00"); code != 0 {
		t.Errorf("runs delete: exit %d %s", code, &c.stderr)
	}
	st, err := store.Open(context.Background(), c.db, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	n, err := st.CountRuns(context.Background(), store.RunFilter{DAGID: "etl"})
	if err != nil || n != 1 {
		t.Errorf("runs in the database: %d, %v; want the queued one only", n, err)
	}
}

// TestServeRetention: serve --retention deletes the finished runs older than
// the age before it schedules (the newest finished run of each DAG stays).
func TestServeRetention(t *testing.T) {
	t.Parallel()
	c := setup(t)
	for _, ld := range []string{"2024-03-01", "2024-03-02"} {
		if code := c.run("dags", "test", "etl", "--logical-date", ld); code != 0 {
			t.Fatalf("dags test %s: exit %d\n%s", ld, code, &c.stderr)
		}
	}
	recent := time.Now().UTC().Add(-time.Hour).Format(time.RFC3339)
	if code := c.run("dags", "test", "etl", "--logical-date", recent); code != 0 {
		t.Fatalf("dags test now: exit %d\n%s", code, &c.stderr)
	}
	if code := c.run("serve", "--until-idle", "--retention", "bad"); code != 2 || !strings.Contains(c.stderr.String(), `--retention "bad"`) {
		t.Errorf("--retention bad: exit %d %s", code, &c.stderr)
	}
	if code := c.run("serve", "--until-idle", "--retention", "30d"); code != 0 {
		t.Fatalf("serve --retention: exit %d\n%s", code, &c.stderr)
	}
	if code := c.run("runs", "list", "etl"); code != 0 || strings.Count(c.stdout.String(), "manual__") != 1 || strings.Contains(c.stdout.String(), "manual__2024") {
		t.Errorf("runs after serve --retention 30d, want only the recent one:\n%s", &c.stdout)
	}
}

// TestPoolsDeclared: a task in a pool the runner does not declare makes the
// binary refuse to run (it once silently got 128 slots); pools list shows
// each pool's slots, the slots in use and the tasks that use it.
func TestPoolsDeclared(t *testing.T) {
	t.Parallel()
	d := dag.New("wh")
	d.Add(task.Go("load", func(context.Context, *task.Run) (int, error) { return 1, nil }, task.Pool("warehose")))
	var out, errb strings.Builder
	r := runner.New(runner.Config{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" },
		Pools: map[string]int{"warehouse": 4}}, d)
	if code := r.Run(context.Background(), []string{"dags", "list", "--db", filepath.Join(t.TempDir(), "t.db")}); code != 2 ||
		!strings.Contains(errb.String(), `dag "wh": task "load": pool "warehose" is not declared`) ||
		!strings.Contains(errb.String(), "declared: default_pool (128), warehouse (4)") {
		t.Errorf("exit %d: %s", code, &errb)
	}

	big := dag.New("wh")
	big.Add(task.Go("load", func(context.Context, *task.Run) (int, error) { return 1, nil }, task.Pool("warehouse"), task.PoolSlots(5)))
	errb.Reset()
	r = runner.New(runner.Config{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" },
		Pools: map[string]int{"warehouse": 4}}, big)
	if code := r.Run(context.Background(), []string{"dags", "list", "--db", filepath.Join(t.TempDir(), "t.db")}); code != 2 ||
		!strings.Contains(errb.String(), `task "load" takes 5 slots of pool "warehouse", which has 4: it could never run`) {
		t.Errorf("pool_slots above the pool's size: exit %d: %s", code, &errb)
	}

	ok := dag.New("wh")
	ok.Add(task.Go("load", func(context.Context, *task.Run) (int, error) { return 1, nil }, task.Pool("warehouse")),
		task.Go("other", func(context.Context, *task.Run) (int, error) { return 1, nil }))
	out.Reset()
	r = runner.New(runner.Config{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" },
		Pools: map[string]int{"warehouse": 4}}, ok)
	if code := r.Run(context.Background(), []string{"pools", "list", "--db", filepath.Join(t.TempDir(), "t.db")}); code != 0 {
		t.Fatalf("pools list: exit %d: %s", code, &errb)
	}
	for _, want := range []string{"default_pool  128    0       1", "warehouse     4      0       1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("pools list lacks %q:\n%s", want, &out)
		}
	}
}

// TestRunsShowSaysWhy: a task that cannot start says why in runs show, and
// serve --until-idle stops (exit 1) naming what holds the run instead of
// waiting forever.
func TestRunsShowSaysWhy(t *testing.T) {
	t.Parallel()
	d := dag.New("past", dag.DefaultRetries(0, 0))
	load := task.Go("load", func(_ context.Context, r *task.Run) (int, error) {
		if r.Info().LogicalDate.Day() == 1 {
			return 0, errors.New("bad input")
		}
		return 1, nil
	}, task.DependsOnPast(true))
	report := task.Go("report", func(context.Context, *task.Run) (int, error) { return 1, nil })
	d.Add(load, report)
	load.Then(report)
	c := &cli{t: t, db: filepath.Join(t.TempDir(), "t.db"), dags: []*dag.DAG{d}}
	if code := c.run("dags", "test", "past", "--logical-date", "2024-03-01"); code != 1 {
		t.Fatalf("the first run should fail: exit %d\n%s", code, &c.stderr)
	}
	if code := c.run("dags", "trigger", "past", "--logical-date", "2024-03-02"); code != 0 {
		t.Fatalf("trigger: exit %d\n%s", code, &c.stderr)
	}
	if code := c.run("runs", "show", "past", "latest"); code != 0 ||
		!strings.Contains(rowOf(c.stdout.String(), "load"), "waiting: the run is queued") {
		t.Errorf("queued run: exit %d\n%s", code, &c.stdout)
	}
	if code := c.run("serve", "--until-idle", "--listen", ""); code != 1 ||
		!strings.Contains(c.stderr.String(), "run manual__2024-03-02T00:00:00+00:00 of dag past: task load waits for its previous run (depends_on_past") {
		t.Errorf("serve --until-idle with a held run: exit %d\n%s", code, &c.stderr)
	}
	if code := c.run("runs", "show", "past", "latest"); code != 0 ||
		!strings.Contains(rowOf(c.stdout.String(), "load"), "waiting: depends_on_past: load of run manual__2024-03-01T00:00:00+00:00 is failed") ||
		!strings.Contains(rowOf(c.stdout.String(), "report"), "waiting: upstream not done: load") {
		t.Errorf("runs show of the held run: exit %d\n%s", code, &c.stdout)
	}
}

// TestPoolsSet: pools set resizes a declared pool without a rebuild, refuses
// an undeclared pool and a size below a task's pool_slots, and pools list
// shows both sizes.
func TestPoolsSet(t *testing.T) {
	t.Parallel()
	d := dag.New("wh")
	d.Add(task.Go("load", func(context.Context, *task.Run) (int, error) { return 1, nil }, task.Pool("warehouse"), task.PoolSlots(2)))
	db := filepath.Join(t.TempDir(), "t.db")
	run := func(args ...string) (int, string, string) {
		var out, errb strings.Builder
		r := runner.New(runner.Config{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" },
			Pools: map[string]int{"warehouse": 4}}, d)
		code := r.Run(context.Background(), append(args, "--db", db))
		return code, out.String(), errb.String()
	}
	if code, _, errOut := run("pools", "set", "warehouse", "8"); code != 0 {
		t.Fatalf("pools set: exit %d %s", code, errOut)
	}
	if code, out, _ := run("pools", "list"); code != 0 || !strings.Contains(out, "8 (set at run time; declared 4)") {
		t.Errorf("pools list:\n%s", out)
	}
	if code, _, errOut := run("pools", "set", "warehose", "8"); code != 2 || !strings.Contains(errOut, `pool "warehose" is not declared`) {
		t.Errorf("undeclared: exit %d %s", code, errOut)
	}
	if code, _, errOut := run("pools", "set", "warehouse", "1"); code != 2 || !strings.Contains(errOut, `fewer than task "load" of dag "wh" takes (2)`) {
		t.Errorf("below pool_slots: exit %d %s", code, errOut)
	}
}
