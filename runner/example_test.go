package runner_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/runner"
	"github.com/trellisdag/trellis/task"
)

// A team's binary is its DAGs plus runner.Main; Run is the same command line
// without os.Exit, for tests and tools.
func ExampleRunner_Run() {
	hello := dag.New("hello", dag.Description("says hello"), dag.DefaultRetries(1, 0))
	greet := task.Go("greet", func(ctx context.Context, r *task.Run) (string, error) { return "hello", nil })
	shout := task.Go("shout", func(ctx context.Context, r *task.Run) (string, error) {
		s, err := task.Output(r, greet)
		return s + "!", err
	})
	hello.Add(greet, shout)
	greet.Then(shout)

	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	r := runner.New(runner.Config{Stdout: os.Stdout, Stderr: os.Stdout}, hello)
	code := r.Run(context.Background(), []string{"dags", "show", "hello", "--db", filepath.Join(dir, "t.db")})
	fmt.Println("exit", code)
	code = r.Run(context.Background(), []string{"dags", "test", "nope", "--db", filepath.Join(dir, "t.db")})
	fmt.Println("exit", code)
	// Output:
	// DAG hello: says hello
	//   version:    72bfb4f4cb51
	//   schedule:   (manual runs only) (timezone UTC, catchup true)
	//   limits:     16 active runs, 16 active tasks
	//
	// TASK   KIND  TRIGGER RULE  RETRIES  RETRY DELAY  TIMEOUT  PRIORITY  POOL          EXECUTOR  PAST  DOWNSTREAM
	// greet  go    all_success   1        0s           -        1         default_pool  default   -     shout
	// shout  go    all_success   1        0s           -        1         default_pool  default   -     -
	// exit 0
	// error: unknown dag "nope" (this binary has: hello)
	// exit 2
}
