// Command benchdag holds the DAGs of the Kubernetes benchmarks (see
// e2e/bench_test.go): 1,000 independent tasks, a chain of 40 tasks, and a
// PodOperator mapped over 1,000 elements.
package main

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/operators"
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
	// The pods of the mapped PodOperator go to the benchmark's fake node,
	// as the worker pods do through the pod template.
	files := make([]string, 1000)
	for i := range files {
		files[i] = fmt.Sprintf("img-%04d.png", i)
	}
	mapped := dag.New("bench_map", dag.MaxActiveTasks(2000), dag.DefaultRetries(0, 0))
	resize := operators.Pod("resize", operators.PodSpec{
		Image:   "trellis.local/busybox:1",
		Command: []string{"sh", "-c", "resize {{ .Item }} (element {{ .MapIndex }})"},
		Pod:     &corev1.Pod{Spec: corev1.PodSpec{NodeName: "trellis-bench-node"}},
	}, task.MapItems(files...))
	mapped.Add(resize)
	runner.New(runner.Config{Parallelism: 2000, Pools: map[string]int{"default_pool": 2000}}, wide, chain, mapped).Main()
}
