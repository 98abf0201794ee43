package scheduler_test

import (
	"context"
	"errors"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/internal/outbox"
	"github.com/trellisdag/trellis/scheduler"
	"github.com/trellisdag/trellis/scheduler/schedulertest"
	"github.com/trellisdag/trellis/task"
)

type recorder struct {
	mu     sync.Mutex
	events []task.Event
}

func (r *recorder) fn(_ context.Context, e task.Event) error {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	return nil
}

func (r *recorder) summary() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		out = append(out, string(e.Kind)+" "+e.TaskID+" try "+itoa(e.Try)+" "+e.State)
	}
	sort.Strings(out)
	return out
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestCallbacksFromTheOutbox: each callback is written to the outbox with the
// change that causes it and delivered after the commit: OnRetry after a try
// that will be retried, OnSuccess after success, OnFailure only after the
// last try failed, the DAG's OnFailure after the run failed; a mark calls
// nothing. A failing callback changes no state.
func TestCallbacksFromTheOutbox(t *testing.T) {
	t.Parallel()
	var rec recorder
	failing := func(context.Context, task.Event) error { return errors.New("the sink is down") }
	flakyTries := 0
	d := dag.New("cb", dag.DefaultRetries(1, 0), dag.OnFailure(rec.fn), dag.OnSuccess(rec.fn))
	flaky := task.Go("flaky", func(context.Context, *task.Run) (int, error) {
		flakyTries++
		if flakyTries == 1 {
			return 0, errors.New("first try fails")
		}
		return 1, nil
	}, task.OnRetry(rec.fn), task.OnSuccess(rec.fn), task.OnSuccess(failing), task.OnFailure(rec.fn))
	bad := task.Go("bad", func(context.Context, *task.Run) (int, error) { return 0, errors.New("always") },
		task.Retries(0), task.OnFailure(rec.fn), task.OnRetry(rec.fn))
	quiet := noop("quiet", task.OnSuccess(rec.fn))
	d.Add(flaky, bad, quiet)
	woken := make(chan struct{}, 100)
	e := setup(t, []*dag.DAG{d}, func(c *scheduler.Config) { c.OutboxWritten = func() { woken <- struct{}{} } })
	run := e.trigger(d, "r1")
	e.runUntilIdle()
	e.expect(run, task.RunFailed, map[string]task.State{"flaky": task.StateSuccess, "bad": task.StateFailed})
	if len(woken) == 0 {
		t.Error("OutboxWritten was never called")
	}
	w := outbox.New(outbox.Config{Store: e.st, DAGs: []*dag.DAG{d}, MaxAttempts: 1})
	if _, err := w.DeliverDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []string{"run_failure  try 0 failed", "task_failure bad try 1 failed", "task_retry flaky try 1 up_for_retry",
		"task_success flaky try 2 success", "task_success quiet try 1 success"}
	if got := rec.summary(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if s := w.Stats(); s.Delivered != 5 || s.GivenUp != 1 {
		t.Errorf("stats = %+v, want 5 delivered and the failing OnSuccess given up", s)
	}
	for _, ev := range rec.events {
		if ev.Key == "" || ev.RunID != "r1" || ev.DAGID != "cb" || ev.At.IsZero() {
			t.Errorf("event = %+v", ev)
		}
	}

	// A mark is a person's decision, not a try's end: no callback.
	if _, err := e.st.MarkTask(context.Background(), run.ID, "bad", task.StateSuccess, ""); err != nil {
		t.Fatal(err)
	}
	e.runUntilIdle()
	if n, err := w.DeliverDue(context.Background()); err != nil || n != 1 {
		t.Errorf("after the mark: %d delivered (%v), want only the run's success", n, err)
	}
	if got := rec.summary(); len(got) != 6 || got[0] != "run_failure  try 0 failed" || !strings.Contains(strings.Join(got, "|"), "run_success  try 0 success") {
		t.Errorf("events after the mark: %v", got)
	}
}

// TestDeadlineAlertOnce: a run that has not finished an hour after it was
// queued gets one deadline_missed event, however often it is loaded again;
// the run goes on.
func TestDeadlineAlertOnce(t *testing.T) {
	t.Parallel()
	var rec recorder
	d := dag.New("late", dag.AlertAfter(time.Hour, dag.FromQueued, rec.fn))
	s := task.Sensor("wait", func(context.Context, *task.Run) (bool, error) { return false, nil }, task.PokeInterval(30*time.Minute))
	d.Add(s)
	clock := schedulertest.NewClock(time.Now())
	e := setup(t, []*dag.DAG{d}, func(c *scheduler.Config) { c.Clock = clock })
	run := e.trigger(d, "r1")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errc := e.runAsync(ctx)
	for range 3 { // 90 minutes: the deadline passes once
		e.waitEvent(ctx, "wait", task.StateDeferred)
		clock.Advance(30 * time.Minute)
	}
	e.waitEvent(ctx, "wait", task.StateDeferred)
	e.sched.Load().Wake()
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	// A second scheduler loads the run again: the alert is not written twice.
	ctx2, cancel2 := context.WithCancel(context.Background())
	errc = e.runAsync(ctx2)
	clock.Advance(30 * time.Minute)
	e.waitEvent(context.Background(), "wait", task.StateDeferred)
	cancel2()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	w := outbox.New(outbox.Config{Store: e.st, DAGs: []*dag.DAG{d}, Now: func() time.Time { return clock.Now().Add(time.Hour) }})
	if _, err := w.DeliverDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := rec.summary(); len(got) != 1 || got[0] != "deadline_missed  try 0 running" {
		t.Errorf("events = %v, want one deadline_missed", got)
	}
	if r := e.runState(run); r != task.RunRunning {
		t.Errorf("run = %s, want it to go on", r)
	}
}
