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
	// block, on its first try, starts a subshell that appends "tick 1" to
	// $CRASH_DIR/ticks every 50 ms (a process that outlives the shell when the
	// runner dies), tells the test its pid through a FIFO and waits; a later
	// try appends "start N", runs 300 ms and succeeds.
	block = operators.Bash("block", `if [ "$TRELLIS_TRY_NUMBER" = 1 ]; then
  ( while :; do echo "tick 1" >> "$CRASH_DIR/ticks"; sleep 0.05; done ) &
  echo $$ > "$CRASH_DIR/fifo"
  wait
fi
echo "start {{ .TryNumber }}" >> "$CRASH_DIR/ticks"
sleep 0.3
echo "try {{ .TryNumber }} ok"`)
	last = task.Go("last", func(ctx context.Context, r *task.Run) (string, error) {
		a, err := task.Output(r, block)
		return "after " + a, err
	})
)

func init() {
	crash.Add(first, block, last)
	task.Chain(first, block, last)
}

func main() { runner.Main(crash) }
