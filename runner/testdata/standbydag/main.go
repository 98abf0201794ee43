// Command standbydag is a DAG binary for the runner's hot standby test: two
// `serve` processes on one PostgreSQL database, the active one killed while
// a run has tasks succeeded and tasks in flight.
//
// a and b append their name to $STANDBY_DIR/ran each time they run and return
// the pid of the process that ran them. slow1 (after a) and slow2 (after b),
// on their first try, tell the test they run by writing a line to the FIFO
// $STANDBY_DIR/<task>.fifo and then wait until their runner dies; a later try
// returns at once. join reads all four results and writes them to
// $STANDBY_DIR/join.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/runner"
	"github.com/trellisdag/trellis/task"
)

var standby = dag.New("standby", dag.DefaultRetries(0, 0))

// dir is the test's directory.
func dir() string { return os.Getenv("STANDBY_DIR") }

// ran records that a task ran and returns where it ran.
func ran(name string) (string, error) {
	f, err := os.OpenFile(filepath.Join(dir(), "ran"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, err := fmt.Fprintln(f, name); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s@%d", name, os.Getpid()), nil
}

// hold is a task that waits for its runner's death on its first try.
func hold(name string) *task.GoTask[string] {
	return task.Go(name, func(ctx context.Context, r *task.Run) (string, error) {
		if r.Info().Try > 1 {
			return fmt.Sprintf("%s@try%d", name, r.Info().Try), nil
		}
		f, err := os.OpenFile(filepath.Join(dir(), name+".fifo"), os.O_WRONLY, 0)
		if err != nil {
			return "", err
		}
		fmt.Fprintln(f, "running")
		f.Close()
		<-ctx.Done() // the test kills the runner
		return "", ctx.Err()
	})
}

var (
	a     = task.Go("a", func(context.Context, *task.Run) (string, error) { return ran("a") })
	b     = task.Go("b", func(context.Context, *task.Run) (string, error) { return ran("b") })
	slow1 = hold("slow1")
	slow2 = hold("slow2")
	join  = task.Go("join", func(ctx context.Context, r *task.Run) (string, error) {
		var parts []string
		for _, up := range []*task.GoTask[string]{a, b, slow1, slow2} {
			s, err := task.Output(r, up)
			if err != nil {
				return "", err
			}
			parts = append(parts, s)
		}
		out := strings.Join(parts, " ")
		return out, os.WriteFile(filepath.Join(dir(), "join"), []byte(out), 0o644)
	})
)

func init() {
	standby.Add(a, b, slow1, slow2, join)
	a.Then(slow1)
	b.Then(slow2)
	task.Chain(a, join)
	task.Chain(b, join)
	slow1.Then(join)
	slow2.Then(join)
}

func main() { runner.Main(standby) }
