package runner_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/operators"
	"github.com/trellisdag/trellis/runner"
	"github.com/trellisdag/trellis/task"
)

type reportParams struct {
	Region string `json:"region" description:"where the data lives" param:"enum=eu|us|apac"`
	Days   int    `json:"days" description:"days to cover" param:"minimum=1,maximum=31"`
	DryRun bool   `json:"dryRun"`
	Email  string `json:"email" description:"who gets it" param:"required"`
}

// reportDAG has typed params: a Go task reads them as the struct, a Bash task
// through the template.
func reportDAG() *dag.DAG {
	d := dag.New("report", dag.DefaultRetries(0, 0), dag.TypedParams(reportParams{Region: "eu", Days: 7}))
	summary := task.Go("summary", func(ctx context.Context, r *task.Run) (string, error) {
		p, err := task.ParamsAs[reportParams](r)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%s/%d/%v/%s", p.Region, p.Days, p.DryRun, p.Email), nil
	})
	say := operators.Bash("say", `echo "days={{ .Params.days }} region={{ .Params.region }}"`)
	d.Add(summary, say)
	summary.Then(say)
	return d
}

func paramsCLI(t *testing.T) *cli {
	c := setup(t)
	c.dags = append(c.dags, reportDAG())
	return c
}

// errLines is the error a command printed, one entry per line, without the
// "error: " prefix and the indentation of the lines after the first.
func errLines(stderr string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
		out = append(out, strings.TrimPrefix(strings.TrimSpace(l), "error: "))
	}
	return out
}

func TestConfCheckedAgainstTypedParams(t *testing.T) {
	t.Parallel()
	const declared = "(declared params: region, days, dryRun, email)"
	for _, tc := range []struct {
		name string
		args []string
		want []string // the error's lines, one per bad field
	}{
		{"every bad field on its own line", []string{"dags", "trigger", "report", "--conf", `{"zzz": 1, "region": "mars", "days": 40, "dryRun": "yes"}`}, []string{
			`dag "report": invalid conf: param "region" must be one of "eu", "us", "apac", got "mars"`,
			`dag "report": invalid conf: param "days" must be at most 31, got 40`,
			`dag "report": invalid conf: param "dryRun" must be a boolean, got a string`,
			`dag "report": invalid conf: param "email" is required`,
			`dag "report": invalid conf: param "zzz" is not declared ` + declared,
		}},
		{"required missing", []string{"dags", "trigger", "report"}, []string{`dag "report": invalid conf: param "email" is required`}},
		{"below minimum", []string{"dags", "trigger", "report", "--conf", `{"email": "a@b.c", "days": 0}`},
			[]string{`dag "report": invalid conf: param "days" must be at least 1, got 0`}},
		{"not an integer", []string{"dags", "trigger", "report", "--conf", `{"email": "a@b.c", "days": 2.5}`},
			[]string{`dag "report": invalid conf: param "days" must be an integer, got 2.5`}},
		{"null for a typed param", []string{"dags", "trigger", "report", "--conf", `{"email": null}`},
			[]string{`dag "report": invalid conf: param "email" must be a string, got null`}},
		{"dags test checks the same", []string{"dags", "test", "report", "--conf", `{"email": "a@b.c", "region": "EU"}`},
			[]string{`dag "report": invalid conf: param "region" must be one of "eu", "us", "apac", got "EU"`}},
		{"tasks test checks the same", []string{"tasks", "test", "report", "summary", "--conf", `{"email": 7}`},
			[]string{`dag "report": invalid conf: param "email" must be a string, got a number`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := paramsCLI(t)
			if code := c.run("dags", "test", "report", "--logical-date", "2024-01-01", "--conf", `{"email": "seed@x"}`); code != 0 {
				t.Fatalf("seed run: exit %d: %s", code, &c.stderr)
			}
			before := c.fingerprint()
			if code := c.run(tc.args...); code != runner.ExitUsage {
				t.Fatalf("exit %d, want 2\nstdout: %s\nstderr: %s", code, &c.stdout, &c.stderr)
			}
			if got := errLines(c.stderr.String()); strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("stderr lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			if c.fingerprint() != before {
				t.Errorf("the database changed")
			}
		})
	}
}

func TestTypedParamsReachTasks(t *testing.T) {
	t.Parallel()
	c := paramsCLI(t)
	// A valid conf: the Go task reads the struct (defaults for what the conf
	// leaves out), the Bash task the template.
	if code := c.run("dags", "test", "report", "--logical-date", "2024-01-01", "--conf", `{"email": "ops@example.com", "days": 30}`); code != 0 {
		t.Fatalf("dags test: exit %d\n%s\n%s", code, &c.stdout, &c.stderr)
	}
	if out := c.stdout.String(); !strings.Contains(out, `"eu/30/false/ops@example.com"`) || !strings.Contains(out, "days=30 region=eu") {
		t.Errorf("dags test output lacks the typed result or the templated line:\n%s", out)
	}
	// Through the scheduler: trigger, then serve until idle.
	if code := c.run("dags", "trigger", "report", "--logical-date", "2024-02-01", "--conf", `{"email": "b@x", "region": "apac", "dryRun": true, "days": 1}`); code != 0 {
		t.Fatalf("trigger: exit %d: %s", code, &c.stderr)
	}
	if !strings.Contains(c.stdout.String(), "Created run manual__2024-02-01T00:00:00+00:00 of DAG report") {
		t.Errorf("trigger output: %s", &c.stdout)
	}
	if code := c.run("serve", "--until-idle"); code != 0 {
		t.Fatalf("serve: exit %d: %s", code, &c.stderr)
	}
	if code := c.run("runs", "show", "report", "manual__2024-02-01T00:00:00+00:00"); code != 0 ||
		!strings.Contains(c.stdout.String(), `"apac/1/true/b@x"`) {
		t.Errorf("runs show: exit %d:\n%s%s", code, &c.stdout, &c.stderr)
	}
}

func TestDagsParams(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		code int
		want []string // regular expressions, each matching a line of stdout
	}{
		{"typed", []string{"dags", "params", "report"}, 0, []string{
			`^Params of DAG report: set them with dags trigger report --conf '\{"region": \.\.\.\}'$`,
			`^PARAM +TYPE +DEFAULT +ALLOWED +DESCRIPTION$`,
			`^region +string +"eu" +one of "eu", "us", "apac" +where the data lives$`,
			`^days +integer +7 +1 to 31 +days to cover$`,
			`^dryRun +boolean +false +- +-$`,
			`^email +string +\(required\) +- +who gets it$`,
		}},
		{"untyped: types from the defaults", []string{"dags", "params", "etl"}, 0, []string{
			`^limit +integer +10 +- +rows$`,
			`^mode +string +"fast" +- +-$`,
		}},
		{"no params", []string{"dags", "params", "broken"}, 0, []string{`^DAG broken declares no params: its runs take no conf\.$`}},
		{"dags show lists them too", []string{"dags", "show", "report"}, 0, []string{
			`^  param: +days = 7 \(integer, 1 to 31\)  days to cover$`,
			`^  param: +email = \(required\) \(string\)  who gets it$`,
		}},
		{"unknown dag", []string{"dags", "params", "nope"}, runner.ExitUsage, nil},
		{"missing dag", []string{"dags", "params"}, runner.ExitUsage, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := paramsCLI(t)
			if code := c.run(tc.args...); code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, &c.stdout, &c.stderr)
			}
			for _, w := range tc.want {
				if !regexp.MustCompile(`(?m)` + w).MatchString(c.stdout.String()) {
					t.Errorf("no line of stdout matches %s:\n%s", w, &c.stdout)
				}
			}
		})
	}
}

func TestDagsParamsJSON(t *testing.T) {
	t.Parallel()
	c := paramsCLI(t)
	if code := c.run("dags", "params", "report", "--json"); code != 0 {
		t.Fatalf("exit %d: %s", code, &c.stderr)
	}
	out := c.stdout.String()
	var schema struct {
		Schema     string                     `json:"$schema"`
		Type       string                     `json:"type"`
		Properties map[string]json.RawMessage `json:"properties"`
		Required   []string                   `json:"required"`
		Additional *bool                      `json:"additionalProperties"`
	}
	if err := json.Unmarshal([]byte(out), &schema); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if schema.Schema != "https://json-schema.org/draft/2020-12/schema" || schema.Type != "object" || len(schema.Properties) != 4 ||
		strings.Join(schema.Required, ",") != "email" || schema.Additional == nil || *schema.Additional {
		t.Errorf("schema = %+v", schema)
	}
	var days bytes.Buffer
	if err := json.Compact(&days, schema.Properties["days"]); err != nil {
		t.Fatal(err)
	}
	if got := days.String(); got != `{"type":"integer","description":"days to cover","default":7,"minimum":1,"maximum":31}` {
		t.Errorf("days = %s", got)
	}
	// Indented, and the params in declaration order (the UI's form order).
	if !strings.Contains(out, "\n  \"properties\": {\n    \"region\"") || strings.Index(out, `"days"`) > strings.Index(out, `"email"`) {
		t.Errorf("schema not indented in declaration order:\n%s", out)
	}
}
