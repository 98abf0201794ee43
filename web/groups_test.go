package web

import (
	"context"
	"errors"
	"io"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/operators"
	"github.com/trellisdag/trellis/task"
)

// groupsDAG is lakehouse: extract, then the group quality (check_nulls and
// check_range, and the nested group quality.deep: profile then compare,
// after check_nulls), then the group model (the setup create_cluster, train,
// the teardown delete_cluster), then publish. With conf {"fail": true}
// quality.check_range fails.
func groupsDAG() *dag.DAG {
	d := dag.New("lakehouse", dag.DefaultRetries(0, 0), dag.Description("task groups, a setup and a teardown"),
		dag.Params(dag.Param{Name: "fail", Default: false, Description: "make quality.check_range fail"}))
	ok := func(context.Context, *task.Run) (int, error) { return 0, nil }
	extract := task.Go("extract", ok)
	quality := task.NewGroup("quality")
	nulls := task.Go("check_nulls", ok)
	rng := task.Go("check_range", func(_ context.Context, r *task.Run) (int, error) {
		if r.Params()["fail"] == true {
			return 0, errors.New("amount out of range in 3 rows")
		}
		return 0, nil
	})
	quality.Add(nulls, rng)
	deep := quality.Group("deep")
	profile, compare := task.Go("profile", ok), task.Go("compare", ok)
	deep.Add(profile, compare)
	profile.Then(compare)
	nulls.Then(deep)
	model := task.NewGroup("model")
	create := task.Go("create_cluster", ok, task.AsSetup())
	train := task.Go("train", ok)
	del := task.Go("delete_cluster", ok, task.AsTeardown(create))
	model.Add(create, train, del)
	task.Chain(create, train, del)
	publish := operators.Bash("publish", `echo published`)
	d.Add(extract, quality, model, publish)
	task.Chain(extract, quality, model, publish)
	return d
}

func withGroups(s *stack) []*dag.DAG { return append(testDAGs(s), groupsDAG()) }

// TestAPIGridGroups: the grid's rows keep a group's tasks together (a nested
// group's inside it), name each task's group and its setup or teardown, and
// list the groups with their rows and their summary state per run, by
// Airflow's priority.
func TestAPIGridGroups(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{dags: withGroups})
	good := s.trigger("lakehouse", "")
	s.waitRun("lakehouse", good.RunID, task.RunSuccess)
	bad := s.trigger("lakehouse", `{"fail": true}`)
	s.waitRun("lakehouse", bad.RunID, task.RunFailed)

	var g Grid
	if res := s.do("GET", "/api/v1/dags/lakehouse/grid", nil, &g); res.StatusCode != 200 {
		t.Fatalf("grid: %d", res.StatusCode)
	}
	var rows []string
	for _, tk := range g.Tasks {
		r := tk.ID + "@" + tk.Group
		if tk.Setup {
			r += " setup"
		}
		if tk.Teardown {
			r += " teardown"
		}
		rows = append(rows, r)
	}
	// check_nulls and check_range are both on level 1: either may come first.
	want := "extract@,quality.check_nulls@quality,quality.check_range@quality,quality.deep.profile@quality.deep,quality.deep.compare@quality.deep," +
		"model.create_cluster@model setup,model.train@model,model.delete_cluster@model teardown,publish@"
	if got := strings.Join(rows, ","); got != want && got != strings.Replace(want, "quality.check_nulls@quality,quality.check_range@quality", "quality.check_range@quality,quality.check_nulls@quality", 1) {
		t.Errorf("rows = %s", got)
	}
	if len(g.Runs) != 2 || g.Runs[0].RunID != good.RunID {
		t.Fatalf("runs = %+v", g.Runs)
	}
	type sum struct {
		ID, Parent      string
		Depth, Row, Len int
		States          string
	}
	var groups []sum
	for _, gr := range g.Groups {
		var st []string
		for _, x := range gr.States {
			st = append(st, string(x))
		}
		groups = append(groups, sum{gr.ID, gr.Parent, gr.Depth, gr.Row, gr.Tasks, strings.Join(st, ",")})
	}
	wantGroups := []sum{
		{"quality", "", 0, 1, 4, "success,failed"},
		{"quality.deep", "quality", 1, 3, 2, "success,success"},
		{"model", "", 0, 5, 3, "success,upstream_failed"},
	}
	if !slices.Equal(groups, wantGroups) {
		t.Errorf("groups = %+v\nwant %+v", groups, wantGroups)
	}
	// A DAG without groups: no groups, rows in topological order.
	var etl Grid
	s.do("GET", "/api/v1/dags/etl/grid", nil, &etl)
	if etl.Groups != nil || len(etl.Tasks) != 3 || etl.Tasks[0].ID != "extract" || etl.Tasks[2].ID != "report" {
		t.Errorf("etl grid = %+v", etl)
	}
}

// TestGroupState: Airflow's priority, missing instances ignored.
func TestGroupState(t *testing.T) {
	t.Parallel()
	of := func(states ...task.State) task.State { return groupState(slices.Values(states)) }
	for _, c := range []struct {
		in   []task.State
		want task.State
	}{
		{nil, ""},
		{[]task.State{"", ""}, ""},
		{[]task.State{"", task.StateSuccess}, task.StateSuccess},
		{[]task.State{task.StateSuccess, task.StateSkipped, task.StateRemoved}, task.StateSuccess},
		{[]task.State{task.StateSkipped, task.StateRemoved}, task.StateSkipped},
		{[]task.State{task.StateSuccess, task.StateNone}, task.StateNone},
		{[]task.State{task.StateRunning, task.StateNone, task.StateSuccess}, task.StateRunning},
		{[]task.State{task.StateRunning, task.StateDeferred}, task.StateDeferred},
		{[]task.State{task.StateRunning, task.StateScheduled, task.StateQueued}, task.StateQueued},
		{[]task.State{task.StateQueued, task.StateUpForRetry}, task.StateUpForRetry},
		{[]task.State{task.StateUpForRetry, task.StateUpstreamFailed}, task.StateUpstreamFailed},
		{[]task.State{task.StateUpstreamFailed, task.StateFailed, task.StateSuccess}, task.StateFailed},
		{[]task.State{task.StateSuccess, "some_new_state"}, task.StateSuccess},
		{[]task.State{task.StateRemoved, "some_new_state"}, task.StateRemoved},
		{[]task.State{"", "some_new_state"}, "some_new_state"},
	} {
		if got := of(c.in...); got != c.want {
			t.Errorf("groupState(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestAPIGraphCollapsed: the graph's collapsed parameter draws each group as
// one box coloured by the run, and is validated (a 400 naming the field).
func TestAPIGraphCollapsed(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{dags: withGroups})
	bad := s.trigger("lakehouse", `{"fail": true}`)
	s.waitRun("lakehouse", bad.RunID, task.RunFailed)
	get := func(q string) string {
		t.Helper()
		res := s.do("GET", "/api/v1/dags/lakehouse/graph.svg?"+q, nil, nil)
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != "image/svg+xml" {
			t.Fatalf("%s: %d %s", q, res.StatusCode, b)
		}
		return string(b)
	}
	run := "run=" + url.QueryEscape(bad.RunID)
	full := get(run)
	if n := strings.Count(full, `class="node `); n != 9 || strings.Contains(full, "data-group") || len(edgeTitles(full)) != 10 ||
		!strings.Contains(full, `>go · setup</text>`) || !strings.Contains(full, `>go · teardown</text>`) {
		t.Errorf("the expanded graph has %d nodes:\n%s", n, full)
	}
	svg := get(run + "&collapsed=quality,model")
	for _, want := range []string{
		`class="node group st-failed" data-group="quality" data-tasks="4" data-state="failed"`,
		`class="node group st-upstream_failed" data-group="model" data-tasks="3" data-state="upstream_failed"`,
		`>group · 4 tasks</text>`, `>group · 3 tasks</text>`,
		`expand=quality"`, `collapsed groups: model, quality</title>`,
	} {
		if !strings.Contains(svg, want) {
			t.Errorf("collapsed graph lacks %s:\n%s", want, svg)
		}
	}
	if n := strings.Count(svg, `class="node `); n != 4 {
		t.Errorf("collapsed graph has %d boxes, want 4 (extract, quality, model, publish)", n)
	}
	if got := edgeTitles(svg); !slices.Equal(got, []string{"extract → quality", "quality → model", "model → publish"}) {
		t.Errorf("collapsed graph edges = %q", got)
	}
	// Repeated parameters, spaces, empty items and a nested group inside a
	// collapsed one.
	if again := get(run + "&collapsed=model&collapsed=%20quality%20,,quality.deep"); again != svg {
		t.Errorf("the same groups in another spelling draw another graph")
	}
	// Without a run, a collapsed group is white and still links to its
	// expansion.
	if plain := get("collapsed=quality.deep"); !strings.Contains(plain, `href="#/dags/lakehouse/graph?expand=quality.deep" class="node group st-none"`) {
		t.Errorf("no run:\n%s", plain)
	}
	for _, q := range []string{"collapsed=nope", "collapsed=quality,quality.nope", "collapsed=extract",
		"collapsed=" + strings.Repeat("quality,", 201), "collapsed=" + strings.Repeat("x", 9000)} {
		eb := s.expectError(s.do("GET", "/api/v1/dags/lakehouse/graph.svg?"+q, nil, nil), 400, CodeBadRequest, "collapsed")
		if !strings.Contains(eb.Error.Message, "collapsed") {
			t.Errorf("%.40s: %q does not name the field", q, eb.Error.Message)
		}
	}
	eb := s.expectError(s.do("GET", "/api/v1/dags/lakehouse/graph.svg?collapsed=%3Cb%3E", nil, nil), 400, CodeBadRequest, "collapsed")
	if !strings.Contains(eb.Error.Message, `no task group "<b>"`) {
		t.Errorf("unknown group: %q", eb.Error.Message)
	}
	// A DAG without groups has none to collapse.
	s.expectError(s.do("GET", "/api/v1/dags/etl/graph.svg?collapsed=quality", nil, nil), 400, CodeBadRequest, "collapsed")
	if res := s.do("GET", "/api/v1/dags/etl/graph.svg?collapsed=", nil, nil); res.StatusCode != 200 {
		t.Errorf("an empty collapsed: %d", res.StatusCode)
	}
}
