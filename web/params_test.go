package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/task"
)

// reportParams are the typed params of the report test DAG.
type reportParams struct {
	Region string `json:"region" description:"where the data lives" param:"enum=eu|us|apac"`
	Days   int    `json:"days" description:"days to cover" param:"minimum=1,maximum=31"`
	DryRun bool   `json:"dryRun" description:"print, do not write"`
	Email  string `json:"email" description:"who gets the report" param:"required"`
	Note   string `json:"note"`
}

// reportDAG has typed params; its task returns them as it read them.
func reportDAG() *dag.DAG {
	d := dag.New("report", dag.DefaultRetries(0, 0), dag.Description("typed params"),
		dag.TypedParams(reportParams{Region: "eu", Days: 7}))
	d.Add(task.Go("summary", func(ctx context.Context, r *task.Run) (string, error) {
		p, err := task.ParamsAs[reportParams](r)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%s/%d/%v/%s/%s", p.Region, p.Days, p.DryRun, p.Email, p.Note), nil
	}))
	return d
}

func withReport(s *stack) []*dag.DAG { return append(testDAGs(s), reportDAG()) }

func TestParamsSchemaEndpoint(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{dags: withReport})
	res := s.do("GET", "/api/v1/dags/report/params", nil, nil)
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET params: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	want := `{"$schema":"https://json-schema.org/draft/2020-12/schema","title":"report","type":"object","properties":{` +
		`"region":{"type":"string","description":"where the data lives","default":"eu","enum":["eu","us","apac"]},` +
		`"days":{"type":"integer","description":"days to cover","default":7,"minimum":1,"maximum":31},` +
		`"dryRun":{"type":"boolean","description":"print, do not write","default":false},` +
		`"email":{"type":"string","description":"who gets the report"},` +
		`"note":{"type":"string","default":""}},"required":["email"],"additionalProperties":false}` + "\n"
	if string(body) != want {
		t.Errorf("schema =\n%s\nwant\n%s", body, want)
	}
	// An untyped DAG: types from the defaults, null accepted.
	var etl map[string]any
	s.do("GET", "/api/v1/dags/etl/params", nil, &etl)
	limit := etl["properties"].(map[string]any)["limit"].(map[string]any)
	if fmt.Sprint(limit["type"]) != "[integer null]" || limit["default"] != 10.0 || limit["description"] != "rows to read" {
		t.Errorf("etl's limit = %v", limit)
	}
	s.expectError(s.do("GET", "/api/v1/dags/nope/params", nil, nil), 404, CodeNotFound, "")

	// The params in DAG summaries are camelCase, with their constraints.
	var dd DAGDetail
	s.do("GET", "/api/v1/dags/report", nil, &dd)
	raw, _ := json.Marshal(dd.Params[1])
	if string(raw) != `{"name":"days","default":7,"description":"days to cover","type":"integer","minimum":1,"maximum":31}` {
		t.Errorf("params in the DAG summary: %s", raw)
	}
}

func TestTriggerConfErrorsPerField(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{dags: withReport})
	res := s.do("POST", "/api/v1/dags/report/runs", `{"conf":{"region":"mars","days":40,"dryRun":"no","colour":"red"}}`, nil)
	eb := s.expectError(res, 400, CodeInvalidConf, "conf.region")
	want := []FieldError{
		{"conf.region", `must be one of "eu", "us", "apac", got "mars"`},
		{"conf.days", "must be at most 31, got 40"},
		{"conf.dryRun", "must be a boolean, got a string"},
		{"conf.email", "is required"},
		{"conf.colour", "is not declared (declared params: region, days, dryRun, email, note)"},
	}
	if fmt.Sprint(eb.Error.Fields) != fmt.Sprint(want) {
		t.Errorf("fields =\n%v\nwant\n%v", eb.Error.Fields, want)
	}
	if n := strings.Count(eb.Error.Message, `dag "report": invalid conf: param `); n != len(want) {
		t.Errorf("message names %d params, want %d: %s", n, len(want), eb.Error.Message)
	}
	// Required missing with no conf at all, and a conf that is not an object.
	eb = s.expectError(s.do("POST", "/api/v1/dags/report/runs", `{}`, nil), 400, CodeInvalidConf, "conf.email")
	if len(eb.Error.Fields) != 1 || eb.Error.Fields[0].Message != "is required" {
		t.Errorf("fields = %v", eb.Error.Fields)
	}
	eb = s.expectError(s.do("POST", "/api/v1/dags/report/runs", `{"conf":"x"}`, nil), 400, CodeInvalidConf, "conf")
	if len(eb.Error.Fields) != 1 || eb.Error.Fields[0].Field != "conf" {
		t.Errorf("fields = %v", eb.Error.Fields)
	}
	// Other problems of the request are triggerRun's, as before.
	s.expectError(s.do("POST", "/api/v1/dags/report/runs", `{"conf":{},"colour":1}`, nil), 400, CodeBadRequest, "colour")
	s.expectError(s.do("POST", "/api/v1/dags/nope/runs", `{"conf":{}}`, nil), 404, CodeNotFound, "")

	// Nothing was created; the refusal is in the audit log.
	var runs RunList
	s.do("GET", "/api/v1/dags/report/runs", nil, &runs)
	if runs.Total != 0 {
		t.Errorf("refused triggers created %d runs", runs.Total)
	}
	var audit AuditList
	s.do("GET", "/api/v1/audit?dag=report", nil, &audit)
	if len(audit.Entries) == 0 || audit.Entries[len(audit.Entries)-1].Action != "trigger" ||
		!strings.Contains(audit.Entries[len(audit.Entries)-1].Outcome, `param "days" must be at most 31, got 40`) ||
		!strings.Contains(audit.Entries[len(audit.Entries)-1].Detail, `"colour":"red"`) {
		t.Errorf("audit = %+v", audit.Entries)
	}

	// A good conf: the task reads it typed, with the defaults for the rest.
	run := s.trigger("report", `{"email":"ops@example.com","region":"us","days":30}`)
	s.waitRun("report", run.RunID, task.RunSuccess)
	var x XCom
	s.do("GET", runPath("report", run.RunID)+"/tasks/summary/xcom", nil, &x)
	if string(x.Value) != `"us/30/false/ops@example.com/"` {
		t.Errorf("the task read %s", x.Value)
	}
}

func TestTriggeredRunReadsBackTheSame(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	for _, body := range []string{`{}`, `{"logicalDate":"2024-03-01T10:00:00.123456789Z"}`} {
		res := s.do("POST", "/api/v1/dags/etl/runs", body, nil)
		created, _ := io.ReadAll(res.Body)
		if res.StatusCode != 201 {
			t.Fatalf("trigger %s: %d %s", body, res.StatusCode, created)
		}
		var run Run
		if err := json.Unmarshal(created, &run); err != nil {
			t.Fatal(err)
		}
		read := s.do("GET", runPath("etl", run.RunID), nil, nil)
		got, _ := io.ReadAll(read.Body)
		// The dates of the answer to the trigger are those read back later:
		// cut to the microsecond at creation, as the store keeps them.
		for _, k := range []string{"logicalDate", "dataIntervalStart", "dataIntervalEnd", "created"} {
			if a, b := jsonField(t, created, k), jsonField(t, got, k); a != b || a == "" {
				t.Errorf("%s: %s when triggered, %s when read", k, a, b)
			}
		}
		if run.LogicalDate.Nanosecond()%1000 != 0 || run.Created.Nanosecond()%1000 != 0 {
			t.Errorf("dates finer than a microsecond: %s, %s", run.LogicalDate, run.Created)
		}
		if strings.Contains(body, "123456789") && jsonField(t, created, "logicalDate") != `"2024-03-01T10:00:00.123456Z"` {
			t.Errorf("logicalDate = %s", jsonField(t, created, "logicalDate"))
		}
	}
}

func jsonField(t *testing.T, obj []byte, key string) string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(obj, &m); err != nil {
		t.Fatalf("%s: %v", obj, err)
	}
	return string(m[key])
}
