package runner_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/task"
)

// resourceDAG: create_cluster -> quality (check_a, check_b) -> delete_cluster,
// a teardown of create_cluster; tries counts each task's tries by id.
func resourceDAG(tries map[string]*atomic.Int32) *dag.DAG {
	step := func(id string, opts ...task.Option) *task.GoTask[int] {
		return task.Go(id, func(_ context.Context, r *task.Run) (int, error) {
			return int(tries[r.Info().TaskID].Add(1)), nil
		}, opts...)
	}
	create := step("create_cluster")
	quality := task.NewGroup("quality", task.Retries(2))
	quality.Add(step("check_a"), step("check_b"))
	del := step("delete_cluster", task.AsTeardown(create))
	d := dag.New("res", dag.DefaultRetries(0, 0)).Add(create, quality, del)
	task.Chain(create, quality, del)
	for _, t := range d.Tasks() {
		tries[t.ID()] = &atomic.Int32{}
	}
	return d
}

// TestClearBringsSetupAndTeardown: clearing a work task also clears its setup
// and its teardown (the CLI and the API share dag.DAG.ClearScope), so the
// scheduler runs the three again and leaves the other check alone.
func TestClearBringsSetupAndTeardown(t *testing.T) {
	t.Parallel()
	tries := map[string]*atomic.Int32{}
	c := &cli{t: t, db: filepath.Join(t.TempDir(), "t.db"), dags: []*dag.DAG{resourceDAG(tries)}}
	if code := c.run("dags", "test", "res", "--logical-date", "2024-03-05"); code != 0 {
		t.Fatalf("dags test: exit %d\n%s%s", code, &c.stdout, &c.stderr)
	}
	if code := c.run("tasks", "clear", "res", "latest", "--task", "quality.check_a"); code != 0 ||
		!strings.Contains(c.stdout.String(), "Cleared 3 task(s) of run manual__2024-03-05T00:00:00+00:00: [create_cluster delete_cluster quality.check_a]") {
		t.Fatalf("tasks clear: exit %d\n%s%s", code, &c.stdout, &c.stderr)
	}
	if code := c.run("serve", "--until-idle", "--listen", ""); code != 0 {
		t.Fatalf("serve: exit %d\n%s", code, &c.stderr)
	}
	want := map[string]int32{"create_cluster": 2, "quality.check_a": 2, "quality.check_b": 1, "delete_cluster": 2}
	for id, n := range want {
		if got := tries[id].Load(); got != n {
			t.Errorf("%s ran %d times, want %d", id, got, n)
		}
	}
	if code := c.run("runs", "show", "res", "latest"); code != 0 || !strings.Contains(c.stdout.String(), "of res: success") {
		t.Errorf("runs show: exit %d\n%s%s", code, &c.stdout, &c.stderr)
	}
	// Clearing the teardown alone clears only it.
	if code := c.run("tasks", "clear", "res", "latest", "--task", "delete_cluster"); code != 0 ||
		!strings.Contains(c.stdout.String(), "Cleared 1 task(s) of run manual__2024-03-05T00:00:00+00:00: [delete_cluster]") {
		t.Errorf("tasks clear of the teardown: exit %d\n%s%s", code, &c.stdout, &c.stderr)
	}
}

// TestDagsShowGroupsAndRoles: dags show prints the groups as a tree with their
// tasks, and which tasks are setups and teardowns.
func TestDagsShowGroupsAndRoles(t *testing.T) {
	t.Parallel()
	tries := map[string]*atomic.Int32{}
	d := resourceDAG(tries)
	deep := task.NewGroup("outer")
	deep.Group("inner").Add(task.Go("x", func(context.Context, *task.Run) (int, error) { return 0, nil }))
	fails := task.Go("fails_run", func(context.Context, *task.Run) (int, error) { return 0, nil },
		task.AsTeardown(), task.FailRunOnTeardownFailure())
	d.Add(deep, fails)
	c := &cli{t: t, db: filepath.Join(t.TempDir(), "t.db"), dags: []*dag.DAG{d}}
	if code := c.run("dags", "show", "res"); code != 0 {
		t.Fatalf("dags show: exit %d\n%s", code, &c.stderr)
	}
	out := c.stdout.String()
	for id, want := range map[string]string{
		"create_cluster": "go (setup)", "delete_cluster": "go (teardown)", "fails_run": "go (teardown, fails run)",
	} {
		if row := rowOf(out, id); !strings.Contains(row, want) || !strings.Contains(row, "all_") {
			t.Errorf("row of %s = %q, want %q", id, row, want)
		}
	}
	if row := rowOf(out, "delete_cluster"); !strings.Contains(row, "all_done_setup_success") {
		t.Errorf("teardown row %q lacks its trigger rule", row)
	}
	for _, want := range []string{
		"GROUP          TASKS",
		"\nquality        quality.check_a, quality.check_b\n",
		"\nouter          -\n",
		"\n  outer.inner  outer.inner.x\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dags show lacks %q:\n%s", want, out)
		}
	}
	if code := c.run("dags", "show", "res", "--json"); code != 0 ||
		!strings.Contains(c.stdout.String(), `"group": "quality"`) || !strings.Contains(c.stdout.String(), `"parent": "outer"`) ||
		!strings.Contains(c.stdout.String(), `"teardown": true`) {
		t.Errorf("dags show --json: exit %d\n%s", code, &c.stdout)
	}
}
