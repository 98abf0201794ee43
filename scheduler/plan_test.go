package scheduler

import (
	"context"
	"testing"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/task"
)

// TestWeightRules: effective priority weights by Airflow's weight rules, on
// the chain a -> b -> c with weights 1, 10 and 100.
func TestWeightRules(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		rule    task.WeightRule
		a, b, c int
	}{
		{task.WeightDownstream, 111, 110, 100},
		{task.WeightUpstream, 1, 11, 111},
		{task.WeightAbsolute, 1, 10, 100},
	} {
		noop := func(context.Context, *task.Run) (int, error) { return 0, nil }
		d := dag.New("w")
		a := task.Go("a", noop, task.Priority(1), task.Weight(tc.rule))
		b := task.Go("b", noop, task.Priority(10), task.Weight(tc.rule))
		c := task.Go("c", noop, task.Priority(100), task.Weight(tc.rule))
		d.Add(a, b, c)
		task.Chain(a, b, c)
		if err := d.Validate(); err != nil {
			t.Fatal(err)
		}
		p := compile(d)
		if got := [3]int{p.weight[p.index["a"]], p.weight[p.index["b"]], p.weight[p.index["c"]]}; got != [3]int{tc.a, tc.b, tc.c} {
			t.Errorf("%s: weights %v, want %v", tc.rule, got, [3]int{tc.a, tc.b, tc.c})
		}
	}
	if err := dag.New("bad").Add(task.Go("x", func(context.Context, *task.Run) (int, error) { return 0, nil }, task.Weight("sideways"))).Validate(); err == nil {
		t.Error("weight rule sideways accepted")
	}
}
