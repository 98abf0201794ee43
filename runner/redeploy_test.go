package runner_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/operators"
	"github.com/trellisdag/trellis/task"
)

// TestRedeployWithChangedDAG: the binary of one deploy creates runs; the next
// binary's DAG has a task added (b) and one renamed (cleanup -> tidy). Its
// serve must complete the old queued run, including the new task, and go on
// with the other DAGs; the old run's log of the renamed task stays readable.
// Before, serve exited 1 for every DAG ("has no task instance for 1 task(s)
// added since") and logs said the DAG has no task "cleanup".
func TestRedeployWithChangedDAG(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "trellis.db")
	binary := func(version int) *cli {
		d := dag.New("evo")
		a := task.Go("a", func(context.Context, *task.Run) (int, error) { return 1, nil })
		if version == 1 {
			d.Add(a, operators.Bash("cleanup", `echo "cleaned by v1"`))
		} else {
			b := task.Go("b", func(ctx context.Context, r *task.Run) (string, error) {
				n, err := task.Output(r, a)
				return fmt.Sprintf("b saw %d", n), err
			})
			d.Add(a, b, operators.Bash("tidy", `echo "tidied by v2"`))
			a.Then(b)
		}
		other := dag.New("other")
		other.Add(task.Go("x", func(context.Context, *task.Run) (int, error) { return 2, nil }))
		return &cli{t: t, db: db, dags: []*dag.DAG{d, other}}
	}
	v1, v2 := binary(1), binary(2)
	if code := v1.run("dags", "test", "evo", "--logical-date", "2024-01-01"); code != 0 {
		t.Fatalf("v1 dags test: exit %d\n%s%s", code, &v1.stdout, &v1.stderr)
	}
	if code := v1.run("dags", "trigger", "evo", "--logical-date", "2024-01-02"); code != 0 {
		t.Fatalf("v1 trigger: exit %d\n%s", code, &v1.stderr)
	}
	if code := v1.run("dags", "trigger", "other", "--logical-date", "2024-01-02"); code != 0 {
		t.Fatalf("v1 trigger other: exit %d\n%s", code, &v1.stderr)
	}

	if code := v2.run("serve", "--until-idle", "--listen", ""); code != 0 {
		t.Fatalf("v2 serve: exit %d\n%s%s", code, &v2.stdout, &v2.stderr)
	}
	if code := v2.run("runs", "show", "evo", "manual__2024-01-02T00:00:00+00:00"); code != 0 {
		t.Fatalf("runs show: exit %d\n%s", code, &v2.stderr)
	}
	show := v2.stdout.String()
	for _, id := range []string{"a", "b", "tidy"} {
		if row := rowOf(show, id); !strings.Contains(row, "success") {
			t.Errorf("task %s of the old queued run: %q, want success\n%s", id, row, show)
		}
	}
	if !strings.Contains(show, `"b saw 1"`) {
		t.Errorf("the added task b did not run with a's result:\n%s", show)
	}
	if code := v2.run("runs", "show", "other", "manual__2024-01-02T00:00:00+00:00"); code != 0 || !strings.Contains(rowOf(v2.stdout.String(), "x"), "success") {
		t.Errorf("the other DAG's run: exit %d\n%s%s", code, &v2.stdout, &v2.stderr)
	}
	// Versions: the old queued run was reconciled to v2's definition; the
	// finished one keeps v1's, which is stored and can be printed.
	ver1, ver2 := v1.dags[0].Version(), v2.dags[0].Version()
	if ver1 == ver2 {
		t.Fatalf("both definitions have version %s", ver1)
	}
	if code := v2.run("runs", "show", "evo", "manual__2024-01-02T00:00:00+00:00"); code != 0 || !strings.Contains(v2.stdout.String(), "DAG version "+ver2+"\n") {
		t.Errorf("the reconciled run, want DAG version %s:\n%s", ver2, &v2.stdout)
	}
	if code := v2.run("runs", "show", "evo", "manual__2024-01-01T00:00:00+00:00"); code != 0 ||
		!strings.Contains(v2.stdout.String(), "DAG version "+ver1+" (this binary's is "+ver2) {
		t.Errorf("the finished run, want DAG version %s:\n%s", ver1, &v2.stdout)
	}
	if code := v2.run("dags", "show", "evo", "--version", ver1); code != 0 || rowOf(v2.stdout.String(), "cleanup") == "" ||
		!strings.Contains(v2.stdout.String(), "(stored; this binary's is "+ver2+")") {
		t.Errorf("dags show --version %s: exit %d\n%s%s", ver1, code, &v2.stdout, &v2.stderr)
	}
	if code := v2.run("logs", "evo", "manual__2024-01-01T00:00:00+00:00", "cleanup"); code != 0 || !strings.Contains(v2.stdout.String(), "cleaned by v1") {
		t.Errorf("logs of the renamed task in the old run: exit %d\n%s%s", code, &v2.stdout, &v2.stderr)
	}
	// The finished old run can be cleared and run again under the new definition.
	if code := v2.run("tasks", "clear", "evo", "manual__2024-01-01T00:00:00+00:00"); code != 0 {
		t.Errorf("tasks clear of the old run: exit %d\n%s%s", code, &v2.stdout, &v2.stderr)
	}
	if code := v2.run("serve", "--until-idle", "--listen", ""); code != 0 {
		t.Fatalf("v2 serve after the clear: exit %d\n%s%s", code, &v2.stdout, &v2.stderr)
	}
	if code := v2.run("runs", "show", "evo", "manual__2024-01-01T00:00:00+00:00"); code != 0 || !strings.Contains(v2.stdout.String(), `"b saw 1"`) {
		t.Errorf("the cleared old run under the new definition: exit %d\n%s%s", code, &v2.stdout, &v2.stderr)
	}
	// Reconciled, the renamed task's instance is removed (Airflow's state),
	// kept with its try and log.
	if row := rowOf(v2.stdout.String(), "cleanup"); !strings.Contains(row, "removed") || !strings.Contains(row, "1/1") {
		t.Errorf("cleanup in the reconciled run: %q, want removed with its try kept\n%s", row, &v2.stdout)
	}
	if code := v2.run("logs", "evo", "manual__2024-01-01T00:00:00+00:00", "cleanup"); code != 0 || !strings.Contains(v2.stdout.String(), "cleaned by v1") {
		t.Errorf("logs of the removed task: exit %d\n%s%s", code, &v2.stdout, &v2.stderr)
	}
	if code := v2.run("logs", "evo", "manual__2024-01-01T00:00:00+00:00", "nope"); code == 0 || !strings.Contains(v2.stderr.String(), `dag "evo" has no task "nope"`) {
		t.Errorf("logs of a task the run never had: exit %d\n%s", code, &v2.stderr)
	}
}

// rowOf returns the line of a task in runs show's table.
func rowOf(out, taskID string) string {
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == taskID {
			return line
		}
	}
	return ""
}
