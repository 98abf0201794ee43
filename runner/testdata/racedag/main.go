// Command racedag is a DAG binary for the runner's two-process tests: while
// its task s1 runs (it waits on a FIFO the test writes), another process
// changes the run.
package main

import (
	"context"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/operators"
	"github.com/trellisdag/trellis/runner"
	"github.com/trellisdag/trellis/task"
)

var slow = dag.New("slow", dag.DefaultRetries(0, 0))

var (
	q1 = task.Go("q1", func(ctx context.Context, r *task.Run) (int, error) { return 1, nil })
	// s1 tells the test it runs through $RACE_DIR/started and waits until the
	// test writes a line to $RACE_DIR/release.
	s1 = operators.Bash("s1", `echo "try {{ .TryNumber }}" > "$RACE_DIR/started"
read line < "$RACE_DIR/release"
echo "s1 released: $line"`)
	done = task.Go("done", func(ctx context.Context, r *task.Run) (string, error) {
		return task.Output(r, s1)
	})
)

func init() {
	slow.Add(q1, s1, done)
	task.Chain(q1, s1, done)
}

func main() { runner.Main(slow) }
