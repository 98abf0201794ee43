package web

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/internal/store"
	"github.com/trellisdag/trellis/task"
)

func TestOpenAPIMatchesRoutes(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
		Comps   struct {
			Schemas map[string]json.RawMessage `json:"schemas"`
		} `json:"components"`
	}
	if res := s.do("GET", "/api/v1/openapi.json", nil, &doc); res.StatusCode != 200 {
		t.Fatalf("openapi: %d", res.StatusCode)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi version %q", doc.OpenAPI)
	}
	n := 0
	for _, ops := range doc.Paths {
		n += len(ops)
	}
	if n != len(s.srv.routes) {
		t.Errorf("the document has %d operations, the server %d routes", n, len(s.srv.routes))
	}
	for _, rt := range s.srv.routes {
		if _, ok := doc.Paths[rt.path][strings.ToLower(rt.method)]; !ok {
			t.Errorf("route %s %s is not in the OpenAPI document", rt.method, rt.path)
		}
	}
	for _, name := range []string{"Run", "TaskInstance", "ErrorBody", "Error", "Grid", "TriggerRequest"} {
		if _, ok := doc.Comps.Schemas[name]; !ok {
			t.Errorf("no schema %s", name)
		}
	}
	// Every documented path is served: with its parameters filled in, the mux
	// reaches the route (a 404 then comes from the handler, with an error
	// object, never "no API route").
	param := regexp.MustCompile(`\{[a-z]+\}`)
	for path, ops := range doc.Paths {
		for method := range ops {
			if method == "get" && strings.HasSuffix(path, "/events") {
				continue // a stream; covered by TestEventStream
			}
			p := param.ReplaceAllString(path, "1")
			res := s.do(strings.ToUpper(method), p, "{}", nil)
			body, _ := io.ReadAll(res.Body)
			if strings.Contains(string(body), "no API route") || res.StatusCode == http.StatusMethodNotAllowed {
				t.Errorf("%s %s is documented but not routed: %d %s", method, p, res.StatusCode, body)
			}
		}
	}
}

func TestHealthAndMetrics(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	if res := s.do("GET", "/healthz", nil, nil); res.StatusCode != 200 {
		t.Errorf("healthz: %d", res.StatusCode)
	}
	if res := s.do("GET", "/readyz", nil, nil); res.StatusCode != 200 {
		t.Errorf("readyz: %d", res.StatusCode)
	}
	run := s.trigger("etl", "")
	s.waitRun("etl", run.RunID, task.RunSuccess)
	s.do("GET", "/api/v1/dags/nope", nil, nil)
	metric := func(text, name string) float64 {
		re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` ([0-9.e+-]+)$`)
		m := re.FindStringSubmatch(text)
		if m == nil {
			t.Errorf("no metric %s", name)
			return -1
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		return v
	}
	// The hub's goroutine feeds the latency metrics; wait until it has seen the run.
	var text string
	s.waitFor("the metrics to count the run", 10*time.Second, func() bool {
		res := s.do("GET", "/metrics", nil, nil)
		b, _ := io.ReadAll(res.Body)
		text = string(b)
		return strings.Contains(text, `trellis_run_state_changes_total{dag="etl",state="success"} 1`)
	})
	for name, min := range map[string]float64{
		`trellis_runs{state="success"}`:                               1,
		`trellis_task_instances{state="success"}`:                     3,
		`trellis_tries{state="success"}`:                              3,
		`trellis_tries_in_flight`:                                     0,
		`trellis_callbacks{state="given_up"}`:                         0,
		`trellis_handoff_seconds_count{dag="etl"}`:                    2,
		`trellis_try_queued_to_running_seconds_count{dag="etl"}`:      3,
		`trellis_run_queued_to_running_seconds_count{dag="etl"}`:      1,
		`trellis_task_state_changes_total{dag="etl",state="success"}`: 3,
		`trellis_store_batches_total`:                                 1,
		`trellis_store_commit_seconds_total`:                          0,
		`trellis_api_errors_total{code="not_found"}`:                  1,
		`trellis_scheduler_active`:                                    1,
		`trellis_api_requests_total{code="201",op="triggerRun"}`:      1,
	} {
		if v := metric(text, name); v < min {
			t.Errorf("%s = %v, want at least %v", name, v, min)
		}
	}
	if v := metric(text, `trellis_tries_in_flight`); v != 0 {
		t.Errorf("tries in flight after the run = %v", v)
	}
	// Not ready: the API answers 503, health stays up.
	s.srv.SetReady(errors.New("shutting down"))
	if res := s.do("GET", "/readyz", nil, nil); res.StatusCode != 503 {
		t.Errorf("readyz while shutting down: %d", res.StatusCode)
	}
	s.expectError(s.do("GET", "/api/v1/dags", nil, nil), 503, CodeUnavailable, "")
	if res := s.do("GET", "/healthz", nil, nil); res.StatusCode != 200 {
		t.Errorf("healthz while shutting down: %d", res.StatusCode)
	}
}

func TestGate(t *testing.T) {
	t.Parallel()
	g := NewGate("waiting for the lock")
	rec := func(path string) (int, string) {
		w := newRecorder()
		g.ServeHTTP(w, mustReq(t, path))
		return w.code, w.body.String()
	}
	if c, _ := rec("/healthz"); c != 200 {
		t.Errorf("healthz: %d", c)
	}
	if c, b := rec("/readyz"); c != 503 || !strings.Contains(b, "waiting for the lock") {
		t.Errorf("readyz: %d %s", c, b)
	}
	if c, b := rec("/api/v1/dags"); c != 503 || !strings.Contains(b, `"code":"unavailable"`) {
		t.Errorf("api: %d %s", c, b)
	}
	g.Set(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	if c, _ := rec("/readyz"); c != 204 {
		t.Errorf("after Set: %d", c)
	}
}

// TestSchedulingDelayLeavesCatchupOut: a scheduled run created after the next
// interval had ended too is catchup, and stays out of the scheduling-delay
// histogram; the newest due interval, created late, is in it.
func TestSchedulingDelayLeavesCatchupOut(t *testing.T) {
	t.Parallel()
	d := dag.New("hourly", dag.Schedule("@hourly"), dag.StartDate(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)), dag.Catchup(true))
	m, err := newMetrics(prometheus.NewRegistry(), nil, []*dag.DAG{d})
	if err != nil {
		t.Fatal(err)
	}
	at := func(h int) time.Time { return time.Date(2024, 1, 1, h, 0, 0, 0, time.UTC) }
	for _, tc := range []struct {
		start   time.Time
		created time.Time
		want    bool
	}{
		{at(0), at(5), true},                        // made up for hours later
		{at(4), at(5).Add(30 * time.Minute), false}, // the newest due interval, 30 min late
		{at(4), at(5).Add(2 * time.Second), false},  // on time
		{at(3), at(5).Add(1 * time.Second), true},   // 04:00-05:00 had ended too
	} {
		r := store.Run{DAGID: "hourly", Type: task.RunScheduled, IntervalStart: tc.start, IntervalEnd: tc.start.Add(time.Hour), Created: tc.created}
		if got := m.catchup(r); got != tc.want {
			t.Errorf("run of %s created %s: catchup %v, want %v", tc.start.Format("15:04"), tc.created.Format("15:04:05"), got, tc.want)
		}
	}
}

// TestDeleteRunAPI: an operator deletes a finished run (204, audited; it is
// gone); an active run is a 409 and stays; a viewer is refused.
func TestDeleteRunAPI(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{tokens: true})
	done := s.trigger("etl", "", bearer(operatorToken))
	s.waitRun("etl", done.RunID, task.RunSuccess)
	held := s.trigger("slow", "", bearer(operatorToken))
	s.waitFor("slow's hold to run", 30*time.Second, func() bool {
		return s.runState("slow", held.RunID) == task.RunRunning
	})
	s.expectError(s.do("DELETE", runPath("etl", done.RunID), nil, nil, bearer(viewerToken)), 403, CodeForbidden, "")
	s.expectError(s.do("DELETE", runPath("slow", held.RunID), nil, nil, bearer(operatorToken)), 409, CodeConflict, "")
	if res := s.do("DELETE", runPath("etl", done.RunID), nil, nil, bearer(operatorToken)); res.StatusCode != 204 {
		t.Fatalf("delete a finished run: %d", res.StatusCode)
	}
	s.expectError(s.do("GET", runPath("etl", done.RunID), nil, nil, bearer(viewerToken)), 404, CodeNotFound, "")
	if res := s.do("GET", runPath("slow", held.RunID), nil, nil, bearer(viewerToken)); res.StatusCode != 200 {
		t.Errorf("the active run is gone: %d", res.StatusCode)
	}
	var audit AuditList
	s.do("GET", "/api/v1/audit", nil, &audit, bearer(viewerToken))
	found := false
	for _, e := range audit.Entries {
		found = found || (e.Action == "delete_run" && e.RunID == done.RunID && e.Outcome == "ok")
	}
	if !found {
		t.Errorf("the delete is not in the audit log: %+v", audit.Entries)
	}
}
