package store

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/trellisdag/trellis/task"
)

// These tests cover the Store methods that the rest of the suite does not call
// (their callers' packages test them on SQLite only), so that each runs on every
// backend.

func testOutbox(t *testing.T, be backend) {
	t.Parallel()
	s, _ := setup(t, be)
	ctx := context.Background()
	if _, ok, err := s.NextOutbox(ctx); ok || err != nil {
		t.Fatalf("NextOutbox of an empty outbox = %v, %v", ok, err)
	}
	r := mkRun(t, s, "r1", "a")
	early, late := t0, t0.Add(time.Hour)
	var b Batch
	b.PutOutbox(OutboxEntry{Key: "k1", DAGID: "d", Run: r.ID, Kind: "callback", Event: []byte(`{"n":1}`), Created: early, NextAt: late})
	b.PutOutbox(OutboxEntry{Key: "k2", DAGID: "d", Kind: "alert", Event: []byte(`{"n":2}`), Created: early})
	if err := s.Apply(ctx, &b); err != nil {
		t.Fatal(err)
	}
	// The same key again is ignored.
	if err := s.PutOutbox(ctx, OutboxEntry{Key: "k1", DAGID: "d", Kind: "callback", Event: []byte(`{"n":9}`)}); err != nil {
		t.Fatal(err)
	}
	if at, ok, err := s.NextOutbox(ctx); !ok || err != nil || !at.Equal(early) {
		t.Fatalf("NextOutbox = %v, %v, %v; want %v", at, ok, err, early)
	}
	due, err := s.DueOutbox(ctx, early, 10)
	if err != nil || len(due) != 1 || due[0].Key != "k2" || due[0].Run != 0 || string(due[0].Event) != `{"n":2}` {
		t.Fatalf("DueOutbox at %v = %+v, %v; want k2 only", early, due, err)
	}
	due, err = s.DueOutbox(ctx, late, 10)
	if err != nil || len(due) != 2 || due[1].Key != "k1" || due[1].Run != r.ID || string(due[1].Event) != `{"n":1}` {
		t.Fatalf("DueOutbox at %v = %+v, %v; want k2 then k1 (first written)", late, due, err)
	}
	if err := s.OutboxDone(ctx, due[0].ID, late, "", time.Time{}, false); err != nil {
		t.Fatal(err)
	}
	if err := s.OutboxDone(ctx, due[1].ID, late, "boom", late.Add(time.Minute), false); err != nil {
		t.Fatal(err)
	}
	if d, p, f, err := s.OutboxStats(ctx); d != 1 || p != 1 || f != 0 || err != nil {
		t.Errorf("OutboxStats after one delivery and one retry = %d, %d, %d, %v", d, p, f, err)
	}
	due, err = s.DueOutbox(ctx, late.Add(time.Minute), 10)
	if err != nil || len(due) != 1 || due[0].Attempts != 1 || due[0].LastError != "boom" {
		t.Fatalf("DueOutbox after a failed attempt = %+v, %v", due, err)
	}
	if err := s.OutboxDone(ctx, due[0].ID, late, "gone", time.Time{}, true); err != nil {
		t.Fatal(err)
	}
	if d, p, f, err := s.OutboxStats(ctx); d != 1 || p != 0 || f != 1 || err != nil {
		t.Errorf("OutboxStats after giving up = %d, %d, %d, %v; want 1 delivered, 1 given up", d, p, f, err)
	}
}

func testPoolsAndVersions(t *testing.T, be backend) {
	t.Parallel()
	s, _ := setup(t, be)
	ctx := context.Background()
	for _, p := range []struct {
		name  string
		slots int
	}{{"db", 3}, {"api", 1}, {"db", 5}} {
		if err := s.SetPoolSlots(ctx, p.name, p.slots); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := s.PoolSlots(ctx); err != nil || len(got) != 2 || got["db"] != 5 || got["api"] != 1 {
		t.Errorf("PoolSlots = %v, %v", got, err)
	}
	if err := s.SetPoolSlots(ctx, "db", -1); err == nil {
		t.Error("a negative pool size was stored")
	}
	if _, err := s.DAGVersion(ctx, "d", "v1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("DAGVersion of an unknown version = %v, want ErrNotFound", err)
	}
	for _, def := range []string{`{"v":1}`, `{"v":"changed"}`} { // the second store changes nothing
		if err := s.PutDAGVersion(ctx, "d", "v1", []byte(def)); err != nil {
			t.Fatal(err)
		}
	}
	if def, err := s.DAGVersion(ctx, "d", "v1"); err != nil || string(def) != `{"v":1}` {
		t.Errorf("DAGVersion = %s, %v", def, err)
	}
	for _, id := range []string{"b", "a"} {
		if err := s.PutDAG(ctx, id, []byte(`{}`), id == "b"); err != nil {
			t.Fatal(err)
		}
	}
	ds, err := s.DAGs(ctx)
	if err != nil || len(ds) != 2 || ds[0].ID != "a" || ds[0].Paused || !ds[1].Paused {
		t.Errorf("DAGs = %+v, %v", ds, err)
	}
}

func testMappedInstances(t *testing.T, be backend) {
	t.Parallel()
	s, _ := setup(t, be)
	ctx := context.Background()
	r := mkRun(t, s, "r1", "m", "m2")
	var b Batch
	b.Expand(Expansion{Run: r.ID, TaskID: "m", Count: 3, MaxTries: 2})
	b.SetTI(TIChange{From: task.StateNone, TI: TaskInstance{Run: r.ID, TaskID: task.InstanceID("m", 1), State: task.StateScheduled, MaxTries: 2}})
	if err := s.Apply(ctx, &b); err != nil {
		t.Fatal(err)
	}
	is, err := s.Instances(ctx, r.ID, "m")
	if err != nil || len(is) != 3 {
		t.Fatalf("Instances = %+v, %v", is, err)
	}
	for i, ti := range is {
		want := task.StateNone
		if i == 1 {
			want = task.StateScheduled
		}
		if ti.TaskID != task.InstanceID("m", i) || ti.State != want || ti.MaxTries != 2 {
			t.Errorf("instance %d = %+v", i, ti)
		}
	}
	// "m2" sorts after "m[": not one of m's instances.
	if is, err := s.Instances(ctx, r.ID, "m2"); err != nil || len(is) != 0 {
		t.Errorf("Instances of an unmapped task = %+v, %v", is, err)
	}
	// A shorter list after a clear: instances past it are removed.
	b.Reset()
	b.Expand(Expansion{Run: r.ID, TaskID: "m", Count: 2, MaxTries: 2})
	b.SetTI(TIChange{From: task.StateScheduled, TI: TaskInstance{Run: r.ID, TaskID: task.InstanceID("m", 1), State: task.StateNone, MaxTries: 2}})
	if err := s.Apply(ctx, &b); err != nil {
		t.Fatal(err)
	}
	is, err = s.Instances(ctx, r.ID, "m")
	if err != nil || len(is) != 3 || is[2].State != task.StateRemoved || is[0].State != task.StateNone {
		t.Errorf("Instances after a shorter expansion = %+v, %v", is, err)
	}
}

func testMarkAndCount(t *testing.T, be backend) {
	t.Parallel()
	s, _ := setup(t, be)
	ctx := context.Background()
	r := mkRun(t, s, "r1", "a", "b")
	apply(t, s, rc(r.ID, task.RunQueued, task.RunRunning, t0),
		ch(task.StateNone, TaskInstance{Run: r.ID, TaskID: "a", State: task.StateScheduled, MaxTries: 1}),
		ch(task.StateScheduled, TaskInstance{Run: r.ID, TaskID: "a", State: task.StateQueued, Try: 1, MaxTries: 1}))
	apply(t, s, ch(task.StateQueued, TaskInstance{Run: r.ID, TaskID: "a", State: task.StateRunning, Try: 1, MaxTries: 1, Started: t0}))
	from, err := s.MarkTask(ctx, r.ID, "a", task.StateFailed, "by hand")
	if err != nil || from != task.StateRunning {
		t.Fatalf("MarkTask = %s, %v", from, err)
	}
	if ti := getTI(t, s, r.ID, "a"); ti.State != task.StateFailed || ti.Error != "by hand" {
		t.Errorf("marked task = %+v", ti)
	}
	ts, err := s.TriesOfRun(ctx, r.ID)
	if err != nil || len(ts) != 1 || ts[0].State != task.StateFailed || ts[0].Error != "marked failed while it ran" {
		t.Errorf("TriesOfRun = %+v, %v", ts, err)
	}
	if n, err := s.InterruptedStreak(ctx, r.ID, "a", "marked"); n != 1 || err != nil {
		t.Errorf("InterruptedStreak = %d, %v", n, err)
	}
	if _, err := s.MarkTask(ctx, r.ID, "nope", task.StateSuccess, ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("MarkTask of an unknown task = %v", err)
	}
	c, err := s.CountStates(ctx)
	if err != nil || c.Runs[task.RunRunning] != 1 || c.TaskInstances[task.StateFailed] != 1 || c.TaskInstances[task.StateNone] != 1 ||
		c.Tries[task.StateFailed] != 1 {
		t.Errorf("CountStates = %+v, %v", c, err)
	}
	if n, err := s.CountRuns(ctx, RunFilter{DAGID: "d"}); n != 1 || err != nil {
		t.Errorf("CountRuns = %d, %v", n, err)
	}
	tis, err := s.TaskInstancesOfRuns(ctx, []int64{r.ID})
	if err != nil || len(tis[r.ID]) != 2 {
		t.Errorf("TaskInstancesOfRuns = %+v, %v", tis, err)
	}
	for i, a := range []string{"trigger", "clear", "pause"} {
		dag := "d"
		if i == 2 {
			dag = "other"
		}
		if _, err := s.AddAudit(ctx, AuditEntry{Actor: "ann", Action: a, DAGID: dag, Outcome: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
	es, total, err := s.Audit(ctx, AuditFilter{DAGID: "d", Limit: 1})
	if err != nil || total != 2 || len(es) != 1 || es[0].Action != "clear" || es[0].Actor != "ann" {
		t.Errorf("Audit = %+v, %d, %v; want the newest of d's 2", es, total, err)
	}
}

func testRunsByDate(t *testing.T, be backend) {
	t.Parallel()
	s, _ := setup(t, be)
	ctx := context.Background()
	day := func(i int) time.Time { return t0.Add(time.Duration(i) * 24 * time.Hour) }
	var runs []Run
	for i := range 3 {
		runs = append(runs, Run{DAGID: "d", RunID: "scheduled__" + day(i).Format(time.RFC3339), Type: task.RunScheduled, State: task.RunQueued,
			LogicalDate: day(i), IntervalStart: day(i), IntervalEnd: day(i + 1)})
	}
	created, err := s.CreateRuns(ctx, []RunGroup{{DAGID: "d", Runs: runs, Tasks: []TaskSeed{{TaskID: "a", MaxTries: 1}}, Advance: true}})
	if err != nil || len(created) != 3 {
		t.Fatalf("CreateRuns = %+v, %v", created, err)
	}
	// Again: every run exists, none is created.
	if again, err := s.CreateRuns(ctx, []RunGroup{{DAGID: "d", Runs: runs}}); err != nil || len(again) != 0 {
		t.Errorf("CreateRuns of existing runs = %+v, %v", again, err)
	}
	if d, err := s.DAG(ctx, "d"); err != nil || !d.LastIntervalEnd.Equal(day(3)) {
		t.Errorf("last interval after CreateRuns = %+v, %v", d, err)
	}
	apply(t, s, rc(created[0].ID, task.RunQueued, task.RunSuccess, day(1)))
	if at, err := s.RunsAt(ctx, "d", day(1)); err != nil || len(at) != 1 || at[0].ID != created[1].ID {
		t.Errorf("RunsAt = %+v, %v", at, err)
	}
	if p, ok, err := s.PreviousRun(ctx, "d", day(2), task.RunSuccess); !ok || err != nil || p.ID != created[0].ID {
		t.Errorf("PreviousRun(success) = %+v, %v, %v", p, ok, err)
	}
	if p, ok, err := s.PreviousRun(ctx, "d", day(2), ""); !ok || err != nil || p.ID != created[1].ID {
		t.Errorf("PreviousRun = %+v, %v, %v", p, ok, err)
	}
	if st, err := s.RunStatesAt(ctx, "d", day(0)); err != nil || !slices.Equal(st, []task.RunState{task.RunSuccess}) {
		t.Errorf("RunStatesAt = %v, %v", st, err)
	}
	if st, err := s.TaskStatesAt(ctx, "d", "a", day(0)); err != nil || !slices.Equal(st, []task.State{task.StateNone}) {
		t.Errorf("TaskStatesAt = %v, %v", st, err)
	}
	if n, err := s.CountOldRuns(ctx, "d", day(5)); err != nil || n != 0 {
		// The only finished run is the DAG's latest successful one, which is kept.
		t.Errorf("CountOldRuns = %d, %v; want 0", n, err)
	}
	added, err := s.ReconcileRun(ctx, created[2].ID, Reconcile{Add: []TaskSeed{{TaskID: "b", MaxTries: 2}}, Remove: []string{"a"}, DAGVersion: "v2"})
	if err != nil || added != 1 {
		t.Fatalf("ReconcileRun = %d, %v", added, err)
	}
	if ti := getTI(t, s, created[2].ID, "a"); ti.State != task.StateRemoved {
		t.Errorf("removed task = %+v", ti)
	}
	if r := getRun(t, s, created[2].ID); r.DAGVersion != "v2" {
		t.Errorf("run after ReconcileRun = %+v", r)
	}
}

func testAssetListings(t *testing.T, be backend) {
	t.Parallel()
	s, _ := setup(t, be)
	ctx := context.Background()
	if err := s.RegisterAssetConsumer(ctx, "cons", []string{"s3://a", "s3://b"}); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"s3://b", "s3://a", "s3://a"} {
		if _, err := s.PostAssetEvent(ctx, AssetEvent{URI: u, Source: "api:t", Extra: []byte(`{"rows":3}`)}); err != nil {
			t.Fatal(err)
		}
	}
	ready, err := s.AssetReadiness(ctx, "cons", []string{"s3://a", "s3://b", "s3://c"})
	if err != nil || !ready["s3://a"] || !ready["s3://b"] || ready["s3://c"] {
		t.Errorf("AssetReadiness = %v, %v", ready, err)
	}
	as, err := s.Assets(ctx)
	if err != nil || len(as) != 2 || as[0].URI != "s3://a" {
		t.Errorf("Assets = %+v, %v", as, err)
	}
	evs, total, err := s.AssetEvents(ctx, "s3://a", 1, 0)
	if err != nil || total != 2 || len(evs) != 1 || evs[0].URI != "s3://a" || string(evs[0].Extra) != `{"rows":3}` {
		t.Errorf("AssetEvents = %+v, %d, %v", evs, total, err)
	}
}

// testXComText: a result is kept as the JSON text given (compacted), on every
// backend: key order, number spelling and escapes stay as they were.
func testXComText(t *testing.T, be backend) {
	t.Parallel()
	s, _ := setup(t, be)
	r := mkRun(t, s, "r1", "a")
	apply(t, s, xc(r.ID, "a", `{"b": 1e300, "a":[1.0, 2], "\u00e9":"x\"y"}`))
	v, ok, err := s.XCom(context.Background(), r.ID, "a")
	if want := `{"b":1e300,"a":[1.0,2],"\u00e9":"x\"y"}`; err != nil || !ok || string(v) != want {
		t.Errorf("XCom = %s, %v, %v; want %s", v, ok, err, want)
	}
}
