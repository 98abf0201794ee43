package store

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/trellisdag/trellis/task"
)

var t0 = time.Date(2024, 1, 2, 3, 4, 5, 6000, time.UTC) // whole microseconds: what the store keeps

// mkRun creates a queued manual run of DAG "d" with the given tasks (one try each).
func mkRun(t *testing.T, s *Store, runID string, tasks ...string) Run {
	t.Helper()
	seeds := make([]TaskSeed, len(tasks))
	for i, id := range tasks {
		seeds[i] = TaskSeed{TaskID: id, MaxTries: 1}
	}
	r, err := s.CreateRun(context.Background(), Run{DAGID: "d", RunID: runID, Type: task.RunManual, State: task.RunQueued,
		LogicalDate: t0, IntervalStart: t0, IntervalEnd: t0}, seeds)
	if err != nil {
		t.Fatalf("CreateRun(%s): %v", runID, err)
	}
	return r
}

func getTI(t *testing.T, s *Store, run int64, id string) TaskInstance {
	t.Helper()
	ti, err := s.TaskInstance(context.Background(), run, id)
	if err != nil {
		t.Fatalf("TaskInstance(%d, %s): %v", run, id, err)
	}
	return ti
}

func getRun(t *testing.T, s *Store, id int64) Run {
	t.Helper()
	r, err := s.RunByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func tries(t *testing.T, s *Store, run int64, id string) []Try {
	t.Helper()
	ts, err := s.Tries(context.Background(), run, id)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// change is one element of a batch.
type change func(*Batch)

func ch(from task.State, ti TaskInstance) change {
	return func(b *Batch) { b.SetTI(TIChange{From: from, TI: ti, At: t0}) }
}

func rc(run int64, from, to task.RunState, at time.Time) change {
	return func(b *Batch) { b.SetRun(RunChange{Run: run, From: from, To: to, At: at}) }
}

func xc(run int64, id, value string) change {
	return func(b *Batch) { b.PutXCom(run, id, []byte(value)) }
}

func batch(cs ...change) *Batch {
	var b Batch
	for _, c := range cs {
		c(&b)
	}
	return &b
}

func apply(t *testing.T, s *Store, cs ...change) {
	t.Helper()
	if err := s.Apply(context.Background(), batch(cs...)); err != nil {
		t.Fatalf("Apply: %v", err)
	}
}

func testCreateRun(t *testing.T, be backend) {
	t.Parallel()
	s, _ := setup(t, be)
	ctx := context.Background()
	start, end := t0, t0.Add(24*time.Hour)
	in := Run{DAGID: "etl", RunID: "scheduled__2024-01-02", Type: task.RunScheduled, State: task.RunQueued,
		LogicalDate: start, IntervalStart: start, IntervalEnd: end, Conf: json.RawMessage(`{"table":"users"}`)}
	r, err := s.CreateRun(ctx, in, []TaskSeed{{TaskID: "load", MaxTries: 3}, {TaskID: "extract", MaxTries: 1}, {TaskID: "report", MaxTries: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if r.ID == 0 || r.Created.IsZero() {
		t.Fatalf("CreateRun returned %+v; want an ID and a creation time", r)
	}
	got, err := s.Run(ctx, "etl", "scheduled__2024-01-02")
	if err != nil {
		t.Fatal(err)
	}
	want := in
	want.ID, want.Created = r.ID, r.Created.Truncate(time.Microsecond).UTC()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Run =\n%+v\nwant\n%+v", got, want)
	}
	if byID := getRun(t, s, r.ID); !reflect.DeepEqual(byID, got) {
		t.Errorf("RunByID = %+v, want %+v", byID, got)
	}
	tis, err := s.TaskInstances(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantTIs := []TaskInstance{
		{Run: r.ID, TaskID: "extract", State: task.StateNone, MaxTries: 1},
		{Run: r.ID, TaskID: "load", State: task.StateNone, MaxTries: 3},
		{Run: r.ID, TaskID: "report", State: task.StateNone, MaxTries: 2},
	}
	if !reflect.DeepEqual(tis, wantTIs) {
		t.Errorf("TaskInstances =\n%+v\nwant (by task id)\n%+v", tis, wantTIs)
	}
	for _, c := range []struct {
		name string
		err  error
	}{
		{"Run", func() error { _, err := s.Run(ctx, "etl", "nope"); return err }()},
		{"RunByID", func() error { _, err := s.RunByID(ctx, 999); return err }()},
		{"TaskInstance", func() error { _, err := s.TaskInstance(ctx, r.ID, "nope"); return err }()},
	} {
		if !errors.Is(c.err, ErrNotFound) {
			t.Errorf("%s of a missing row = %v, want ErrNotFound", c.name, c.err)
		}
	}
}

func testCreateRunDuplicate(t *testing.T, be backend) {
	t.Parallel()
	s, _ := setup(t, be)
	ctx := context.Background()
	first := mkRun(t, s, "r1", "a", "b")
	// The same run id again, with other tasks: refused, and nothing of it is left.
	_, err := s.CreateRun(ctx, Run{DAGID: "d", RunID: "r1", Type: task.RunManual, State: task.RunRunning}, []TaskSeed{{TaskID: "c", MaxTries: 5}})
	if !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate CreateRun = %v, want ErrExists", err)
	}
	// The same run id in another DAG is another run.
	other, err := s.CreateRun(ctx, Run{DAGID: "d2", RunID: "r1", Type: task.RunManual, State: task.RunQueued}, nil)
	if err != nil {
		t.Fatalf("same run id in another DAG: %v", err)
	}
	// Duplicate task seeds fail inside the transaction: the run must not be left behind.
	_, err = s.CreateRun(ctx, Run{DAGID: "d", RunID: "r2", Type: task.RunManual, State: task.RunQueued}, []TaskSeed{{TaskID: "a", MaxTries: 1}, {TaskID: "a", MaxTries: 1}})
	if err == nil {
		t.Fatal("CreateRun with a duplicate task id succeeded")
	}
	if _, err := s.Run(ctx, "d", "r2"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a run whose tasks failed to insert was left behind: %v", err)
	}

	runs, err := s.Runs(ctx, RunFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 {
		t.Errorf("runs = %+v, want only r1 of d and d2", runs)
	}
	if r := getRun(t, s, first.ID); r.State != task.RunQueued {
		t.Errorf("the existing run changed: %+v", r)
	}
	tis, err := s.TaskInstances(ctx, first.ID)
	if err != nil || len(tis) != 2 || tis[0].TaskID != "a" || tis[1].TaskID != "b" {
		t.Errorf("task instances of the existing run = %+v, %v", tis, err)
	}
	if tis, _ := s.TaskInstances(ctx, other.ID); len(tis) != 0 {
		t.Errorf("task instances of d2's run = %+v", tis)
	}
}

func testRunsFilter(t *testing.T, be backend) {
	t.Parallel()
	s, _ := setup(t, be)
	ctx := context.Background()
	var ids []int64
	for i, dagID := range []string{"a", "a", "b", "a"} {
		ld := t0.AddDate(0, 0, i)
		r, err := s.CreateRun(ctx, Run{DAGID: dagID, RunID: ld.Format("20060102"), Type: task.RunScheduled, State: task.RunQueued,
			LogicalDate: ld, IntervalStart: ld, IntervalEnd: ld}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	apply(t, s, rc(ids[0], task.RunQueued, task.RunRunning, t0), rc(ids[1], task.RunQueued, task.RunRunning, t0))
	apply(t, s, rc(ids[0], task.RunRunning, task.RunSuccess, t0))
	runIDs := func(f RunFilter) []int64 {
		t.Helper()
		rs, err := s.Runs(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		var out []int64
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}
	for _, c := range []struct {
		name string
		f    RunFilter
		want []int64
	}{
		{"all, newest first", RunFilter{}, []int64{ids[3], ids[2], ids[1], ids[0]}},
		{"by dag", RunFilter{DAGID: "a"}, []int64{ids[3], ids[1], ids[0]}},
		{"by state", RunFilter{States: []task.RunState{task.RunRunning, task.RunSuccess}}, []int64{ids[1], ids[0]}},
		{"since/until", RunFilter{Since: t0.AddDate(0, 0, 1), Until: t0.AddDate(0, 0, 3)}, []int64{ids[2], ids[1]}},
		{"limit/offset", RunFilter{Limit: 2, Offset: 1}, []int64{ids[2], ids[1]}},
	} {
		if got := runIDs(c.f); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: Runs = %v, want %v", c.name, got, c.want)
		}
	}
	active, err := s.ActiveRuns(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, r := range active {
		got = append(got, r.ID)
	}
	if want := []int64{ids[1], ids[2], ids[3]}; !reflect.DeepEqual(got, want) {
		t.Errorf("ActiveRuns = %v, want %v (oldest first)", got, want)
	}
}

func testApplyStaleChangeAppliesNothing(t *testing.T, be backend) {
	t.Parallel()
	s, _ := setup(t, be)
	ctx := context.Background()
	r := mkRun(t, s, "r1", "a", "b", "c")
	apply(t, s, ch(task.StateNone, TaskInstance{Run: r.ID, TaskID: "a", State: task.StateScheduled, MaxTries: 1}))
	before, err := s.TaskInstances(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name     string
		changes  []change
		wantTask string // the change the ConflictError names; "" for the run
	}{
		{"stale task change last", []change{
			ch(task.StateScheduled, TaskInstance{Run: r.ID, TaskID: "a", State: task.StateQueued, Try: 1, MaxTries: 1}),
			ch(task.StateNone, TaskInstance{Run: r.ID, TaskID: "b", State: task.StateScheduled, MaxTries: 1}),
			xc(r.ID, "a", `1`),
			rc(r.ID, task.RunQueued, task.RunRunning, t0),
			// c is in none, not scheduled.
			ch(task.StateScheduled, TaskInstance{Run: r.ID, TaskID: "c", State: task.StateQueued, Try: 1, MaxTries: 1}),
		}, "c"},
		{"stale task change first", []change{
			ch(task.StateNone, TaskInstance{Run: r.ID, TaskID: "a", State: task.StateSkipped, MaxTries: 1}), // a is scheduled
			ch(task.StateNone, TaskInstance{Run: r.ID, TaskID: "b", State: task.StateScheduled, MaxTries: 1}),
		}, "a"},
		{"task that does not exist", []change{
			ch(task.StateNone, TaskInstance{Run: r.ID, TaskID: "b", State: task.StateScheduled, MaxTries: 1}),
			ch(task.StateNone, TaskInstance{Run: r.ID, TaskID: "zz", State: task.StateScheduled, MaxTries: 1}),
		}, "zz"},
		{"stale run change", []change{
			ch(task.StateNone, TaskInstance{Run: r.ID, TaskID: "b", State: task.StateScheduled, MaxTries: 1}),
			xc(r.ID, "b", `2`),
			rc(r.ID, task.RunRunning, task.RunSuccess, t0), // the run is queued
		}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := s.Apply(ctx, batch(c.changes...))
			var ce *ConflictError
			if !errors.As(err, &ce) || !errors.Is(err, ErrConflict) {
				t.Fatalf("Apply = %v, want a *ConflictError wrapping ErrConflict", err)
			}
			if ce.Run != r.ID || ce.TaskID != c.wantTask || ce.Reason == "" {
				t.Errorf("ConflictError = %+v, want run %d task %q with a reason", ce, r.ID, c.wantTask)
			}
			after, err := s.TaskInstances(ctx, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(after, before) {
				t.Errorf("task instances changed by a failed batch:\n%+v\nwas\n%+v", after, before)
			}
			for _, id := range []string{"a", "b", "c"} {
				if ts := tries(t, s, r.ID, id); len(ts) != 0 {
					t.Errorf("tries of %s after a failed batch: %+v", id, ts)
				}
				if _, ok, _ := s.XCom(ctx, r.ID, id); ok {
					t.Errorf("result of %s stored by a failed batch", id)
				}
			}
			if run := getRun(t, s, r.ID); run.State != task.RunQueued || !run.Started.IsZero() || !run.Ended.IsZero() {
				t.Errorf("run changed by a failed batch: %+v", run)
			}
		})
	}
}

func testApplyIllegalTransition(t *testing.T, be backend) {
	t.Parallel()
	s, _ := setup(t, be)
	ctx := context.Background()
	r := mkRun(t, s, "r1", "a", "b")
	cases := []struct {
		name    string
		changes []change
	}{
		{"none -> running", []change{ch(task.StateNone, TaskInstance{Run: r.ID, TaskID: "a", State: task.StateRunning, Try: 1, MaxTries: 1})}},
		{"none -> queued", []change{ch(task.StateNone, TaskInstance{Run: r.ID, TaskID: "a", State: task.StateQueued, Try: 1, MaxTries: 1})}},
		{"unknown state", []change{ch(task.StateNone, TaskInstance{Run: r.ID, TaskID: "a", State: "done", MaxTries: 1})}},
		{"legal change with an illegal one", []change{
			ch(task.StateNone, TaskInstance{Run: r.ID, TaskID: "b", State: task.StateScheduled, MaxTries: 1}),
			ch(task.StateNone, TaskInstance{Run: r.ID, TaskID: "a", State: task.StateUpForRetry, MaxTries: 1}),
		}},
		{"run queued -> queued", []change{rc(r.ID, task.RunQueued, task.RunQueued, t0)}},
		{"run to an unknown state", []change{
			ch(task.StateNone, TaskInstance{Run: r.ID, TaskID: "b", State: task.StateScheduled, MaxTries: 1}),
			rc(r.ID, task.RunQueued, "paused", t0),
		}},
	}
	for _, c := range cases {
		err := s.Apply(ctx, batch(c.changes...))
		var ce *ConflictError
		if !errors.As(err, &ce) || !errors.Is(err, ErrConflict) {
			t.Errorf("%s: Apply = %v, want a *ConflictError", c.name, err)
			continue
		}
		if !strings.Contains(ce.Reason, "illegal") {
			t.Errorf("%s: reason %q does not say the transition is illegal", c.name, ce.Reason)
		}
	}
	for _, id := range []string{"a", "b"} {
		if ti := getTI(t, s, r.ID, id); ti.State != task.StateNone {
			t.Errorf("%s is %s after refused batches", id, ti.State)
		}
	}
	if run := getRun(t, s, r.ID); run.State != task.RunQueued {
		t.Errorf("run is %s after refused batches", run.State)
	}
	// Run transitions: finished runs are requeued by clear or re-marked; running is not re-entered.
	apply(t, s, rc(r.ID, task.RunQueued, task.RunRunning, t0))
	apply(t, s, rc(r.ID, task.RunRunning, task.RunFailed, t0.Add(time.Hour)))
	if err := s.Apply(ctx, batch(rc(r.ID, task.RunFailed, task.RunRunning, t0))); !errors.Is(err, ErrConflict) {
		t.Errorf("run failed -> running = %v, want ErrConflict", err)
	}
	apply(t, s, rc(r.ID, task.RunFailed, task.RunSuccess, t0.Add(2*time.Hour)))
	if err := s.Apply(ctx, batch(rc(r.ID, task.RunSuccess, task.RunSuccess, t0))); !errors.Is(err, ErrConflict) {
		t.Errorf("run success -> success = %v, want ErrConflict", err)
	}
	if err := s.Apply(ctx, &Batch{}); err != nil {
		t.Errorf("empty batch: %v", err)
	}
}

func testApplyRunTimes(t *testing.T, be backend) {
	t.Parallel()
	s, _ := setup(t, be)
	r := mkRun(t, s, "r1")
	t1, t2, t3 := t0.Add(time.Minute), t0.Add(time.Hour), t0.Add(2*time.Hour)
	apply(t, s, rc(r.ID, task.RunQueued, task.RunRunning, t1))
	if got := getRun(t, s, r.ID); got.State != task.RunRunning || !got.Started.Equal(t1) || !got.Ended.IsZero() {
		t.Errorf("after start: %+v", got)
	}
	apply(t, s, rc(r.ID, task.RunRunning, task.RunSuccess, t2))
	if got := getRun(t, s, r.ID); got.State != task.RunSuccess || !got.Ended.Equal(t2) {
		t.Errorf("after end: %+v", got)
	}
	apply(t, s, rc(r.ID, task.RunSuccess, task.RunQueued, time.Time{}))
	if got := getRun(t, s, r.ID); got.State != task.RunQueued || !got.Ended.IsZero() || !got.Started.Equal(t1) {
		t.Errorf("after requeue: %+v", got)
	}
	// A second start keeps the first start time.
	apply(t, s, rc(r.ID, task.RunQueued, task.RunRunning, t3))
	if got := getRun(t, s, r.ID); !got.Started.Equal(t1) {
		t.Errorf("restart moved the start time to %v, want %v", got.Started, t1)
	}
}

func testApplyTries(t *testing.T, be backend) {
	t.Parallel()
	s, _ := setup(t, be)
	ctx := context.Background()
	r := mkRun(t, s, "r1", "a")
	ti := TaskInstance{Run: r.ID, TaskID: "a", MaxTries: 2}
	step := func(from, to task.State, at time.Time, edit func(*TaskInstance)) {
		t.Helper()
		next := ti
		next.State = to
		if edit != nil {
			edit(&next)
		}
		if err := s.Apply(ctx, batch(func(b *Batch) { b.SetTI(TIChange{From: from, TI: next, At: at}) })); err != nil {
			t.Fatalf("%s -> %s: %v", from, to, err)
		}
		ti = next
		if got := getTI(t, s, r.ID, "a"); !reflect.DeepEqual(got, ti) {
			t.Fatalf("after %s -> %s: task instance\n%+v\nwant\n%+v", from, to, got, ti)
		}
	}
	code := func(c int) *int { return &c }
	tq1, ts1, te1 := t0, t0.Add(time.Second), t0.Add(time.Minute)
	tq2, ts2, te2 := t0.Add(time.Hour), t0.Add(time.Hour+time.Second), t0.Add(2*time.Hour)

	step(task.StateNone, task.StateScheduled, t0, nil)
	if ts := tries(t, s, r.ID, "a"); len(ts) != 0 {
		t.Fatalf("scheduled created tries: %+v", ts)
	}
	step(task.StateScheduled, task.StateQueued, tq1, func(ti *TaskInstance) { ti.Try, ti.Executor = 1, "local" })
	want := []Try{{Run: r.ID, TaskID: "a", Try: 1, State: task.StateQueued, Queued: tq1, Executor: "local"}}
	if ts := tries(t, s, r.ID, "a"); !reflect.DeepEqual(ts, want) {
		t.Fatalf("after queued: tries\n%+v\nwant\n%+v", ts, want)
	}
	step(task.StateQueued, task.StateRunning, ts1, func(ti *TaskInstance) { ti.Started, ti.Host = ts1, "host1" })
	want[0].State, want[0].Started, want[0].Host = task.StateRunning, ts1, "host1"
	if ts := tries(t, s, r.ID, "a"); !reflect.DeepEqual(ts, want) {
		t.Fatalf("after running: tries\n%+v\nwant\n%+v", ts, want)
	}
	step(task.StateRunning, task.StateUpForRetry, te1, func(ti *TaskInstance) {
		ti.Ended, ti.ExitCode, ti.Error, ti.NextRetry = te1, code(3), "exit 3", te1.Add(time.Minute)
	})
	want[0].State, want[0].Ended, want[0].ExitCode, want[0].Error = task.StateUpForRetry, te1, code(3), "exit 3"
	if ts := tries(t, s, r.ID, "a"); !reflect.DeepEqual(ts, want) {
		t.Fatalf("after up_for_retry: tries\n%+v\nwant\n%+v", ts, want)
	}

	// Second try: queued, then put back (the executor lost it): the try is removed.
	step(task.StateUpForRetry, task.StateScheduled, tq2, func(ti *TaskInstance) {
		ti.Started, ti.Ended, ti.ExitCode, ti.Error, ti.NextRetry, ti.Host = time.Time{}, time.Time{}, nil, "", time.Time{}, ""
	})
	step(task.StateScheduled, task.StateQueued, tq2, func(ti *TaskInstance) { ti.Try = 2 })
	if ts := tries(t, s, r.ID, "a"); len(ts) != 2 || ts[1].State != task.StateQueued || !ts[1].Queued.Equal(tq2) {
		t.Fatalf("after the second queued: tries %+v", ts)
	}
	step(task.StateQueued, task.StateScheduled, tq2, func(ti *TaskInstance) { ti.Try = 1 })
	if ts := tries(t, s, r.ID, "a"); !reflect.DeepEqual(ts, want) {
		t.Fatalf("queued -> scheduled did not remove try 2: tries\n%+v\nwant\n%+v", ts, want)
	}

	// Queued again, and it finishes before its start was recorded.
	step(task.StateScheduled, task.StateQueued, tq2, func(ti *TaskInstance) { ti.Try, ti.Executor, ti.Pod = 2, "kubernetes", "pod-2" })
	step(task.StateQueued, task.StateSuccess, te2, func(ti *TaskInstance) { ti.Started, ti.Ended, ti.ExitCode = ts2, te2, code(0) })
	want = append(want, Try{Run: r.ID, TaskID: "a", Try: 2, State: task.StateSuccess, Queued: tq2, Started: ts2, Ended: te2,
		ExitCode: code(0), Executor: "kubernetes", Pod: "pod-2"})
	if ts := tries(t, s, r.ID, "a"); !reflect.DeepEqual(ts, want) {
		t.Fatalf("after success: tries\n%+v\nwant\n%+v", ts, want)
	}
	if d := getTI(t, s, r.ID, "a").Duration(); d != te2.Sub(ts2) {
		t.Errorf("Duration = %s, want %s", d, te2.Sub(ts2))
	}
	// A mark of a finished task does not touch its tries.
	step(task.StateSuccess, task.StateFailed, te2, func(ti *TaskInstance) { ti.Error = "marked" })
	if ts := tries(t, s, r.ID, "a"); !reflect.DeepEqual(ts, want) {
		t.Fatalf("a mark changed the tries:\n%+v\nwant\n%+v", ts, want)
	}
}

func testXCom(t *testing.T, be backend) {
	t.Parallel()
	s, _ := setup(t, be)
	ctx := context.Background()
	r := mkRun(t, s, "r1", "a", "b")
	if _, ok, err := s.XCom(ctx, r.ID, "a"); ok || err != nil {
		t.Fatalf("XCom before any put = %v, %v; want none", ok, err)
	}
	apply(t, s, xc(r.ID, "a", `{"rows":3}`), xc(r.ID, "b", `"b"`))
	if v, ok, err := s.XCom(ctx, r.ID, "a"); err != nil || !ok || string(v) != `{"rows":3}` {
		t.Errorf("XCom(a) = %s, %v, %v", v, ok, err)
	}
	apply(t, s, xc(r.ID, "a", `[1,2]`)) // a later try overwrites
	if v, _, _ := s.XCom(ctx, r.ID, "a"); string(v) != `[1,2]` {
		t.Errorf("XCom(a) after overwrite = %s", v)
	}
	if v, _, _ := s.XCom(ctx, r.ID, "b"); string(v) != `"b"` {
		t.Errorf("XCom(b) = %s", v)
	}
	other := mkRun(t, s, "r2", "a")
	if _, ok, _ := s.XCom(ctx, other.ID, "a"); ok {
		t.Error("a result leaked into another run")
	}
	// A result for a run that does not exist is refused (foreign key), with the batch.
	err := s.Apply(ctx, batch(ch(task.StateNone, TaskInstance{Run: r.ID, TaskID: "b", State: task.StateScheduled, MaxTries: 1}),
		xc(9999, "a", `1`)))
	if err == nil {
		t.Fatal("a result for a missing run was stored")
	}
	if ti := getTI(t, s, r.ID, "b"); ti.State != task.StateNone {
		t.Errorf("b is %s after the failed batch", ti.State)
	}
}

// finish drives a task instance of r through a whole try to the state end.
func finish(t *testing.T, s *Store, run int64, id string, try int, end task.State) {
	t.Helper()
	ti := getTI(t, s, run, id)
	from := ti.State
	for _, st := range []task.State{task.StateScheduled, task.StateQueued, task.StateRunning, end} {
		if st == task.StateQueued {
			ti.Try = try
		}
		next := ti
		next.State = st
		apply(t, s, ch(from, next))
		from, ti = st, next
	}
}

func testClear(t *testing.T, be backend) {
	t.Parallel()
	s, _ := setup(t, be)
	ctx := context.Background()
	r := mkRun(t, s, "r1", "a", "b", "c", "d")
	finish(t, s, r.ID, "a", 1, task.StateSuccess)
	finish(t, s, r.ID, "b", 1, task.StateFailed)
	apply(t, s, xc(r.ID, "a", `"a"`), xc(r.ID, "b", `"b"`))
	apply(t, s, ch(task.StateNone, TaskInstance{Run: r.ID, TaskID: "c", State: task.StateScheduled, MaxTries: 1}))
	apply(t, s, ch(task.StateScheduled, TaskInstance{Run: r.ID, TaskID: "c", State: task.StateQueued, Try: 1, MaxTries: 1}))
	apply(t, s, rc(r.ID, task.RunQueued, task.RunRunning, t0))
	apply(t, s, rc(r.ID, task.RunRunning, task.RunFailed, t0.Add(time.Hour)))
	retries := func(id string) int { return map[string]int{"a": 2, "b": 0}[id] }

	snapshot := func() ([]TaskInstance, Run) {
		tis, err := s.TaskInstances(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		return tis, getRun(t, s, r.ID)
	}
	tisBefore, runBefore := snapshot()

	// A task in flight refuses the whole clear, even after tasks that could be cleared.
	for _, active := range [][]string{{"a", "c"}, {"c"}, {"b", "a", "c"}} {
		err := s.Clear(ctx, r.ID, active, retries)
		if !errors.Is(err, ErrActive) || !strings.Contains(err.Error(), `"c"`) {
			t.Errorf("Clear(%v) = %v, want ErrActive naming c", active, err)
		}
	}
	if err := s.Clear(ctx, r.ID, []string{"a", "zz"}, retries); !errors.Is(err, ErrNotFound) {
		t.Errorf("Clear of an unknown task = %v, want ErrNotFound", err)
	}
	if tis, run := snapshot(); !reflect.DeepEqual(tis, tisBefore) || !reflect.DeepEqual(run, runBefore) {
		t.Fatalf("a refused Clear changed something:\n%+v %+v\nwas\n%+v %+v", tis, run, tisBefore, runBefore)
	}
	if _, ok, _ := s.XCom(ctx, r.ID, "a"); !ok {
		t.Fatal("a refused Clear removed a result")
	}

	if err := s.Clear(ctx, r.ID, []string{"a", "b", "d"}, retries); err != nil {
		t.Fatal(err)
	}
	a, b, c, d := getTI(t, s, r.ID, "a"), getTI(t, s, r.ID, "b"), getTI(t, s, r.ID, "c"), getTI(t, s, r.ID, "d")
	if a.State != task.StateNone || a.Try != 1 || a.MaxTries != 1+2+1 {
		t.Errorf("a after clear = %+v; want none, try 1 kept, max tries 1+2+1", a)
	}
	if b.State != task.StateNone || b.Try != 1 || b.MaxTries != 1+0+1 {
		t.Errorf("b after clear = %+v; want none, try 1 kept, max tries 1+0+1", b)
	}
	if c.State != task.StateQueued {
		t.Errorf("c (not cleared) = %+v", c)
	}
	if d.State != task.StateNone || d.MaxTries != 1 {
		t.Errorf("d (already none) = %+v", d)
	}
	for _, id := range []string{"a", "b"} {
		if _, ok, _ := s.XCom(ctx, r.ID, id); ok {
			t.Errorf("the result of %s survived the clear", id)
		}
		if ts := tries(t, s, r.ID, id); len(ts) != 1 {
			t.Errorf("tries of %s after clear = %+v; want the history kept", id, ts)
		}
	}
	run := getRun(t, s, r.ID)
	if run.State != task.RunQueued || !run.Ended.IsZero() || run.Version != runBefore.Version+1 {
		t.Errorf("run after clear = %+v; want queued, no end, version %d", run, runBefore.Version+1)
	}
	// The scheduler can run a cleared task again: its next try is 2.
	finish(t, s, r.ID, "a", 2, task.StateSuccess)
	if ts := tries(t, s, r.ID, "a"); len(ts) != 2 || ts[1].State != task.StateSuccess {
		t.Errorf("tries of a after a rerun = %+v", ts)
	}
}
