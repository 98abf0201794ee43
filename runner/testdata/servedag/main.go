// Command servedag is a DAG binary for the runner's lock test: two `serve`
// processes on one database, of which only one schedules.
package main

import (
	"context"
	"fmt"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/runner"
	"github.com/trellisdag/trellis/task"
)

var lock = dag.New("lock", dag.DefaultRetries(0, 0))

var (
	hello = task.Go("hello", func(ctx context.Context, r *task.Run) (string, error) {
		fmt.Fprintln(r.Output(), "hello from the active scheduler")
		return "hi", nil
	})
	bye = task.Go("bye", func(ctx context.Context, r *task.Run) (string, error) {
		s, err := task.Output(r, hello)
		return s + ", bye", err
	})
)

func init() {
	lock.Add(hello, bye)
	hello.Then(bye)
}

func main() { runner.Main(lock) }
