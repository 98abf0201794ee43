// Command isodag is a DAG binary for the runner's isolation test: Go tasks
// that run in a child process each (task.Isolated) and crash it in the ways an
// in-process task would take the whole runner down.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/runner"
	"github.com/trellisdag/trellis/task"
)

// Count is a typed result that crosses the process boundary.
type Count struct {
	N int `json:"n"`
}

var iso = dag.New("iso", dag.DefaultRetries(0, 0))

var (
	ok = task.Go("ok", func(ctx context.Context, r *task.Run) (Count, error) {
		fmt.Fprintf(r.Output(), "counting in pid %d\n", os.Getpid())
		return Count{N: 3}, nil
	}, task.Isolated())
	after = task.Go("after", func(ctx context.Context, r *task.Run) (string, error) {
		c, err := task.Output(r, ok)
		return fmt.Sprintf("got %d in pid %d", c.N, os.Getpid()), err
	})
	// panics in a goroutine of its own: no recover can catch it.
	panics = task.Go("panics", func(ctx context.Context, r *task.Run) (int, error) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			var m map[string]int
			m["boom"] = 1 // assignment to entry in nil map
		}()
		<-done
		return 0, nil
	}, task.Isolated())
	exits = task.Go("exits", func(ctx context.Context, r *task.Run) (int, error) {
		fmt.Fprintln(os.Stderr, "giving up")
		os.Exit(3)
		return 0, nil
	}, task.Isolated())
	// hangs ignores its context; its timeout must kill it.
	hangs = task.Go("hangs", func(ctx context.Context, r *task.Run) (int, error) {
		time.Sleep(time.Hour)
		return 0, nil
	}, task.Isolated(), task.Timeout(time.Second))
)

// isoAll isolates every Go task (dag.Isolated): one crashes its child.
var isoAll = dag.New("iso_all", dag.DefaultRetries(0, 0), dag.Isolated())

var (
	crashes = task.Go("crashes", func(ctx context.Context, r *task.Run) (int, error) {
		go func() { panic("a goroutine gave up") }()
		time.Sleep(time.Hour)
		return 0, nil
	})
	calm = task.Go("calm", func(ctx context.Context, r *task.Run) (int, error) { return os.Getpid(), nil })
)

// crashy runs its task in the runner's process: its first try crashes the
// whole runner, for the crash-report test.
var crashy = dag.New("crashy", dag.DefaultRetries(0, 0))

var dies = task.Go("dies", func(ctx context.Context, r *task.Run) (int, error) {
	if r.Info().Try == 1 {
		go func() { panic("the runner's own process gave up") }()
		time.Sleep(time.Hour)
	}
	return r.Info().Try, nil
})

func init() {
	iso.Add(ok, after, panics, exits, hangs)
	ok.Then(after)
	isoAll.Add(crashes, calm)
	crashy.Add(dies)
}

func main() { runner.Main(iso, isoAll, crashy) }
