// Command readme is the DAG of the README's "Writing a DAG", kept identical to it
// by readme_test.go:
//
//	go run ./examples/readme dags test etl
package main

import (
	"context"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/operators"
	"github.com/trellisdag/trellis/runner"
	"github.com/trellisdag/trellis/task"
)

type Order struct {
	ID     int
	Amount float64
}

var etl = dag.New("etl",
	dag.Schedule("0 3 * * *"),
	dag.StartDate(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)),
	dag.DefaultRetries(2, 30*time.Second),
)

var (
	extract = task.Go("extract", func(ctx context.Context, r *task.Run) ([]Order, error) {
		start, end := r.DataInterval()
		return fetchOrders(ctx, start, end)
	})
	total = task.Go("total", func(ctx context.Context, r *task.Run) (float64, error) {
		orders, err := task.Output(r, extract) // []Order, typed; no string keys
		if err != nil {
			return 0, err
		}
		sum := 0.0
		for _, o := range orders {
			sum += o.Amount
		}
		return sum, nil
	}, task.Retries(5), task.Timeout(time.Minute))
	report = operators.Bash("report", `echo "revenue for {{ .DS }} is ready"`)
)

func init() {
	etl.Add(extract, total, report)
	task.Chain(extract, total, report)
}

// fetchOrders stands for your own data access.
func fetchOrders(ctx context.Context, start, end time.Time) ([]Order, error) {
	return []Order{{ID: 1, Amount: 9.5}, {ID: 2, Amount: 20}}, ctx.Err()
}

func main() { runner.Main(etl) }
