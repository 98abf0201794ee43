package runner_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/operators"
	"github.com/trellisdag/trellis/runner"
	"github.com/trellisdag/trellis/task"
)

func testDAGs() []*dag.DAG {
	d := dag.New("etl", dag.DefaultRetries(0, 0), dag.Params(
		dag.Param{Name: "limit", Default: 10, Description: "rows"},
		dag.Param{Name: "mode", Default: "fast"},
	))
	extract := task.Go("extract", func(ctx context.Context, r *task.Run) ([]int, error) { return []int{1, 2, 3}, nil })
	count := task.Go("count", func(ctx context.Context, r *task.Run) (int, error) {
		rows, err := task.Output(r, extract)
		return len(rows), err
	})
	say := operators.Bash("say", `echo "{{ .DS }} limit={{ .Params.limit }}"`)
	d.Add(extract, count, say)
	extract.Then(count).Then(say)

	bad := dag.New("broken", dag.DefaultRetries(0, 0))
	boom := task.Go("boom", func(ctx context.Context, r *task.Run) (int, error) { return 0, errors.New("kaput") })
	after := task.Go("after", func(ctx context.Context, r *task.Run) (int, error) { return 1, nil })
	bad.Add(boom, after)
	boom.Then(after)
	return []*dag.DAG{d, bad}
}

type cli struct {
	t      *testing.T
	db     string
	dags   []*dag.DAG
	stdout bytes.Buffer
	stderr bytes.Buffer
}

func setup(t *testing.T) *cli {
	t.Helper()
	return &cli{t: t, db: filepath.Join(t.TempDir(), "trellis.db"), dags: testDAGs()}
}

func (c *cli) run(args ...string) int {
	c.t.Helper()
	c.stdout.Reset()
	c.stderr.Reset()
	r := runner.New(runner.Config{Stdout: &c.stdout, Stderr: &c.stderr, Getenv: func(string) string { return "" }}, c.dags...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return r.Run(ctx, append(args, "--db", c.db))
}

// fingerprint is the database file's content hash ("" when it does not exist).
func (c *cli) fingerprint() string {
	b, err := os.ReadFile(c.db)
	if errors.Is(err, os.ErrNotExist) {
		return ""
	}
	if err != nil {
		c.t.Fatal(err)
	}
	wal, _ := os.ReadFile(c.db + "-wal")
	h := sha256.Sum256(append(b, wal...))
	return string(h[:])
}

func TestDagsTestRunsAndSummarizes(t *testing.T) {
	t.Parallel()
	c := setup(t)
	if code := c.run("dags", "test", "etl", "--logical-date", "2024-03-05", "--conf", `{"limit": 3}`); code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, &c.stdout, &c.stderr)
	}
	out := c.stdout.String()
	for _, want := range []string{"▶ extract", "✓ count", "✓ say", "run manual__2024-03-05T00:00:00+00:00 success",
		"TASK", `"2024-03-05 limit=3"`} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// Results and logs survive the process: read them back through the CLI.
	if code := c.run("logs", "etl", "manual__2024-03-05T00:00:00+00:00", "say"); code != 0 || !strings.Contains(c.stdout.String(), "2024-03-05 limit=3") {
		t.Errorf("logs: exit %d: %s %s", code, &c.stdout, &c.stderr)
	}
	if code := c.run("runs", "show", "etl", "manual__2024-03-05T00:00:00+00:00"); code != 0 || !strings.Contains(c.stdout.String(), "[1,2,3]") {
		t.Errorf("runs show: exit %d: %s %s", code, &c.stdout, &c.stderr)
	}
}

func TestDagsTestFailedRunExits1(t *testing.T) {
	t.Parallel()
	c := setup(t)
	code := c.run("dags", "test", "broken")
	if code != runner.ExitFailure {
		t.Fatalf("exit %d, want 1", code)
	}
	if out := c.stdout.String(); !strings.Contains(out, "✗ boom") || !strings.Contains(out, "kaput") || !strings.Contains(out, "upstream_failed") {
		t.Errorf("output:\n%s", out)
	}
	if !strings.Contains(c.stderr.String(), "run failed") {
		t.Errorf("stderr: %s", &c.stderr)
	}
}

func TestBadInputExits2AndWritesNothing(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unknown command", []string{"dags", "frobnicate"}, `unknown command "dags frobnicate"`},
		{"unknown dag", []string{"dags", "test", "nope"}, `unknown dag "nope" (this binary has: broken, etl)`},
		{"unknown dag trigger", []string{"dags", "trigger", "nope"}, `unknown dag "nope"`},
		{"malformed conf", []string{"dags", "trigger", "etl", "--conf", `{"limit": `}, "--conf: malformed JSON"},
		{"conf not an object", []string{"dags", "test", "etl", "--conf", `[1, 2]`}, "--conf: malformed JSON"},
		{"undeclared conf key", []string{"dags", "trigger", "etl", "--conf", `{"limti": 3}`}, `param "limti" is not declared (declared params: limit, mode; did you mean "limit"?)`},
		{"conf wrong type", []string{"dags", "test", "etl", "--conf", `{"limit": "ten"}`}, `param "limit" must be an integer, got a string`},
		{"bad logical date", []string{"dags", "test", "etl", "--logical-date", "yesterday"}, `--logical-date "yesterday": not a date`},
		{"bad manifests executor", []string{"manifests", "--image", "x:1", "--executor", "ecs"}, `manifests: --executor "ecs": want kubernetes or local`},
		{"serve bad executor", []string{"serve", "--until-idle", "--executor", "ecs"}, `--executor "ecs": want local or kubernetes`},
		{"bad kube qps", []string{"dags", "test", "etl", "--kube-qps", "fast"}, `--kube-qps "fast": want a positive number`},
		{"bad kube burst", []string{"dags", "trigger", "etl", "--executor", "kubernetes", "--kube-burst", "-1"}, `--kube-burst "-1": want a positive whole number`},
		{"unknown task", []string{"tasks", "test", "etl", "nope"}, `dag "etl" has no task "nope"`},
		{"unknown run", []string{"runs", "show", "etl", "nope"}, `dag "etl" has no run "nope"`},
		{"unknown run logs", []string{"logs", "etl", "nope", "extract"}, `dag "etl" has no run "nope"`},
		{"unknown run clear", []string{"tasks", "clear", "etl", "nope"}, `dag "etl" has no run "nope"`},
		{"unknown task clear", []string{"tasks", "clear", "etl", "manual__2024-01-01T00:00:00+00:00", "--task", "nope"}, `dag "etl" has no task "nope"`},
		{"unknown task logs", []string{"logs", "etl", "manual__2024-01-01T00:00:00+00:00", "nope"}, `dag "etl" has no task "nope"`},
		{"missing argument", []string{"runs", "show", "etl"}, "runs show: missing <run>"},
		{"huge next count", []string{"dags", "next", "etl", "--count", "100000000"}, "dags next: --count 100000000: want 1 to 10000"},
		{"extra argument", []string{"dags", "list", "x"}, `dags list: unexpected argument "x"`},
		{"unknown flag", []string{"dags", "test", "etl", "--frob"}, "flag provided but not defined: -frob"},
		{"bad try", []string{"logs", "etl", "manual__2024-01-01T00:00:00+00:00", "extract", "--try", "9"}, "--try 9 does not exist"},
		{"duplicate run", []string{"dags", "test", "etl", "--logical-date", "2024-01-01"}, "a run at logical date 2024-01-01T00:00:00Z exists already"},
	}
	for _, withDB := range []bool{false, true} {
		for _, tc := range cases {
			name := tc.name
			if withDB {
				name += "/existing db"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				c := setup(t)
				if withDB {
					if code := c.run("dags", "test", "etl", "--logical-date", "2024-01-01"); code != 0 {
						t.Fatalf("seed run: exit %d: %s", code, &c.stderr)
					}
				} else if strings.Contains(tc.name, "try") || strings.Contains(tc.name, "duplicate") {
					t.Skip("needs an existing run")
				}
				before := c.fingerprint()
				code := c.run(tc.args...)
				if code != runner.ExitUsage {
					t.Fatalf("exit %d, want 2; stderr: %s", code, &c.stderr)
				}
				msg := c.stderr.String()
				if !strings.Contains(msg, tc.want) {
					t.Errorf("stderr = %q, want it to contain %q", msg, tc.want)
				}
				if n := strings.Count(strings.TrimSpace(msg), "\n"); n != 0 {
					t.Errorf("error is %d lines, want one: %q", n+1, msg)
				}
				if after := c.fingerprint(); after != before {
					if before == "" {
						t.Errorf("a database file was created")
					} else {
						t.Errorf("the database changed")
					}
				}
			})
		}
	}
}

func TestInvalidDAGListsEveryProblem(t *testing.T) {
	t.Parallel()
	d := dag.New("bad dag", dag.Schedule("61 * * * *"))
	a := task.Go("a", func(ctx context.Context, r *task.Run) (int, error) { return 0, nil }, task.Retries(-1))
	b := task.Go("a", func(ctx context.Context, r *task.Run) (int, error) { return 0, nil })
	d.Add(a, b)
	a.Then(b)
	b.Then(a)
	var stdout, stderr bytes.Buffer
	db := filepath.Join(t.TempDir(), "x.db")
	code := runner.New(runner.Config{Stdout: &stdout, Stderr: &stderr}, d).Run(context.Background(), []string{"dags", "list", "--db", db})
	if code != runner.ExitUsage {
		t.Fatalf("exit %d, want 2", code)
	}
	msg := stderr.String()
	for _, want := range []string{`dag "bad dag": dag id:`, `schedule "61 * * * *"`, `task "a": duplicate task id`, `retries -1 is negative`, "cycle: a -> a -> a"} {
		if !strings.Contains(msg, want) {
			t.Errorf("stderr lacks %q:\n%s", want, msg)
		}
	}
	if _, err := os.Stat(db); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("database created for an invalid DAG")
	}
}

func TestClearReruns(t *testing.T) {
	t.Parallel()
	c := setup(t)
	if code := c.run("dags", "test", "broken", "--logical-date", "2024-01-01"); code != 1 {
		t.Fatalf("exit %d", code)
	}
	run := "manual__2024-01-01T00:00:00+00:00"
	if code := c.run("tasks", "clear", "broken", run, "--task", "boom", "--downstream", "--failed-only"); code != 0 {
		t.Fatalf("clear: exit %d: %s", code, &c.stderr)
	}
	if out := c.stdout.String(); !strings.Contains(out, "Cleared 2 task(s)") {
		t.Errorf("clear output: %s", out)
	}
	if code := c.run("runs", "list", "broken", "--state", "queued"); code != 0 || !strings.Contains(c.stdout.String(), run) {
		t.Errorf("cleared run not queued: %s", &c.stdout)
	}
	// serve --until-idle runs the cleared tasks again; boom fails again.
	if code := c.run("serve", "--until-idle"); code != 0 {
		t.Fatalf("serve: exit %d: %s", code, &c.stderr)
	}
	if code := c.run("runs", "show", "broken", run); code != 0 || !regexp.MustCompile(`boom +failed +2/2`).MatchString(c.stdout.String()) {
		t.Errorf("after rerun:\n%s", &c.stdout)
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
