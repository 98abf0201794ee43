package runner_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/task"
)

// TestDateFlagsOneRule: every date flag reads a value without an offset in
// the DAG's timezone, and one with an offset as that instant. Before, dags
// trigger and dags test read UTC while backfill and dags next read the DAG's zone.
func TestDateFlagsOneRule(t *testing.T) {
	t.Parallel()
	d := dag.New("ams", dag.TimezoneName("Europe/Amsterdam"), dag.Schedule("@daily"),
		dag.StartDate(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)))
	d.Add(task.Go("a", func(context.Context, *task.Run) (int, error) { return 1, nil }))
	c := &cli{t: t, db: filepath.Join(t.TempDir(), "trellis.db"), dags: []*dag.DAG{d}}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"dags", "trigger", "ams", "--logical-date", "2025-01-10"}, "manual__2025-01-09T23:00:00+00:00"},
		{[]string{"dags", "trigger", "ams", "--logical-date", "2025-01-10T00:00:00Z"}, "manual__2025-01-10T00:00:00+00:00"},
		{[]string{"dags", "trigger", "ams", "--logical-date", "2025-01-10T06:00:00+01:00"}, "manual__2025-01-10T05:00:00+00:00"},
		{[]string{"dags", "test", "ams", "--logical-date", "2025-07-01T12:00"}, "manual__2025-07-01T10:00:00+00:00"},
	} {
		if code := c.run(tc.args...); code != 0 || !strings.Contains(c.stdout.String(), tc.want) {
			t.Errorf("%v: exit %d, want %s in:\n%s%s", tc.args, code, tc.want, &c.stdout, &c.stderr)
		}
	}
	if code := c.run("dags", "trigger", "ams", "--logical-date", "soon"); code == 0 || !strings.Contains(c.stderr.String(), "read in the DAG's timezone, Europe/Amsterdam") {
		t.Errorf("a bad date: exit %d: %s", code, &c.stderr)
	}
}

// TestTasksTestInARun: tasks test --run takes the run's upstream results, dates
// and conf; without --run, a task with upstreams that fails says how to give
// it their results.
func TestTasksTestInARun(t *testing.T) {
	t.Parallel()
	c := setup(t)
	if code := c.run("dags", "test", "etl", "--logical-date", "2024-03-05", "--conf", `{"limit": 3}`); code != 0 {
		t.Fatalf("dags test: exit %d\n%s", code, &c.stderr)
	}
	if code := c.run("tasks", "test", "etl", "say", "--run", "manual__2024-03-05T00:00:00+00:00"); code != 0 ||
		!strings.Contains(c.stdout.String(), "2024-03-05 limit=3") {
		t.Errorf("tasks test --run: exit %d, want the run's date and conf:\n%s%s", code, &c.stdout, &c.stderr)
	}
	if code := c.run("tasks", "test", "etl", "count"); code == 0 || !strings.Contains(c.stderr.String(), "pass --run <run id>") {
		t.Errorf("tasks test of a task with upstreams, no --run: exit %d, want a hint:\n%s", code, &c.stderr)
	}
	if code := c.run("tasks", "test", "etl", "count", "--run", "manual__2024-03-05T00:00:00+00:00"); code != 0 || !strings.Contains(c.stdout.String(), "result: 3") {
		t.Errorf("tasks test count --run: exit %d:\n%s%s", code, &c.stdout, &c.stderr)
	}
}
