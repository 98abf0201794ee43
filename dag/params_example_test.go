package dag_test

import (
	"context"
	"fmt"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/task"
)

// ReportParams are the params of the report DAG: the defaults are the value
// given to dag.TypedParams, descriptions and constraints are in the tags.
type ReportParams struct {
	Region string `json:"region" description:"where the data lives" param:"enum=eu|us|apac"`
	Days   int    `json:"days" description:"days to cover" param:"minimum=1,maximum=31"`
	DryRun bool   `json:"dryRun" description:"print, do not write"`
	Email  string `json:"email" description:"who gets the report" param:"required"`
}

func ExampleTypedParams() {
	report := dag.New("report", dag.TypedParams(ReportParams{Region: "eu", Days: 7}))
	summary := task.Go("summary", func(ctx context.Context, r *task.Run) (string, error) {
		p, err := task.ParamsAs[ReportParams](r) // typed: p.Days is an int
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%d days of %s for %s (dry run: %v)", p.Days, p.Region, p.Email, p.DryRun), nil
	})
	report.Add(summary)
	if err := report.Validate(); err != nil {
		fmt.Println(err)
		return
	}

	// A trigger's conf is checked against the params: one line per bad field.
	_, err := report.ResolveConf([]byte(`{"region":"mars","days":40}`))
	fmt.Println(err)

	// A good conf is overlaid on the defaults, and the task reads it typed.
	params, err := report.ResolveConf([]byte(`{"email":"ops@example.com","days":30}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	out, err := summary.Execute(context.Background(), task.NewRun(summary, task.Info{TaskID: "summary"}, params, nil, nil, nil))
	fmt.Println(string(out), err)

	// What the API serves and the UI builds its trigger form from.
	fmt.Println(string(report.ParamsSchema()))
	// Output:
	// dag "report": invalid conf: param "region" must be one of "eu", "us", "apac", got "mars"
	// dag "report": invalid conf: param "days" must be at most 31, got 40
	// dag "report": invalid conf: param "email" is required
	// "30 days of eu for ops@example.com (dry run: false)" <nil>
	// {"$schema":"https://json-schema.org/draft/2020-12/schema","title":"report","type":"object","properties":{"region":{"type":"string","description":"where the data lives","default":"eu","enum":["eu","us","apac"]},"days":{"type":"integer","description":"days to cover","default":7,"minimum":1,"maximum":31},"dryRun":{"type":"boolean","description":"print, do not write","default":false},"email":{"type":"string","description":"who gets the report"}},"required":["email"],"additionalProperties":false}
}
