package runner_test

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/runner"
	"github.com/trellisdag/trellis/task"
)

// TestHelpListsFlags: every command's --help prints its flags (with defaults),
// groups list their commands, and neither help nor version needs valid DAGs.
func TestHelpListsFlags(t *testing.T) {
	t.Parallel()
	invalid := dag.New("broken")
	a := task.Go("a", func(context.Context, *task.Run) (int, error) { return 1, nil })
	b := task.Go("b", func(context.Context, *task.Run) (int, error) { return 1, nil })
	invalid.Add(a, b)
	a.Then(b)
	b.Then(a) // a cycle: every other command refuses to run
	for _, tc := range []struct {
		args []string
		dags []*dag.DAG
		code int
		want []string
	}{
		{[]string{"serve", "--help"}, testDAGs(), 0, []string{"usage: ", "serve", "--listen string", `(default "127.0.0.1:8080")`,
			"--tokens string", "--executor string", "--image string", "--leader-elect", "--parallelism int", "(default 32)", "--db string"}},
		{[]string{"render", "-h"}, testDAGs(), 0, []string{"--image string", "--logical-date string", "-o string"}},
		{[]string{"dags", "show", "--help"}, testDAGs(), 0, []string{"--json"}},
		{[]string{"tasks", "test", "--help"}, testDAGs(), 0, []string{"--run string"}},
		{[]string{"manifests", "--help"}, testDAGs(), 0, []string{"--storage-size string", `(default "5Gi")`, "--storage-class string", "--dockerfile"}},
		{[]string{"dags", "--help"}, testDAGs(), 0, []string{"dags list", "dags backfill", "dags unpause", "--help lists a command's flags"}},
		{[]string{"help", "dags"}, testDAGs(), 0, []string{"dags list", "dags trigger"}},
		{[]string{"help", "tasks", "clear"}, testDAGs(), 0, []string{"usage: ", "tasks clear <dag> <run|latest>", "--downstream", "--failed-only"}},
		{[]string{"dags"}, testDAGs(), runner.ExitUsage, []string{"dags list"}},
		{[]string{"serve", "--help"}, []*dag.DAG{invalid}, 0, []string{"--listen string"}},
		{[]string{"version"}, []*dag.DAG{invalid}, 0, []string{"trellis "}},
		{[]string{"dags", "list"}, []*dag.DAG{invalid}, runner.ExitUsage, nil},
	} {
		t.Run(strings.Join(tc.args, "_"), func(t *testing.T) {
			var out, errb bytes.Buffer
			r := runner.New(runner.Config{Stdout: &out, Stderr: &errb, DB: t.TempDir() + "/t.db",
				Getenv: func(string) string { return "" }}, tc.dags...)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if code := r.Run(ctx, tc.args); code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, &out, &errb)
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, &out)
				}
			}
		})
	}
}

// TestREADMECommandTable: every command the binary has is in the README's
// command table, so the table stays complete.
func TestREADMECommandTable(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	c := setup(t)
	c.run("help")
	_, list, _ := strings.Cut(c.stdout.String()+c.stderr.String(), "commands:\n")
	list, _, _ = strings.Cut(list, "\n\n")
	n := 0
	for _, line := range strings.Split(list, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		name := f[0]
		if len(f) > 1 && (name == "dags" || name == "tasks" || name == "pools" || name == "assets" || name == "runs" || name == "db") {
			name += " " + f[1]
		}
		n++
		if !strings.Contains(string(readme), "| `"+name) && !strings.Contains(string(readme), " / `"+name) {
			t.Errorf("command %q is not in the README's command table", name)
		}
	}
	if n < 20 {
		t.Fatalf("read %d commands from help:\n%s", n, list)
	}
}
