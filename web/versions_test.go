package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/internal/store"
	"github.com/trellisdag/trellis/task"
)

// TestOldRunKeepsItsGraphAndRemovedTasks: a finished run made by an earlier
// binary, whose DAG had a task "legacy" that this binary's DAG lacks, is drawn
// as the graph it ran with (the stored version), lists legacy as removed, and
// serves legacy's instance, tries and log; a task the run never had is 404.
func TestOldRunKeepsItsGraphAndRemovedTasks(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	ctx := context.Background()

	// The earlier definition: etl's tasks plus legacy after extract.
	v1 := dag.New("etl")
	noopTask := func(id string) task.Task {
		return task.Go(id, func(context.Context, *task.Run) (struct{}, error) { return struct{}{}, nil })
	}
	extract, count, report, legacy := noopTask("extract"), noopTask("count"), noopTask("report"), noopTask("legacy")
	v1.Add(extract, count, report, legacy)
	extract.Then(count).Then(report)
	extract.Then(legacy)
	if err := v1.Validate(); err != nil {
		t.Fatal(err)
	}
	def, err := json.Marshal(v1.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.st.PutDAGVersion(ctx, "etl", v1.Version(), def); err != nil {
		t.Fatal(err)
	}
	ld := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	ids := []string{"extract", "count", "report", "legacy"}
	var seeds []store.TaskSeed
	for _, id := range ids {
		seeds = append(seeds, store.TaskSeed{TaskID: id, MaxTries: 1})
	}
	run, err := s.st.CreateRun(ctx, store.Run{DAGID: "etl", RunID: "old", Type: task.RunManual, State: task.RunSuccess,
		LogicalDate: ld, IntervalStart: ld, IntervalEnd: ld.Add(24 * time.Hour), DAGVersion: v1.Version()}, seeds)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	for _, id := range ids {
		ti := func(st task.State, try int) store.TaskInstance {
			return store.TaskInstance{Run: run.ID, TaskID: id, State: st, Try: try, MaxTries: 1, Executor: "local", Started: at}
		}
		for _, c := range []store.TIChange{
			{From: task.StateNone, TI: ti(task.StateScheduled, 0), At: at},
			{From: task.StateScheduled, TI: ti(task.StateQueued, 1), At: at},
			{From: task.StateQueued, TI: func() store.TaskInstance { x := ti(task.StateSuccess, 1); x.Ended = at; return x }(), At: at},
		} {
			var b store.Batch
			b.SetTI(c)
			if err := s.st.Apply(ctx, &b); err != nil {
				t.Fatalf("%s: %v", id, err)
			}
		}
		w := s.st.TryLog(run.ID, id, 1)
		fmt.Fprintf(w, "%s ran under the earlier definition\n", id)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	rp := runPath("etl", "old")

	res := s.do("GET", "/api/v1/dags/etl/graph.svg?run=old", nil, nil)
	svg, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || strings.Count(string(svg), "<rect") != 4 || !strings.Contains(string(svg), ">legacy</text>") ||
		!strings.Contains(string(svg), "DAG version "+v1.Version()) {
		t.Errorf("graph of the old run: %d, want its own 4-task graph with version %s:\n%s", res.StatusCode, v1.Version(), svg)
	}
	res = s.do("GET", "/api/v1/dags/etl/graph.svg", nil, nil)
	if cur, _ := io.ReadAll(res.Body); strings.Count(string(cur), "<rect") != 3 || strings.Contains(string(cur), "legacy") {
		t.Errorf("graph of the DAG: want this binary's 3 tasks:\n%s", cur)
	}

	var tis TaskInstanceList
	s.do("GET", rp+"/tasks", nil, &tis)
	if tis.Total != 4 || tis.TaskInstances[3].TaskID != "legacy" || !tis.TaskInstances[3].Removed {
		t.Errorf("task instances = %+v, want legacy last and removed", tis)
	}
	var ti TaskInstance
	if res := s.do("GET", rp+"/tasks/legacy", nil, &ti); res.StatusCode != 200 || ti.State != task.StateSuccess || !ti.Removed || ti.Try != 1 {
		t.Errorf("legacy: %d %+v", res.StatusCode, ti)
	}
	var tries TryList
	if s.do("GET", rp+"/tasks/legacy/tries", nil, &tries); len(tries.Tries) != 1 {
		t.Errorf("tries of legacy = %+v", tries)
	}
	var lg LogChunk
	if res := s.do("GET", rp+"/tasks/legacy/tries/1/log", nil, &lg); res.StatusCode != 200 || !strings.Contains(lg.Content, "legacy ran under the earlier definition") {
		t.Errorf("log of legacy: %d %+v", res.StatusCode, lg)
	}
	var pod PodInfo
	if s.do("GET", rp+"/tasks/legacy/tries/1/pod", nil, &pod); pod.Available || !strings.Contains(pod.Reason, "no longer has it") {
		t.Errorf("pod of legacy = %+v", pod)
	}
	var e ErrorBody
	if res := s.do("GET", rp+"/tasks/nope", nil, &e); res.StatusCode != 404 || e.Error == nil || !strings.Contains(e.Error.Message, `run "old" never had it`) {
		t.Errorf("a task the run never had: %d %+v", res.StatusCode, e.Error)
	}
	if res := s.do("GET", "/api/v1/dags/etl/runs/"+url.PathEscape("nope")+"/tasks/legacy", nil, nil); res.StatusCode != 404 {
		t.Errorf("legacy of a run that does not exist: %d", res.StatusCode)
	}
	// Writes still need a task of this DAG.
	if res := s.do("POST", rp+"/tasks/legacy/mark", `{"state":"failed"}`, nil); res.StatusCode != 404 {
		t.Errorf("mark legacy: %d, want 404", res.StatusCode)
	}
}
