// Command crashdag is a DAG binary for the runner's process-level tests: a chain
// whose middle task blocks on its first try until the test kills the runner.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/operators"
	"github.com/trellisdag/trellis/runner"
	"github.com/trellisdag/trellis/task"
)

var crash = dag.New("crash", dag.DefaultRetries(1, 0),
	dag.Params(dag.Param{Name: "n", Default: 1.0}))

var (
	// first appends a line to $CRASH_DIR/first each time it runs.
	first = task.Go("first", func(ctx context.Context, r *task.Run) (string, error) {
		f, err := os.OpenFile(os.Getenv("CRASH_DIR")+"/first", os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return "", err
		}
		defer f.Close()
		fmt.Fprintln(f, "ran")
		return "hello", nil
	})
	// block tells the test its pid through a FIFO on the first try, then waits.
	block = operators.Bash("block", `if [ "$TRELLIS_TRY_NUMBER" = 1 ]; then echo $$ > "$CRASH_DIR/fifo"; exec sleep 300; fi; echo "try {{ .TryNumber }} ok"`)
	last  = task.Go("last", func(ctx context.Context, r *task.Run) (string, error) {
		a, err := task.Output(r, block)
		return "after " + a, err
	})
)

func init() {
	crash.Add(first, block, last)
	task.Chain(first, block, last)
}

func main() { runner.Main(crash) }
