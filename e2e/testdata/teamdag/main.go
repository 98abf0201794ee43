// Command teamdag is the team binary of the in-cluster end-to-end test
// (e2e/deploy_test.go): it is built into an image laid out as its own
// `manifests --dockerfile` says and deployed by its own `manifests`.
package main

import (
	"context"
	"fmt"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/operators"
	"github.com/trellisdag/trellis/runner"
	"github.com/trellisdag/trellis/task"
)

// team: a daily DAG (catchup off, so the newest interval is scheduled as soon
// as the runner starts) with Go tasks passing a typed result, a task that runs
// for "seconds" (so that the runner can be replaced while it runs) and a Bash task.
var team = dag.New("team",
	dag.Schedule("@daily"),
	dag.StartDate(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)),
	dag.Catchup(false),
	dag.DefaultRetries(0, 0),
	dag.Params(dag.Param{Name: "seconds", Default: 1.0, Description: "how long the wait task runs"}),
)

var (
	extract = task.Go("extract", func(ctx context.Context, r *task.Run) ([]int, error) {
		return []int{3, 4, 5}, nil
	})
	wait = task.Go("wait", func(ctx context.Context, r *task.Run) (int, error) {
		secs, _ := r.Params()["seconds"].(float64)
		for i := 0; i < int(secs); i++ {
			fmt.Fprintf(r.Output(), "tick %d\n", i)
			select {
			case <-ctx.Done():
				return 0, ctx.Err()
			case <-time.After(time.Second):
			}
		}
		return int(secs), nil
	})
	total = task.Go("total", func(ctx context.Context, r *task.Run) (int, error) {
		xs, err := task.Output(r, extract)
		if err != nil {
			return 0, err
		}
		sum := 0
		for _, x := range xs {
			sum += x
		}
		return sum, nil
	})
	report = operators.Bash("report", `echo "total for {{ .DS }}: {{ .Output "total" }}"`)
)

func init() {
	team.Add(extract, wait, total, report)
	task.Chain(extract, wait, total, report)
	extract.Then(total) // total reads extract's result
}

func main() { runner.Main(team) }
