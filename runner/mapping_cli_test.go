package runner_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/operators"
	"github.com/trellisdag/trellis/runner"
	"github.com/trellisdag/trellis/task"
)

// mappedDAG is a DAG with a Go task mapped over an upstream's result of five
// elements ("a" to "e"), a reduce downstream of it, and a PodOperator mapped
// over a literal list. The instance for element fail (when set) fails;
// ran counts the tries of each element.
type mappedDAG struct {
	d   *dag.DAG
	mu  sync.Mutex
	ran map[string]int
	bad string
}

func newMappedDAG(n int) *mappedDAG {
	m := &mappedDAG{ran: map[string]int{}}
	m.d = dag.New("mapped", dag.DefaultRetries(0, 0))
	list := task.Go("list", func(context.Context, *task.Run) ([]string, error) {
		var out []string
		for i := range n {
			out = append(out, string(rune('a'+i)))
		}
		return out, nil
	})
	resize := task.Map("resize", list, func(_ context.Context, r *task.Run, item string) (string, error) {
		m.mu.Lock()
		m.ran[item]++
		bad := m.bad
		m.mu.Unlock()
		fmt.Fprintf(r.Output(), "resizing %s at index %d\n", item, r.MapIndex())
		if item == bad {
			return "", errors.New("cannot resize " + item)
		}
		return strings.ToUpper(item), nil
	})
	total := task.Go("total", func(_ context.Context, r *task.Run) (string, error) {
		all, err := task.Output(r, resize)
		return strings.Join(all, ""), err
	})
	shout := operators.Bash("shout", "echo region={{ .Item }} index={{ .MapIndex }}", task.MapItems("eu", "us", "apac"))
	m.d.Add(list, resize, total, shout)
	resize.Then(total)
	return m
}

// podsDAG has a PodOperator mapped over a literal list and one mapped over
// an upstream's result, for render.
func podsDAG() *dag.DAG {
	d := dag.New("pods")
	list := task.Go("list", func(context.Context, *task.Run) ([]string, error) { return []string{"x"}, nil })
	push := operators.Pod("push", operators.PodSpec{Image: "pusher:1", Args: []string{"--region={{ .Item }}", "--index={{ .MapIndex }}"}},
		task.MapItems("eu", "us", "apac"))
	upload := operators.Pod("upload", operators.PodSpec{Image: "up:1", Args: []string{"--file={{ .Item }}"}}, task.MapOver(list))
	d.Add(list, push, upload)
	return d
}

func (m *mappedDAG) fail(item string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.bad = item
}

func (m *mappedDAG) tries(item string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ran[item]
}

// row returns the line of a runs show table whose first field is id.
func row(out, id string) string {
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == id {
			return line
		}
	}
	return ""
}

// TestMappedRunsShowLogsClear: runs show lists a mapped task as one line with
// its summary state and a count per state, then its instances; logs reads one
// instance's log with --map-index (or task[N]); tasks clear --map-index clears
// that instance only, and the next run of the scheduler runs only it (and the
// reduce taken along with --downstream).
func TestMappedRunsShowLogsClear(t *testing.T) {
	t.Parallel()
	m := newMappedDAG(5)
	m.fail("d")
	c := &cli{t: t, db: filepath.Join(t.TempDir(), "t.db"), dags: []*dag.DAG{m.d}}
	if code := c.run("dags", "test", "mapped", "--logical-date", "2024-03-05"); code != 1 {
		t.Fatalf("dags test: exit %d, want 1 (resize[3] fails)\n%s%s", code, &c.stdout, &c.stderr)
	}
	if !strings.Contains(c.stdout.String(), "✗ resize[3]") {
		t.Errorf("progress lacks the failed instance's line:\n%s", &c.stdout)
	}
	if code := c.run("runs", "show", "mapped", "latest"); code != 0 {
		t.Fatalf("runs show: exit %d: %s", code, &c.stderr)
	}
	out := c.stdout.String()
	if f := strings.Fields(row(out, "resize")); len(f) < 2 || f[1] != "failed" || !strings.Contains(row(out, "resize"), "[1 failed, 4 success]") {
		t.Errorf("summary row %q: want state failed and [1 failed, 4 success]\n%s", row(out, "resize"), out)
	}
	if f := strings.Fields(row(out, "resize[3]")); len(f) < 2 || f[1] != "failed" || !strings.Contains(row(out, "resize[3]"), "cannot resize d") {
		t.Errorf("instance row %q: want failed with its error\n%s", row(out, "resize[3]"), out)
	}
	for i, want := range []string{`"A"`, `"B"`, `"C"`} {
		if r := row(out, fmt.Sprintf("resize[%d]", i)); !strings.Contains(r, "success") || !strings.Contains(r, want) {
			t.Errorf("instance %d row %q: want success with result %s", i, r, want)
		}
	}
	if f := strings.Fields(row(out, "total")); len(f) < 2 || f[1] != "upstream_failed" {
		t.Errorf("total row %q: want upstream_failed", row(out, "total"))
	}
	if !strings.Contains(row(out, "shout"), "[3 success]") || !strings.Contains(row(out, "shout[2]"), "region=apac index=2") {
		t.Errorf("the mapped Bash task's rows:\n%s", out)
	}
	// Bounded: the failed instance first, then as many as fit, and a line
	// saying how many were left out.
	if code := c.run("runs", "show", "mapped", "latest", "--max-instances", "2"); code != 0 {
		t.Fatalf("runs show --max-instances 2: exit %d: %s", code, &c.stderr)
	}
	out = c.stdout.String()
	if row(out, "resize[3]") == "" || row(out, "resize[0]") == "" || row(out, "resize[1]") != "" ||
		!strings.Contains(out, "3 more instances of resize not shown") {
		t.Errorf("runs show --max-instances 2: want resize[0] and resize[3] and 3 left out:\n%s", out)
	}

	// logs of one instance.
	if code := c.run("logs", "mapped", "latest", "resize", "--map-index", "3"); code != 0 || !strings.Contains(c.stdout.String(), "resizing d at index 3") {
		t.Errorf("logs --map-index 3: exit %d: %s%s", code, &c.stdout, &c.stderr)
	}
	if code := c.run("logs", "mapped", "latest", "resize[1]"); code != 0 || !strings.Contains(c.stdout.String(), "resizing b at index 1") ||
		strings.Contains(c.stdout.String(), "resizing d") {
		t.Errorf("logs resize[1]: exit %d: %s%s", code, &c.stdout, &c.stderr)
	}

	// Clear resize[3] (and the reduce), fix the element, run again: only
	// resize[3] runs again.
	m.fail("")
	before := map[string]int{}
	for _, it := range []string{"a", "b", "c", "d", "e"} {
		before[it] = m.tries(it)
	}
	if code := c.run("tasks", "clear", "mapped", "latest", "--task", "resize", "--map-index", "3", "--downstream"); code != 0 ||
		!strings.Contains(c.stdout.String(), "Cleared 2 task(s)") || !strings.Contains(c.stdout.String(), "[resize[3] total]") {
		t.Fatalf("tasks clear --map-index 3: exit %d: %s%s", code, &c.stdout, &c.stderr)
	}
	if code := c.run("runs", "show", "mapped", "latest"); code != 0 ||
		!strings.Contains(row(c.stdout.String(), "resize"), "[1 none, 4 success]") || !strings.Contains(row(c.stdout.String(), "resize[0]"), "success") {
		t.Errorf("after the clear: exit %d, want resize[3] alone back to none:\n%s", code, &c.stdout)
	}
	if code := c.run("serve", "--until-idle", "--listen", ""); code != 0 {
		t.Fatalf("serve: exit %d: %s", code, &c.stderr)
	}
	for _, it := range []string{"a", "b", "c", "d", "e"} {
		want := before[it]
		if it == "d" {
			want++
		}
		if got := m.tries(it); got != want {
			t.Errorf("element %s ran %d times in all, want %d (only resize[3] runs again)", it, got, want)
		}
	}
	if code := c.run("runs", "show", "mapped", "latest"); code != 0 || !strings.Contains(c.stdout.String(), "of mapped: success") ||
		!strings.Contains(row(c.stdout.String(), "resize"), "[5 success]") || !strings.Contains(row(c.stdout.String(), "total"), `"ABCDE"`) ||
		!strings.Contains(row(c.stdout.String(), "resize[3]"), "2/2") {
		t.Errorf("after the rerun: exit %d\n%s", code, &c.stdout)
	}
	if code := c.run("logs", "mapped", "latest", "resize", "--map-index", "3", "--try", "1"); code != 0 || !strings.Contains(c.stdout.String(), "resizing d") {
		t.Errorf("logs of the first try of resize[3]: exit %d: %s%s", code, &c.stdout, &c.stderr)
	}
}

// TestMappedUsageErrors: --map-index on a task that is not mapped, an index
// out of range of an existing run, a mapped task without an index: exit 2
// with one line naming the flag, and nothing written.
func TestMappedUsageErrors(t *testing.T) {
	t.Parallel()
	m := newMappedDAG(3)
	c := &cli{t: t, db: filepath.Join(t.TempDir(), "t.db"), dags: []*dag.DAG{m.d}}
	if code := c.run("dags", "test", "mapped", "--logical-date", "2024-03-05"); code != 0 {
		t.Fatalf("dags test: exit %d\n%s%s", code, &c.stdout, &c.stderr)
	}
	fp := c.fingerprint()
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"logs", "mapped", "latest", "list", "--map-index", "0"}, `--map-index 0: task "list" of dag "mapped" is not mapped`},
		{[]string{"logs", "mapped", "latest", "resize", "--map-index", "7"}, `--map-index 7 is out of range: task "resize" of run "manual__2024-03-05T00:00:00+00:00" has map indexes 0-2`},
		{[]string{"logs", "mapped", "latest", "resize"}, `task "resize" is mapped: pass --map-index N`},
		{[]string{"logs", "mapped", "latest", "resize[1]", "--map-index", "2"}, `--map-index 2: the task argument "resize[1]" names map index 1`},
		{[]string{"logs", "mapped", "latest", "resize", "--map-index", "-1"}, `-map-index: want a map index, 0 or more`},
		{[]string{"tasks", "clear", "mapped", "latest", "--task", "resize", "--map-index", "3"}, `--map-index 3 is out of range`},
		{[]string{"tasks", "clear", "mapped", "latest", "--task", "list", "--map-index", "0"}, `--map-index 0: task "list" of dag "mapped" is not mapped`},
		{[]string{"tasks", "clear", "mapped", "latest", "--map-index", "0"}, `--map-index needs exactly one --task`},
		{[]string{"tasks", "test", "mapped", "list", "--map-index", "0"}, `task "list" of dag "mapped" is not mapped`},
		{[]string{"tasks", "test", "mapped", "resize"}, `task "resize" is mapped: pass --map-index N`},
		{[]string{"tasks", "test", "mapped", "resize", "--map-index", "1"}, `mapped over the result of "list", which only a run has: pass --run`},
		{[]string{"tasks", "test", "mapped", "resize", "--map-index", "5", "--run", "latest"}, `--map-index 5 is out of range: the list task "resize" is mapped over has 3 element(s)`},
		{[]string{"tasks", "test", "mapped", "shout", "--map-index", "3"}, `--map-index 3 is out of range: the list task "shout" is mapped over has 3 element(s)`},
		{[]string{"tasks", "test", "mapped", "resize", "--item", "{"}, `--item: malformed JSON`},
		{[]string{"render", "mapped", "list", "--map-index", "0", "--kubeconfig", "/nonexistent"}, `--map-index 0: task "list" of dag "mapped" is not mapped`},
		{[]string{"render", "mapped", "shout", "--map-index", "4", "--kubeconfig", "/nonexistent"}, `--map-index 4 is out of range`},
		{[]string{"render", "mapped", "--map-index", "0", "--kubeconfig", "/nonexistent"}, `--map-index and --item need a task`},
		{[]string{"serve", "--until-idle", "--max-map-length", "0"}, `--max-map-length 0: must be positive`},
	}
	for _, tc := range cases {
		if code := c.run(tc.args...); code != runner.ExitUsage || !strings.Contains(c.stderr.String(), tc.want) ||
			strings.Count(strings.TrimSpace(c.stderr.String()), "\n") != 0 {
			t.Errorf("%v: exit %d, want 2 and one line with %q:\n%s", tc.args, code, tc.want, &c.stderr)
		}
	}
	if c.fingerprint() != fp {
		t.Errorf("a usage error changed the database")
	}
}

// TestMappedTasksTest: tasks test --map-index runs one instance locally with
// element N of its list: from --run for a list that is an upstream's result,
// from the literal list, or from --item.
func TestMappedTasksTest(t *testing.T) {
	t.Parallel()
	m := newMappedDAG(3)
	c := &cli{t: t, db: filepath.Join(t.TempDir(), "t.db"), dags: []*dag.DAG{m.d}}
	if code := c.run("dags", "test", "mapped", "--logical-date", "2024-03-05"); code != 0 {
		t.Fatalf("dags test: exit %d\n%s%s", code, &c.stdout, &c.stderr)
	}
	before := m.tries("b")
	if code := c.run("tasks", "test", "mapped", "resize", "--map-index", "1", "--run", "latest"); code != 0 ||
		!strings.Contains(c.stdout.String(), "resizing b at index 1") || !strings.Contains(c.stdout.String(), `task resize[1] succeeded`) ||
		!strings.Contains(c.stdout.String(), `result: "B"`) {
		t.Errorf("tasks test --map-index 1 --run latest: exit %d: %s%s", code, &c.stdout, &c.stderr)
	}
	if m.tries("b") != before+1 {
		t.Errorf("element b ran %d times, want %d", m.tries("b"), before+1)
	}
	if code := c.run("tasks", "test", "mapped", "resize", "--item", `"zed"`, "--map-index", "4"); code != 0 ||
		!strings.Contains(c.stdout.String(), "resizing zed at index 4") || !strings.Contains(c.stdout.String(), `result: "ZED"`) {
		t.Errorf("tasks test --item: exit %d: %s%s", code, &c.stdout, &c.stderr)
	}
	if code := c.run("tasks", "test", "mapped", "resize[2]", "--run", "latest"); code != 0 || !strings.Contains(c.stdout.String(), `result: "C"`) {
		t.Errorf("tasks test resize[2]: exit %d: %s%s", code, &c.stdout, &c.stderr)
	}
}

// TestMappedRender: render --map-index renders a mapped pod task's templates
// with that element and index; without --map-index, the first; a task mapped
// over an upstream's result gets a placeholder element, or --item.
func TestMappedRender(t *testing.T) {
	t.Parallel()
	c := &cli{t: t, db: filepath.Join(t.TempDir(), "t.db"), dags: []*dag.DAG{podsDAG()}}
	if code := c.run("render", "pods", "push", "--map-index", "2", "--kubeconfig", "/nonexistent"); code != 0 ||
		!strings.Contains(c.stdout.String(), "--region=apac") || !strings.Contains(c.stdout.String(), "--index=2") {
		t.Errorf("render push --map-index 2: exit %d: %s%s", code, &c.stdout, &c.stderr)
	}
	if code := c.run("render", "pods", "push", "--kubeconfig", "/nonexistent"); code != 0 || !strings.Contains(c.stdout.String(), "--region=eu") {
		t.Errorf("render push: exit %d: %s%s", code, &c.stdout, &c.stderr)
	}
	if code := c.run("render", "pods", "push", "--item", `"mars"`, "--map-index", "7", "--kubeconfig", "/nonexistent"); code != 0 ||
		!strings.Contains(c.stdout.String(), "--region=mars") || !strings.Contains(c.stdout.String(), "--index=7") {
		t.Errorf("render push --item: exit %d: %s%s", code, &c.stdout, &c.stderr)
	}
	if code := c.run("render", "pods", "upload", "--map-index", "1", "--kubeconfig", "/nonexistent"); code != 0 ||
		!strings.Contains(c.stdout.String(), "--file=<element 1 of the result of list>") {
		t.Errorf("render upload --map-index 1: exit %d: %s%s", code, &c.stdout, &c.stderr)
	}
	if code := c.run("render", "pods", "upload", "--item", `"in/b.csv"`, "--kubeconfig", "/nonexistent"); code != 0 ||
		!strings.Contains(c.stdout.String(), "--file=in/b.csv") {
		t.Errorf("render upload --item: exit %d: %s%s", code, &c.stdout, &c.stderr)
	}
	if code := c.run("render", "pods", "--image", "trellis.local/pods:1", "--kubeconfig", "/nonexistent"); code != 0 ||
		!strings.Contains(c.stderr.String(), "push is mapped: its pod is shown for push[0]") || !strings.Contains(c.stdout.String(), "--region=eu") {
		t.Errorf("render of the whole DAG: exit %d: %s", code, &c.stderr)
	}
}

// TestMappedDagsShow: dags show marks a mapped task and prints what it is
// mapped over.
func TestMappedDagsShow(t *testing.T) {
	t.Parallel()
	m := newMappedDAG(3)
	c := &cli{t: t, db: filepath.Join(t.TempDir(), "t.db"), dags: []*dag.DAG{m.d}}
	if code := c.run("dags", "show", "mapped"); code != 0 {
		t.Fatalf("dags show: exit %d: %s", code, &c.stderr)
	}
	out := c.stdout.String()
	if !strings.Contains(row(out, "resize"), "go (mapped)") || strings.Contains(row(out, "list"), "mapped") {
		t.Errorf("KIND column: resize %q, list %q", row(out, "resize"), row(out, "list"))
	}
	for _, want := range []string{"resize is mapped over the result of list: one instance (resize[0], resize[1], ...) per element, at most 1024",
		"shout is mapped over a literal list of 3 element(s)"} {
		if !strings.Contains(out, want) {
			t.Errorf("dags show lacks %q:\n%s", want, out)
		}
	}
}

// TestMaxMapLength: --max-map-length limits the list a task may be mapped
// over; a longer result fails the task that returned it, and runs show says
// why, naming the limit.
func TestMaxMapLength(t *testing.T) {
	t.Parallel()
	m := newMappedDAG(5)
	c := &cli{t: t, db: filepath.Join(t.TempDir(), "t.db"), dags: []*dag.DAG{m.d}}
	if code := c.run("serve", "--help"); code != 0 || !regexp.MustCompile(`--max-map-length int\n.*\(default 1024\)`).MatchString(c.stdout.String()) {
		t.Errorf("serve --help: the flag with its default:\n%s", &c.stdout)
	}
	if code := c.run("dags", "trigger", "mapped", "--logical-date", "2024-03-05"); code != 0 {
		t.Fatalf("trigger: exit %d: %s", code, &c.stderr)
	}
	if code := c.run("serve", "--until-idle", "--listen", "", "--max-map-length", "4"); code != 0 {
		t.Fatalf("serve: exit %d: %s", code, &c.stderr)
	}
	if code := c.run("runs", "show", "mapped", "latest"); code != 0 {
		t.Fatalf("runs show: exit %d: %s", code, &c.stderr)
	}
	out := c.stdout.String()
	if !strings.Contains(out, "of mapped: failed") || !strings.Contains(row(out, "list"), "exceeds the max map length of 4") ||
		m.tries("a") != 0 {
		t.Errorf("a list of 5 with --max-map-length 4: want list failed and no element run (ran a %d times):\n%s", m.tries("a"), out)
	}
	// The same list within the limit runs.
	if code := c.run("dags", "test", "mapped", "--logical-date", "2024-03-06", "--max-map-length", "5"); code != 0 || m.tries("e") != 1 {
		t.Errorf("dags test --max-map-length 5: exit %d, e ran %d times\n%s", code, m.tries("e"), &c.stdout)
	}
}

// TestMaxMapLengthConfig: runner.Config.MaxMapLength is the default of the
// flag.
func TestMaxMapLengthConfig(t *testing.T) {
	t.Parallel()
	m := newMappedDAG(3)
	var out, errb strings.Builder
	r := runner.New(runner.Config{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }, MaxMapLength: 2}, m.d)
	db := filepath.Join(t.TempDir(), "t.db")
	if code := r.Run(context.Background(), []string{"dags", "test", "mapped", "--db", db}); code != 1 || !strings.Contains(out.String(), "exceeds the max map length of 2") {
		t.Errorf("MaxMapLength 2, a list of 3: exit %d\n%s%s", code, &out, &errb)
	}
}
