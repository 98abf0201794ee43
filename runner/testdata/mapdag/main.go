// Command mapdag is a DAG binary for the runner's mapping crash test: src
// returns six elements; each, mapped over them one instance at a time
// (MaxActivePerRun 1, so an instance starts only once the one before it is
// committed), logs every start to $MAP_DIR/starts; element 3, on its first
// try, tells the test through the FIFO $MAP_DIR/fifo and then blocks, so the
// test can kill the runner with instances 0-2 committed and 3 in flight.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/runner"
	"github.com/trellisdag/trellis/task"
)

var (
	src = task.Go("src", func(context.Context, *task.Run) ([]int, error) { return []int{0, 1, 2, 3, 4, 5}, nil })

	each = task.Map("each", src, func(ctx context.Context, r *task.Run, x int) (int, error) {
		dir := os.Getenv("MAP_DIR")
		f, err := os.OpenFile(dir+"/starts", os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			return 0, err
		}
		fmt.Fprintf(f, "index %d try %d\n", r.MapIndex(), r.Info().Try)
		f.Close()
		if x == 3 && r.Info().Try == 1 {
			if err := os.WriteFile(dir+"/fifo", []byte("blocked\n"), 0o600); err != nil {
				return 0, err
			}
			<-ctx.Done()
			return 0, ctx.Err()
		}
		return x * x, nil
	}, task.MaxActivePerRun(1))

	sum = task.Go("sum", func(_ context.Context, r *task.Run) (int, error) {
		xs, err := task.Output(r, each)
		n := 0
		for _, x := range xs {
			n += x
		}
		return n, err
	})
)

func main() {
	each.Then(sum)
	runner.Main(dag.New("map", dag.DefaultRetries(0, 0)).Add(src, each, sum))
}
