package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/internal/store"
	"github.com/trellisdag/trellis/task"
)

// mappedDAGs adds fanTestDAG to the test DAGs.
func mappedDAGs(failThree *atomic.Bool) func(s *stack) []*dag.DAG {
	return func(s *stack) []*dag.DAG { return append(testDAGs(s), fanTestDAG(failThree)) }
}

// fanTestDAG is fan: list makes the list 0..n-1 (param n, default 5),
// square is mapped over it and prints "squaring k"; its element 3 fails once
// (while *failThree is set), and total sums the squares.
func fanTestDAG(failThree *atomic.Bool) *dag.DAG {
	fan := dag.New("fan", dag.DefaultRetries(0, 0), dag.Params(dag.Param{Name: "n", Default: 5}))
	list := task.Go("list", func(ctx context.Context, r *task.Run) ([]int, error) {
		n := 5
		switch v := r.Params()["n"].(type) {
		case float64:
			n = int(v)
		case int:
			n = v
		case int64:
			n = int(v)
		case json.Number:
			i, err := v.Int64()
			if err != nil {
				return nil, err
			}
			n = int(i)
		default:
			return nil, fmt.Errorf("param n is a %T", v)
		}
		out := make([]int, n)
		for i := range out {
			out[i] = i
		}
		return out, nil
	})
	square := task.Map("square", list, func(ctx context.Context, r *task.Run, x int) (int, error) {
		fmt.Fprintf(r.Output(), "squaring %d at map index %d\n", x, r.MapIndex())
		if x == 3 && failThree.CompareAndSwap(true, false) {
			return 0, errors.New("element 3 is not ready")
		}
		return x * x, nil
	})
	total := task.Go("total", func(ctx context.Context, r *task.Run) (int, error) {
		sq, err := task.Output(r, square)
		sum := 0
		for _, v := range sq {
			sum += v
		}
		return sum, err
	})
	fan.Add(list, square, total)
	square.Then(total)
	return fan
}

func TestMappedAPI(t *testing.T) {
	t.Parallel()
	var failThree atomic.Bool
	failThree.Store(true)
	s := newStack(t, stackOpts{tokens: true, dags: mappedDAGs(&failThree)})
	op := bearer(operatorToken)
	run := s.trigger("fan", "", op)
	s.waitRun("fan", run.RunID, task.RunFailed)
	rp := runPath("fan", run.RunID)
	sq := rp + "/tasks/square"

	// The run's task list: square is one entry, with its summary state
	// (failed comes before success) and its instances counted by state.
	var tis TaskInstanceList
	s.do("GET", rp+"/tasks", nil, &tis, op)
	var ids []string
	for _, ti := range tis.TaskInstances {
		ids = append(ids, ti.TaskID)
	}
	if strings.Join(ids, ",") != "list,square,total" || tis.Total != 3 {
		t.Fatalf("task list = %v (total %d); want list,square,total", ids, tis.Total)
	}
	e := tis.TaskInstances[1]
	if !e.Mapped || e.MapCount != 5 || e.State != task.StateFailed || e.StateCounts[task.StateSuccess] != 4 ||
		e.StateCounts[task.StateFailed] != 1 || e.MapIndex != nil || e.Try != 1 || e.Started == nil || e.Ended == nil {
		t.Errorf("square's entry = %+v", e)
	}
	if tis.TaskInstances[2].State != task.StateUpstreamFailed {
		t.Errorf("total = %+v; want upstream_failed", tis.TaskInstances[2])
	}
	var whole TaskInstance
	s.do("GET", sq, nil, &whole, op)
	if !whole.Mapped || whole.MapCount != 5 || whole.State != task.StateFailed {
		t.Errorf("GET square = %+v; want its summary entry", whole)
	}

	// One instance: its entry, tries, log, download and result.
	var one TaskInstance
	s.do("GET", sq+"?map_index=2", nil, &one, op)
	if one.TaskID != "square" || one.MapIndex == nil || *one.MapIndex != 2 || one.State != task.StateSuccess || one.Mapped {
		t.Errorf("square?map_index=2 = %+v", one)
	}
	var tries TryList
	s.do("GET", sq+"/tries?map_index=3", nil, &tries, op)
	if len(tries.Tries) != 1 || tries.Tries[0].State != task.StateFailed || tries.Tries[0].MapIndex == nil || *tries.Tries[0].MapIndex != 3 ||
		!strings.Contains(tries.Tries[0].Error, "element 3 is not ready") {
		t.Errorf("tries of square[3] = %+v", tries)
	}
	var lg LogChunk
	s.do("GET", sq+"/tries/1/log?map_index=2", nil, &lg, op)
	if !strings.Contains(lg.Content, "squaring 2 at map index 2") || strings.Contains(lg.Content, "squaring 1") || !lg.Finished {
		t.Errorf("log of square[2] = %+v", lg)
	}
	res := s.do("GET", sq+"/tries/1/log/download?map_index=4", nil, nil, op)
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || !strings.Contains(string(body), "squaring 4 at map index 4") ||
		!strings.Contains(res.Header.Get("Content-Disposition"), "square[4]") {
		t.Errorf("download of square[4]: %d %q %q", res.StatusCode, res.Header.Get("Content-Disposition"), body)
	}
	var x XCom
	s.do("GET", sq+"/xcom?map_index=4", nil, &x, op)
	if !x.Present || string(x.Value) != "16" {
		t.Errorf("result of square[4] = %+v", x)
	}
	s.do("GET", sq+"/xcom", nil, &x, op)
	if !x.Present || string(x.Value) != "[0,1,4,null,16]" {
		t.Errorf("result of square = %s; want every instance's, null for the failed one", x.Value)
	}

	// Errors: a missing index is a 404 naming the run, task and index; an
	// index on a task that is not mapped, a bad index, an id with an index
	// in the path and tries without an index are 400s.
	eb := s.expectError(s.do("GET", sq+"?map_index=7", nil, nil, op), 404, CodeNotFound, "")
	if m := eb.Error.Message; !strings.Contains(m, run.RunID) || !strings.Contains(m, `"square"`) || !strings.Contains(m, "map index 7") ||
		!strings.Contains(m, "0 to 4") {
		t.Errorf("404 message %q does not name the run, task, index and the indexes there are", m)
	}
	s.expectError(s.do("GET", sq+"/tries/1/log?map_index=5", nil, nil, op), 404, CodeNotFound, "")
	s.expectError(s.do("POST", sq+"/clear?map_index=9", `{}`, nil, op), 404, CodeNotFound, "")
	s.expectError(s.do("POST", sq+"/mark?map_index=9", `{"state":"success"}`, nil, op), 404, CodeNotFound, "")
	s.expectError(s.do("GET", rp+"/tasks/total?map_index=0", nil, nil, op), 400, CodeBadRequest, "map_index")
	s.expectError(s.do("GET", sq+"?map_index=x", nil, nil, op), 400, CodeBadRequest, "map_index")
	s.expectError(s.do("GET", sq+"?map_index=-2", nil, nil, op), 400, CodeBadRequest, "map_index")
	s.expectError(s.do("GET", rp+"/tasks/"+url.PathEscape("square[2]"), nil, nil, op), 400, CodeBadRequest, "task")
	s.expectError(s.do("GET", sq+"/tries", nil, nil, op), 400, CodeBadRequest, "map_index")
	s.expectError(s.do("GET", sq+"/tries/1/log", nil, nil, op), 400, CodeBadRequest, "map_index")
	s.expectError(s.do("GET", rp+"/tasks/total/instances", nil, nil, op), 400, CodeBadRequest, "task")
	s.expectError(s.do("POST", sq+"/clear?map_index=3", `{}`, nil, bearer(viewerToken)), 403, CodeForbidden, "")

	// The grid: square is one row of its summary state and instance count.
	var g Grid
	s.do("GET", "/api/v1/dags/fan/grid", nil, &g, op)
	if len(g.Tasks) != 3 || g.Tasks[1].ID != "square" || !g.Tasks[1].Mapped || g.Tasks[0].Mapped ||
		g.Cells[1][0] != (Cell{State: task.StateFailed, Try: 1, N: 5}) || g.Cells[0][0].State != task.StateSuccess {
		t.Errorf("grid = %+v", g)
	}
	svg := s.do("GET", "/api/v1/dags/fan/graph.svg?run="+url.QueryEscape(run.RunID), nil, nil, op)
	b, _ := io.ReadAll(svg.Body)
	if !strings.Contains(string(b), `<tspan class="map-count"> [5]</tspan>`) || !strings.Contains(string(b), `data-mapped="5" data-state="failed"`) ||
		!strings.Contains(string(b), "/tasks/square/instances") {
		t.Errorf("graph of the run: no [5] failed node for square:\n%s", b)
	}

	var durs TaskDurations
	s.do("GET", "/api/v1/dags/fan/durations", nil, &durs, op)
	if len(durs.Tasks) != 3 || durs.Tasks[1].TaskID != "square" || durs.Tasks[1].States[0] != task.StateFailed ||
		durs.Tasks[1].Durations[0] == nil || durs.Tasks[1].Tries[0] != 1 {
		t.Errorf("durations = %+v", durs.Tasks)
	}
	s.expectError(s.do("POST", rp+"/clear", `{"tasks":["square[3]"]}`, nil, op), 400, CodeBadRequest, "tasks")

	// Clearing one instance (and what is downstream) through the API runs
	// it again; the others keep their one try.
	var cr ClearResult
	if res := s.do("POST", sq+"/clear?map_index=3", `{"downstream": true}`, &cr, op); res.StatusCode != 200 {
		t.Fatalf("clear square[3]: %d", res.StatusCode)
	}
	if strings.Join(cr.Cleared, ",") != "square[3],total" {
		t.Errorf("cleared %v; want square[3],total", cr.Cleared)
	}
	s.waitRun("fan", run.RunID, task.RunSuccess)
	s.do("GET", sq+"/tries?map_index=3", nil, &tries, op)
	if len(tries.Tries) != 2 || tries.Tries[1].State != task.StateSuccess {
		t.Errorf("tries of square[3] after its clear = %+v", tries)
	}
	s.do("GET", sq+"/tries?map_index=2", nil, &tries, op)
	if len(tries.Tries) != 1 {
		t.Errorf("square[2] ran again after a clear of square[3] only: %+v", tries)
	}
	s.do("GET", rp+"/tasks/total/xcom", nil, &x, op)
	if string(x.Value) != "30" {
		t.Errorf("total = %s; want 30", x.Value)
	}
	s.do("GET", sq, nil, &whole, op)
	if whole.State != task.StateSuccess || whole.StateCounts[task.StateSuccess] != 5 || whole.Try != 2 {
		t.Errorf("square after the clear = %+v", whole)
	}

	// Marking one instance failed changes only it, and the summary.
	var marked TaskInstance
	if res := s.do("POST", sq+"/mark?map_index=0", `{"state":"failed"}`, &marked, op); res.StatusCode != 200 {
		t.Fatalf("mark square[0]: %d", res.StatusCode)
	}
	if marked.MapIndex == nil || *marked.MapIndex != 0 || marked.State != task.StateFailed {
		t.Errorf("marked = %+v", marked)
	}
	s.do("GET", sq, nil, &whole, op)
	if whole.State != task.StateFailed || whole.StateCounts[task.StateFailed] != 1 || whole.StateCounts[task.StateSuccess] != 4 {
		t.Errorf("square after marking square[0] failed = %+v", whole)
	}
	var audit AuditList
	s.do("GET", "/api/v1/audit?dag=fan", nil, &audit, op)
	if len(audit.Entries) < 2 || audit.Entries[0].TaskID != "square[0]" || audit.Entries[1].TaskID != "square[3]" || audit.Entries[1].Action != "clear" {
		t.Errorf("audit = %+v", audit.Entries)
	}
}

func TestMappedInstancePages(t *testing.T) {
	t.Parallel()
	var failThree atomic.Bool
	s := newStack(t, stackOpts{dags: mappedDAGs(&failThree)})
	run := s.trigger("fan", `{"n": 250}`)
	s.waitRun("fan", run.RunID, task.RunSuccess)
	sq := runPath("fan", run.RunID) + "/tasks/square"

	var page InstanceList
	s.do("GET", sq+"/instances", nil, &page)
	if page.Total != 250 || page.Limit != defaultInstancePage || page.Offset != 0 || len(page.Instances) != defaultInstancePage ||
		page.State != task.StateSuccess || page.StateCounts[task.StateSuccess] != 250 || page.TaskID != "square" || page.RunID != run.RunID {
		t.Fatalf("first page = total %d limit %d offset %d, %d instances, state %s %v", page.Total, page.Limit, page.Offset, len(page.Instances), page.State, page.StateCounts)
	}
	for k, ti := range page.Instances { // by map index, not by text ("square[10]" after "square[9]")
		if ti.MapIndex == nil || *ti.MapIndex != k || ti.TaskID != "square" {
			t.Fatalf("instance %d of the first page = %+v", k, ti)
		}
	}
	s.do("GET", sq+"/instances?limit=100&offset=240", nil, &page)
	if len(page.Instances) != 10 || *page.Instances[0].MapIndex != 240 || *page.Instances[9].MapIndex != 249 || page.Total != 250 {
		t.Errorf("last page = %d instances from %v", len(page.Instances), page.Instances[0].MapIndex)
	}
	s.do("GET", sq+"/instances?limit=1000&offset=250", nil, &page)
	if len(page.Instances) != 0 || page.Total != 250 || page.Instances == nil {
		t.Errorf("past the end = %+v", page)
	}
	s.do("GET", sq+"/instances?limit="+itoa(maxInstancePage), nil, &page)
	if len(page.Instances) != 250 {
		t.Errorf("a page of the most = %d instances", len(page.Instances))
	}
	for _, q := range []string{"limit=0", "limit=1001", "limit=x", "offset=-1"} {
		field := strings.Split(q, "=")[0]
		s.expectError(s.do("GET", sq+"/instances?"+q, nil, nil), 400, CodeBadRequest, field)
	}
	s.expectError(s.do("GET", sq+"/instances?map_index=3", nil, nil), 400, CodeBadRequest, "map_index")
	s.expectError(s.do("GET", runPath("fan", "nope")+"/tasks/square/instances", nil, nil), 404, CodeNotFound, "")
	var tis TaskInstanceList
	s.do("GET", runPath("fan", run.RunID)+"/tasks", nil, &tis)
	if tis.Total != 3 || tis.TaskInstances[1].MapCount != 250 {
		t.Errorf("task list of a 250-instance run: total %d, square %+v", tis.Total, tis.TaskInstances[1])
	}
	var x XCom
	s.do("GET", runPath("fan", run.RunID)+"/tasks/total/xcom", nil, &x)
	if string(x.Value) != "5177125" { // the sum of k² for k < 250
		t.Errorf("total = %s", x.Value)
	}
}

// TestMappedSummaryState: the grid, the task list and the instance list
// show the state Airflow shows for a mapped task, the first of failed,
// upstream_failed, up_for_retry, queued, scheduled, deferred, running, none,
// success, skipped, removed that an instance has; removed instances are not
// counted as instances.
func TestMappedSummaryState(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := store.Open(ctx, t.TempDir()+"/m.db", store.Options{Sync: store.SyncNormal})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	d := fanDAG("fan")
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	cases := [][]task.State{
		{task.StateSuccess, task.StateSkipped, task.StateUpForRetry, task.StateSuccess},
		{task.StateSuccess, task.StateSkipped, task.StateSkipped, task.StateSuccess},
		{task.StateSkipped, task.StateSkipped, task.StateSkipped, task.StateSkipped},
		{task.StateSuccess, task.StateUpstreamFailed, task.StateFailed, task.StateUpForRetry},
		{task.StateSuccess, task.StateNone, task.StateSuccess, task.StateSuccess},
	}
	want := []task.State{task.StateUpForRetry, task.StateSuccess, task.StateSkipped, task.StateFailed, task.StateNone}
	rs := fillMapped(t, st, d, len(cases), 4, func(r, k int) task.State { return cases[r][k] })
	srv, err := New(Config{Store: st, DAGs: []*dag.DAG{d}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	g, err := srv.GridData(ctx, d, 25)
	if err != nil {
		t.Fatal(err)
	}
	for c, w := range want {
		if got := g.Cells[1][c]; got.State != w || got.N != 4 {
			t.Errorf("run %d (%v): grid cell %+v; want %s of 4", c, cases[c], got, w)
		}
		tis, err := st.TaskInstances(ctx, rs[c].ID)
		if err != nil {
			t.Fatal(err)
		}
		list := srv.orderTIs(d, rs[c], tis)
		if e := list.TaskInstances[1]; e.TaskID != "square" || e.State != w || e.MapCount != 4 || list.Total != 3 {
			t.Errorf("run %d: task list entry %+v", c, e)
		}
	}
	// The same counts through the store's grouped query and through the
	// instances' own rows.
	counts, err := st.InstanceCounts(ctx, rs[3].ID, "square")
	if err != nil {
		t.Fatal(err)
	}
	if counts[task.StateFailed] != 1 || counts[task.StateSuccess] != 1 || counts[task.StateUpForRetry] != 1 || len(counts) != 4 {
		t.Errorf("counts of run 3 = %v", counts)
	}
	rec := httptest.NewRecorder()
	srv.SetReady(nil)
	srv.Handler().ServeHTTP(rec, mustReq(t, "/api/v1/dags/fan/runs/"+url.PathEscape(rs[0].RunID)+"/tasks/square/instances?limit=2&offset=1"))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"mapIndex":1`) || !strings.Contains(rec.Body.String(), `"mapIndex":2`) ||
		strings.Contains(rec.Body.String(), `"mapIndex":0`) || !strings.Contains(rec.Body.String(), `"state":"up_for_retry","stateCounts"`) {
		t.Errorf("instances page: %d %s", rec.Code, rec.Body)
	}
}
