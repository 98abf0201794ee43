package web

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/trellisdag/trellis/task"
)

func runPath(dagID, runID string) string {
	return "/api/v1/dags/" + dagID + "/runs/" + url.PathEscape(runID)
}

func TestAPIReads(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	run := s.trigger("etl", `{"limit": 3}`)
	if run.State != task.RunQueued || run.Type != task.RunManual || string(run.Conf) != `{"limit":3}` {
		t.Errorf("triggered run = %+v", run)
	}
	s.waitRun("etl", run.RunID, task.RunSuccess)
	rp := runPath("etl", run.RunID)

	var dl DAGList
	if res := s.do("GET", "/api/v1/dags", nil, &dl); res.StatusCode != 200 {
		t.Fatalf("list dags: %d", res.StatusCode)
	}
	if dl.Total != 3 || dl.DAGs[0].ID != "etl" || dl.DAGs[0].Tasks != 3 || len(dl.DAGs[0].LatestRuns) != 1 ||
		dl.DAGs[0].LatestRuns[0].State != task.RunSuccess || len(dl.DAGs[0].Params) != 2 {
		t.Errorf("dags = %+v", dl)
	}
	var dd DAGDetail
	s.do("GET", "/api/v1/dags/etl", nil, &dd)
	if dd.Definition.ID != "etl" || len(dd.Definition.Tasks) != 3 || dd.Paused {
		t.Errorf("dag = %+v", dd)
	}

	var got Run
	s.do("GET", rp, nil, &got)
	if got.RunID != run.RunID || got.State != task.RunSuccess || got.Duration == nil || got.Started == nil {
		t.Errorf("run = %+v", got)
	}

	var tis TaskInstanceList
	s.do("GET", rp+"/tasks", nil, &tis)
	if tis.Total != 3 || len(tis.TaskInstances) != 3 {
		t.Fatalf("task instances = %+v", tis)
	}
	order := []string{tis.TaskInstances[0].TaskID, tis.TaskInstances[1].TaskID, tis.TaskInstances[2].TaskID}
	if strings.Join(order, ",") != "extract,count,report" {
		t.Errorf("task instances not in topological order: %v", order)
	}
	for _, ti := range tis.TaskInstances {
		if ti.State != task.StateSuccess || ti.Try != 1 || ti.Duration == nil {
			t.Errorf("task instance = %+v", ti)
		}
	}
	if tis.TaskInstances[2].Kind != task.KindBash || tis.TaskInstances[2].Executor != "local" {
		t.Errorf("report = %+v", tis.TaskInstances[2])
	}
	var ti TaskInstance
	s.do("GET", rp+"/tasks/count", nil, &ti)
	if ti.TaskID != "count" || ti.State != task.StateSuccess {
		t.Errorf("task instance = %+v", ti)
	}

	var tries TryList
	s.do("GET", rp+"/tasks/report/tries", nil, &tries)
	if len(tries.Tries) != 1 || tries.Tries[0].Try != 1 || tries.Tries[0].Queued == nil || tries.Tries[0].Ended == nil {
		t.Errorf("tries = %+v", tries)
	}
	var try Try
	s.do("GET", rp+"/tasks/report/tries/1", nil, &try)
	if try.State != task.StateSuccess || try.Executor != "local" {
		t.Errorf("try = %+v", try)
	}

	var lg LogChunk
	s.do("GET", rp+"/tasks/report/tries/1/log", nil, &lg)
	if !strings.Contains(lg.Content, "limit=3") || !lg.Finished || lg.Next <= 0 {
		t.Errorf("log = %+v", lg)
	}
	var rest LogChunk
	s.do("GET", rp+"/tasks/report/tries/1/log?after="+itoa(int(lg.Next)), nil, &rest)
	if rest.Content != "" || rest.Next != lg.Next {
		t.Errorf("log after %d = %+v; want nothing new", lg.Next, rest)
	}

	var x XCom
	s.do("GET", rp+"/tasks/count/xcom", nil, &x)
	if !x.Present || string(x.Value) != "3" {
		t.Errorf("xcom = %+v", x)
	}
	var last XCom
	s.do("GET", rp+"/tasks/report/xcom", nil, &last)
	if !last.Present || string(last.Value) != `"limit=3"` {
		t.Errorf("report's result (its last line) = %+v", last)
	}
	var pod PodInfo
	s.do("GET", rp+"/tasks/report/tries/1/pod", nil, &pod)
	if pod.Available || !strings.Contains(pod.Reason, "not available for this task") {
		t.Errorf("pod = %+v", pod)
	}

	var g Gantt
	s.do("GET", rp+"/gantt", nil, &g)
	if len(g.Tries) != 3 || g.Tries[0].TaskID != "extract" || g.Run.RunID != run.RunID {
		t.Errorf("gantt = %+v", g)
	}
	var grid Grid
	s.do("GET", "/api/v1/dags/etl/grid", nil, &grid)
	if len(grid.Tasks) != 3 || len(grid.Runs) != 1 || grid.Cells[1][0].State != task.StateSuccess || grid.Tasks[2].Level != 2 {
		t.Errorf("grid = %+v", grid)
	}
	res := s.do("GET", "/api/v1/dags/etl/graph.svg?run="+url.QueryEscape(run.RunID), nil, nil)
	svg, _ := io.ReadAll(res.Body)
	if res.Header.Get("Content-Type") != "image/svg+xml" || !strings.Contains(string(svg), `fill="#137333"`) ||
		strings.Count(string(svg), "<rect") != 3 || strings.Count(string(svg), "marker-end") != 2 {
		t.Errorf("graph: %s %s", res.Header.Get("Content-Type"), svg)
	}

	var ch Changes
	s.do("GET", "/api/v1/changes", nil, &ch)
	if ch.Seq == 0 {
		t.Errorf("changes = %+v; the run's events were not counted", ch)
	}
	var sess Session
	s.do("GET", "/api/v1/session", nil, &sess)
	if sess.AuthRequired || sess.Role != RoleOperator || sess.Name != "anonymous" {
		t.Errorf("session = %+v", sess)
	}
	var audit AuditList
	s.do("GET", "/api/v1/audit", nil, &audit)
	if audit.Total != 1 || audit.Entries[0].Action != "trigger" || audit.Entries[0].Actor != "anonymous" || audit.Entries[0].Outcome != "ok" ||
		audit.Entries[0].RunID != run.RunID || !strings.Contains(audit.Entries[0].Detail, `{"limit":3}`) {
		t.Errorf("audit = %+v", audit)
	}
}

func TestAPIRunListing(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	day := func(d int) string { return time.Date(2024, 1, d, 0, 0, 0, 0, time.UTC).Format(time.RFC3339) }
	var ids []string
	for d := 1; d <= 5; d++ {
		var r Run
		res := s.do("POST", "/api/v1/dags/flaky/runs", `{"logicalDate":"`+day(d)+`"}`, &r)
		if res.StatusCode != 201 {
			t.Fatalf("trigger: %d", res.StatusCode)
		}
		ids = append(ids, r.RunID)
	}
	for _, id := range ids {
		s.waitFor("run "+id+" to end", 30*time.Second, func() bool { return s.runState("flaky", id).Finished() })
	}
	var all RunList
	s.do("GET", "/api/v1/dags/flaky/runs", nil, &all)
	if all.Total != 5 || len(all.Runs) != 5 || all.Runs[0].RunID != ids[4] {
		t.Errorf("runs = %+v", all)
	}
	var page RunList
	s.do("GET", "/api/v1/dags/flaky/runs?limit=2&offset=1", nil, &page)
	if page.Total != 5 || len(page.Runs) != 2 || page.Runs[0].RunID != ids[3] || page.Limit != 2 || page.Offset != 1 {
		t.Errorf("page = %+v", page)
	}
	var rng RunList
	s.do("GET", "/api/v1/dags/flaky/runs?since=2024-01-02&until="+url.QueryEscape(day(4)), nil, &rng)
	if rng.Total != 2 || rng.Runs[0].RunID != ids[2] || rng.Runs[1].RunID != ids[1] {
		t.Errorf("range = %+v", rng)
	}
	// boom failed once (the first run to reach it), the others succeeded.
	var failed, ok RunList
	s.do("GET", "/api/v1/dags/flaky/runs?state=failed", nil, &failed)
	s.do("GET", "/api/v1/dags/flaky/runs?state=success,queued", nil, &ok)
	if failed.Total != 1 || ok.Total != 4 {
		t.Errorf("by state: failed %d, success %d", failed.Total, ok.Total)
	}
}

func TestAPIBadInput(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	run := s.trigger("etl", "")
	s.waitRun("etl", run.RunID, task.RunSuccess)
	rp := runPath("etl", run.RunID)
	for _, c := range []struct {
		method, path, body string
		status             int
		code, field        string
	}{
		{"GET", "/api/v1/dags/nope", "", 404, CodeNotFound, ""},
		{"GET", "/api/v1/dags/etl/runs/nope", "", 404, CodeNotFound, ""},
		{"GET", rp + "/tasks/nope", "", 404, CodeNotFound, ""},
		{"GET", rp + "/tasks/count/tries/7", "", 404, CodeNotFound, ""},
		{"GET", rp + "/tasks/count/tries/x", "", 400, CodeBadRequest, "try"},
		{"GET", rp + "/tasks/count/tries/1/log?after=-1", "", 400, CodeBadRequest, "after"},
		{"GET", "/api/v1/dags/etl/runs?limit=0", "", 400, CodeBadRequest, "limit"},
		{"GET", "/api/v1/dags/etl/runs?limit=abc", "", 400, CodeBadRequest, "limit"},
		{"GET", "/api/v1/dags/etl/runs?offset=-3", "", 400, CodeBadRequest, "offset"},
		{"GET", "/api/v1/dags/etl/runs?state=done", "", 400, CodeBadRequest, "state"},
		{"GET", "/api/v1/dags/etl/runs?since=yesterday", "", 400, CodeBadRequest, "since"},
		{"GET", "/api/v1/dags/etl/grid?runs=1000", "", 400, CodeBadRequest, "runs"},
		{"GET", "/api/v1/audit?limit=5000", "", 400, CodeBadRequest, "limit"},
		{"GET", "/api/v1/nothing-here", "", 404, CodeNotFound, ""},
		{"DELETE", "/api/v1/dags/etl", "", 405, CodeMethodNotAllowed, ""},
		{"POST", "/api/v1/dags/etl/runs", `{"conf":{"limit":"ten"}}`, 400, CodeInvalidConf, "conf.limit"},
		{"POST", "/api/v1/dags/etl/runs", `{"conf":{"limit":5,"colour":"red"}}`, 400, CodeInvalidConf, "conf.colour"},
		{"POST", "/api/v1/dags/etl/runs", `{"conf":[1]}`, 400, CodeInvalidConf, "conf"},
		{"POST", "/api/v1/dags/etl/runs", `{"config":{}}`, 400, CodeBadRequest, "config"},
		{"POST", "/api/v1/dags/etl/runs", `{"logicalDate":"monday"}`, 400, CodeBadRequest, "logicalDate"},
		{"POST", "/api/v1/dags/etl/runs", `{"runId":"a/b"}`, 400, CodeBadRequest, "runId"},
		{"POST", "/api/v1/dags/etl/runs", `{"conf":`, 400, CodeBadRequest, "body"},
		{"POST", "/api/v1/dags/etl/runs", ``, 400, CodeBadRequest, "body"},
		{"POST", "/api/v1/dags/etl/runs", `{"runId":"` + run.RunID + `"}`, 409, CodeConflict, ""},
		{"POST", rp + "/tasks/count/mark", `{"state":"running"}`, 400, CodeBadRequest, "state"},
		{"POST", rp + "/clear", `{"tasks":["nope"]}`, 400, CodeBadRequest, "tasks"},
		{"PATCH", "/api/v1/dags/etl", `{}`, 400, CodeBadRequest, "paused"},
		{"PATCH", "/api/v1/dags/etl", `{"paused":"yes"}`, 400, CodeBadRequest, "paused"},
	} {
		var opts []reqOpt
		var body any
		if c.body != "" || c.method == "POST" {
			body = c.body
		}
		res := s.do(c.method, c.path, body, nil, opts...)
		s.expectError(res, c.status, c.code, c.field)
	}
	// A wrong method lists the allowed ones.
	if res := s.do("DELETE", "/api/v1/dags/etl", nil, nil); res.Header.Get("Allow") != "GET, PATCH" {
		t.Errorf("Allow = %q", res.Header.Get("Allow"))
	}
	// Bodies must be JSON and small.
	req := func(ct string, body string) *http.Response {
		r, _ := http.NewRequest("POST", s.hs.URL+"/api/v1/dags/etl/runs", strings.NewReader(body))
		if ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		res, err := s.hs.Client().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { res.Body.Close() })
		return res
	}
	s.expectError(req("text/plain", `{}`), 415, CodeUnsupportedMedia, "")
	s.expectError(req("", `{}`), 415, CodeUnsupportedMedia, "")
	big := `{"conf":{"mode":"` + strings.Repeat("x", 8<<10) + `"}}`
	s.expectError(req("application/json", big), 413, CodeTooLarge, "")
	// Nothing of the refused requests was created.
	var runs RunList
	s.do("GET", "/api/v1/dags/etl/runs", nil, &runs)
	if runs.Total != 1 {
		t.Errorf("refused requests created runs: %d runs", runs.Total)
	}
}

func TestAPIActions(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	run := s.trigger("flaky", "")
	s.waitRun("flaky", run.RunID, task.RunFailed)
	rp := runPath("flaky", run.RunID)
	var ti TaskInstance
	s.do("GET", rp+"/tasks/after", nil, &ti)
	if ti.State != task.StateUpstreamFailed {
		t.Fatalf("after = %s", ti.State)
	}
	var lg LogChunk
	s.do("GET", rp+"/tasks/boom/tries/1/log", nil, &lg)
	if !strings.Contains(lg.Content, "about to fail") {
		t.Errorf("failed try's log = %q", lg.Content)
	}
	// Clear only what failed, with downstream: both run again and succeed.
	var cr ClearResult
	if res := s.do("POST", rp+"/clear", ClearRequest{Tasks: []string{"boom"}, Downstream: true, FailedOnly: true}, &cr); res.StatusCode != 200 {
		t.Fatalf("clear: %d", res.StatusCode)
	}
	if strings.Join(cr.Cleared, ",") != "after,boom" {
		t.Errorf("cleared %v", cr.Cleared)
	}
	s.waitRun("flaky", run.RunID, task.RunSuccess)
	var tries TryList
	s.do("GET", rp+"/tasks/boom/tries", nil, &tries)
	if len(tries.Tries) != 2 || tries.Tries[0].State != task.StateFailed || tries.Tries[1].State != task.StateSuccess {
		t.Errorf("tries after clear = %+v", tries)
	}
	// Nothing failed any more: a failed-only clear clears nothing.
	s.do("POST", rp+"/clear", ClearRequest{FailedOnly: true}, &cr)
	if len(cr.Cleared) != 0 {
		t.Errorf("failed-only clear of a successful run cleared %v", cr.Cleared)
	}

	// Mark the leaf failed: the scheduler decides the run again, and it fails.
	if res := s.do("POST", rp+"/tasks/after/mark", MarkRequest{State: task.StateFailed}, &ti); res.StatusCode != 200 || ti.State != task.StateFailed {
		t.Fatalf("mark failed: %d %+v", res.StatusCode, ti)
	}
	s.waitRun("flaky", run.RunID, task.RunFailed)
	// Marking it failed again is not a legal transition.
	s.expectError(s.do("POST", rp+"/tasks/after/mark", MarkRequest{State: task.StateFailed}, nil), 409, CodeConflict, "")
	// Mark it success: the run succeeds again.
	s.do("POST", rp+"/tasks/after/mark", MarkRequest{State: task.StateSuccess}, &ti)
	s.waitRun("flaky", run.RunID, task.RunSuccess)

	// A task with a try in flight is not cleared; its log can be followed while it
	// runs; marking it stops the try (as in Airflow).
	slow := s.trigger("slow", "")
	sp := runPath("slow", slow.RunID)
	s.waitFor("hold to run", 30*time.Second, func() bool {
		t, err := s.st.Run(context.Background(), "slow", slow.RunID)
		if err != nil {
			return false
		}
		x, err := s.st.TaskInstance(context.Background(), t.ID, "hold")
		return err == nil && x.State == task.StateRunning
	})
	s.expectError(s.do("POST", sp+"/clear", ClearRequest{}, nil), 409, CodeConflict, "")
	// Its log can be followed while it runs.
	s.waitFor("hold's first log line", 10*time.Second, func() bool {
		s.do("GET", sp+"/tasks/hold/tries/1/log", nil, &lg)
		return strings.Contains(lg.Content, "holding")
	})
	if lg.Finished {
		t.Error("the running try's log says finished")
	}
	if res := s.do("POST", sp+"/tasks/hold/mark", MarkRequest{State: task.StateSuccess}, &ti); res.StatusCode != 200 || ti.State != task.StateSuccess {
		t.Fatalf("mark a running task success: %d %+v", res.StatusCode, ti)
	}
	s.waitRun("slow", slow.RunID, task.RunSuccess)
	s.waitFor("the marked try to be stopped", 10*time.Second, func() bool {
		s.do("GET", sp+"/tasks/hold/tries/1/log", nil, &lg)
		return strings.Contains(lg.Content, "task marked success while it ran") && lg.Finished
	})
	if strings.Contains(lg.Content, "released") {
		t.Errorf("the marked try ran on: %q", lg.Content)
	}

	// Pause and unpause.
	var sum DAGSummary
	s.do("PATCH", "/api/v1/dags/etl", PauseRequest{Paused: ptr(true)}, &sum)
	if !sum.Paused {
		t.Errorf("after pause: %+v", sum)
	}
	if rec, _ := s.st.DAG(context.Background(), "etl"); !rec.Paused {
		t.Error("the store does not say paused")
	}
	s.do("PATCH", "/api/v1/dags/etl", PauseRequest{Paused: ptr(false)}, &sum)
	if sum.Paused {
		t.Errorf("after unpause: %+v", sum)
	}

	// Every action is in the audit log, refused ones with their reason.
	var audit AuditList
	s.do("GET", "/api/v1/audit?limit=100", nil, &audit)
	var actions []string
	for i := len(audit.Entries) - 1; i >= 0; i-- {
		e := audit.Entries[i]
		a := e.Action
		if e.Outcome != "ok" {
			a += "!"
		}
		actions = append(actions, a)
	}
	want := "trigger clear clear mark_failed mark_failed! mark_success trigger clear! mark_success pause unpause"
	if strings.Join(actions, " ") != want {
		t.Errorf("audit actions =\n%s\nwant\n%s", strings.Join(actions, " "), want)
	}
	var byDAG AuditList
	s.do("GET", "/api/v1/audit?dag=etl", nil, &byDAG)
	if byDAG.Total != 2 {
		t.Errorf("audit of etl: %d entries", byDAG.Total)
	}
}

func ptr[T any](v T) *T { return &v }

func TestEventStream(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", s.hs.URL+"/api/v1/events", nil)
	res, err := s.hs.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	rd := bufio.NewReader(res.Body)
	line, err := rd.ReadString('\n')
	if err != nil || line != "retry: 3000\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	run := s.trigger("etl", "")
	seen := map[string]bool{}
	for !seen["run:success"] {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended: %v (seen %v)", err, seen)
		}
		data, ok := strings.CutPrefix(strings.TrimSpace(line), "data: ")
		if !ok {
			continue
		}
		var ev Event
		if err := json.Unmarshal([]byte(data), &ev); err != nil || ev.Seq == 0 && ev.Kind != "" {
			continue
		}
		switch ev.Kind {
		case "action":
			seen["action:"+ev.Action] = true
		case "run":
			if ev.RunID == run.RunID {
				seen["run:"+string(ev.RunState)] = true
			}
		case "task":
			seen["task:"+ev.TaskID+":"+string(ev.State)] = true
		}
	}
	for _, k := range []string{"action:trigger", "run:running", "task:extract:running", "task:report:success"} {
		if !seen[k] {
			t.Errorf("no %s event; saw %v", k, seen)
		}
	}
}
