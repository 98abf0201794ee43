package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/operators"
	"github.com/trellisdag/trellis/runner"
	"github.com/trellisdag/trellis/task"
)

// Order is one sale in the data interval.
type Order struct {
	ID       int     `json:"id"`
	Customer string  `json:"customer"`
	Amount   float64 `json:"amount"`
}

// Totals is revenue per customer.
type Totals struct {
	ByCustomer map[string]float64 `json:"byCustomer"`
	Revenue    float64            `json:"revenue"`
}

// Params are what a run's conf may set, typed: the value given to
// dag.TypedParams holds the defaults, the tags the descriptions and the
// constraints. The trigger form of the UI is built from them, and a conf that
// does not fit (dags trigger etl --conf '{"report": "long"}') is refused with
// one message per bad field.
type Params struct {
	BigDay float64 `json:"big_day" description:"revenue above which the full report runs" param:"minimum=0"`
	Report string  `json:"report" description:"which report to run; auto chooses by revenue" param:"enum=auto|full|quick"`
}

var etl = dag.New("etl",
	dag.Description("Daily orders ETL: extract, aggregate, branch on volume, report, load"),
	dag.Schedule("0 3 * * *"),
	dag.StartDate(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)),
	dag.Catchup(false),
	dag.DefaultRetries(2, time.Second),
	dag.TypedParams(Params{BigDay: 100, Report: "auto"}),
	dag.Tags("example", "etl"),
)

var (
	extract = task.Go("extract", func(ctx context.Context, r *task.Run) ([]Order, error) {
		start, end := r.DataInterval()
		r.Log().Info("extracting orders", "from", start, "to", end)
		customers := []string{"ada", "grace", "linus", "margaret"}
		var orders []Order
		for i := 0; i < 12; i++ {
			orders = append(orders, Order{ID: i + 1, Customer: customers[i%len(customers)], Amount: float64(5 + 3*i)})
		}
		return orders, nil
	})

	// aggregate fails on its first try (a flaky upstream, say) and succeeds on the retry.
	aggregate = task.Go("aggregate", func(ctx context.Context, r *task.Run) (Totals, error) {
		if r.Info().Try == 1 {
			return Totals{}, errors.New("warehouse connection reset (simulated; the retry succeeds)")
		}
		orders, err := task.Output(r, extract)
		if err != nil {
			return Totals{}, err
		}
		t := Totals{ByCustomer: map[string]float64{}}
		for _, o := range orders {
			t.ByCustomer[o.Customer] += o.Amount
			t.Revenue += o.Amount
		}
		r.Log().Info("aggregated", "orders", len(orders), "revenue", t.Revenue)
		return t, nil
	}, task.RetryDelay(200*time.Millisecond),
		// Under --executor kubernetes, this task's pod gets more memory and a label
		// (Airflow's pod_override); locally the override is ignored.
		task.Executor(task.ExecutorConfig{PodOverride: &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"team": "analytics"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{
				Name: "base",
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
				},
			}}},
		}}))

	fullReport = operators.BashWith("full_report", operators.BashSpec{
		Command: `echo "full report for {{ .DS }} (run {{ .RunID }}, try {{ .TryNumber }})"; echo "threshold: $THRESHOLD"; echo "report-{{ .DSNodash }}.html"`,
		Env:     map[string]string{"THRESHOLD": "{{ .Params.big_day }}"},
	})

	quickSummary = task.Go("quick_summary", func(ctx context.Context, r *task.Run) (string, error) {
		return "quiet day", nil
	})

	chooseReport = task.Branch("choose_report", func(ctx context.Context, r *task.Run) ([]task.Task, error) {
		totals, err := task.Output(r, aggregate)
		if err != nil {
			return nil, err
		}
		p, err := task.ParamsAs[Params](r) // typed: p.BigDay is a float64, p.Report one of the enum
		if err != nil {
			return nil, err
		}
		switch {
		case p.Report == "full", p.Report == "auto" && totals.Revenue > p.BigDay:
			return []task.Task{fullReport}, nil
		}
		return []task.Task{quickSummary}, nil
	})

	load = task.Go("load", func(ctx context.Context, r *task.Run) (string, error) {
		totals, err := task.Output(r, aggregate)
		if err != nil {
			return "", err
		}
		names := make([]string, 0, len(totals.ByCustomer))
		for n := range totals.ByCustomer {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Fprintf(r.Output(), "%-10s %8.2f\n", n, totals.ByCustomer[n])
		}
		return fmt.Sprintf("loaded %d customers, revenue %.2f", len(names), totals.Revenue), nil
	}, task.Trigger(task.NoneFailedMinOneSuccess))
)

func init() {
	etl.Add(extract, aggregate, chooseReport, fullReport, quickSummary, load)
	extract.Then(aggregate).Then(chooseReport)
	chooseReport.Then(fullReport, quickSummary)
	load.After(aggregate, fullReport, quickSummary)
}

func main() { runner.Main(etl) }
