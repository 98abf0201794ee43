// Command benchdag holds the DAGs of the Kubernetes benchmarks (see
// e2e/bench_test.go): 1,000 independent tasks, and a chain of 40 tasks.
package main

import (
	"context"
	"fmt"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/runner"
	"github.com/trellisdag/trellis/task"
)

func main() {
	wide := dag.New("bench_wide", dag.MaxActiveTasks(2000), dag.DefaultRetries(0, 0))
	for i := range 1000 {
		wide.Add(task.Go(fmt.Sprintf("t%04d", i), func(context.Context, *task.Run) (int, error) { return 7, nil }))
	}
	chain := dag.New("bench_chain", dag.DefaultRetries(0, 0))
	var prev task.Task
	for i := range 40 {
		t := task.Go(fmt.Sprintf("c%02d", i), func(context.Context, *task.Run) (int, error) { return 7, nil })
		chain.Add(t)
		if prev != nil {
			prev.Then(t)
		}
		prev = t
	}
	runner.New(runner.Config{Parallelism: 2000, Pools: map[string]int{"default_pool": 2000}}, wide, chain).Main()
}
