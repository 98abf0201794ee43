package runner_test

import (
	"strings"
	"testing"
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
