package scheduler_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/internal/runs"
	"github.com/trellisdag/trellis/internal/store"
	"github.com/trellisdag/trellis/scheduler"
	"github.com/trellisdag/trellis/task"
)

// list returns a task whose result is xs.
func list(id string, xs ...int) *task.GoTask[[]int] {
	return task.Go(id, func(context.Context, *task.Run) ([]int, error) { return xs, nil })
}

// TestMapOverResultWithTypedReduce: one instance per element, each with its
// own row, result and index, reduced downstream in element order.
func TestMapOverResultWithTypedReduce(t *testing.T) {
	t.Parallel()
	src := list("src", 3, 1, 4, 1, 5)
	var seen sync.Map
	sq := task.Map("square", src, func(_ context.Context, r *task.Run, x int) (int, error) {
		seen.Store(r.MapIndex(), x)
		return x * x, nil
	})
	var got []int
	sum := task.Go("sum", func(_ context.Context, r *task.Run) (int, error) {
		xs, err := task.Output(r, sq)
		got = xs
		n := 0
		for _, x := range xs {
			n += x
		}
		return n, err
	})
	sq.Then(sum)
	d := dag.New("m").Add(src, sq, sum)
	e := setup(t, []*dag.DAG{d})
	run := e.trigger(d, "r1")
	e.runUntilIdle()
	want := map[string]task.State{"src": task.StateSuccess, "sum": task.StateSuccess}
	for i := range 5 {
		want[fmt.Sprintf("square[%d]", i)] = task.StateSuccess
	}
	e.expect(run, task.RunSuccess, want)
	if fmt.Sprint(got) != "[9 1 16 1 25]" {
		t.Errorf("reduce read %v, want [9 1 16 1 25]", got)
	}
	if x, _ := seen.Load(2); x != 4 {
		t.Errorf("element 2 = %v, want 4", x)
	}
	if _, ok := e.states(run)["square"]; ok {
		t.Error("the expanded task kept its unexpanded row")
	}
	v, ok, err := e.st.XCom(context.Background(), run.ID, "sum")
	if err != nil || !ok || string(v) != "52" {
		t.Errorf("sum result = %s, %v, %v; want 52", v, ok, err)
	}
}

// TestMapEmptyListSkips: an empty list skips the mapped task, and its
// downstream by trigger rule; the run succeeds.
func TestMapEmptyListSkips(t *testing.T) {
	t.Parallel()
	src := list("src")
	m := task.Map("each", src, func(context.Context, *task.Run, int) (int, error) { return 0, nil })
	after := noop("after")
	m.Then(after)
	d := dag.New("m").Add(src, m, after)
	e := setup(t, []*dag.DAG{d})
	run := e.trigger(d, "r1")
	e.runUntilIdle()
	e.expect(run, task.RunSuccess, map[string]task.State{"src": task.StateSuccess, "each": task.StateSkipped, "after": task.StateSkipped})
}

// TestMapLengthLimit: a result longer than MaxMapLength fails the task that
// returned it, without retry, and the mapped task is upstream_failed.
func TestMapLengthLimit(t *testing.T) {
	t.Parallel()
	src := task.Go("src", func(context.Context, *task.Run) ([]int, error) { return []int{1, 2, 3, 4}, nil }, task.Retries(3))
	m := task.Map("each", src, func(context.Context, *task.Run, int) (int, error) { return 0, nil })
	lit := noop("lit", task.MapItems("a", "b", "c", "d"))
	d := dag.New("m").Add(src, m, lit)
	e := setup(t, []*dag.DAG{d}, func(c *scheduler.Config) { c.MaxMapLength = 3 })
	run := e.trigger(d, "r1")
	e.runUntilIdle()
	e.expect(run, task.RunFailed, map[string]task.State{"src": task.StateFailed, "each": task.StateUpstreamFailed, "lit": task.StateFailed})
	st := e.states(run)
	if s := st["src"]; s.Try != 1 || !strings.Contains(s.Error, "exceeds the max map length of 3") || !strings.Contains(s.Error, "--max-map-length") {
		t.Errorf("src: try %d, error %q; want one try and the limit with its knob", s.Try, s.Error)
	}
	if s := st["lit"]; !strings.Contains(s.Error, "4 elements") {
		t.Errorf("lit error %q, want the list's length", s.Error)
	}
}

// TestMapTriggerRulesOverInstances: every instance counts as one upstream.
// One failed instance makes all_success upstream_failed while one_success
// and all_done run; a failed instance of a task that is not a leaf does not
// fail the run when the leaves succeed.
func TestMapTriggerRulesOverInstances(t *testing.T) {
	t.Parallel()
	src := list("src", 0, 1, 2, 3)
	m := task.Map("each", src, func(_ context.Context, _ *task.Run, x int) (int, error) {
		if x == 2 {
			return 0, errors.New("two is bad")
		}
		return x, nil
	})
	allOK := noop("all_ok")
	one := noop("one_ok", task.Trigger(task.OneSuccess))
	done := noop("all_done", task.Trigger(task.AllDone))
	m.Then(allOK)
	m.Then(one)
	m.Then(done)
	d := dag.New("m", dag.DefaultRetries(0, 0)).Add(src, m, allOK, one, done)
	e := setup(t, []*dag.DAG{d})
	run := e.trigger(d, "r1")
	e.runUntilIdle()
	e.expect(run, task.RunFailed, map[string]task.State{"each[0]": task.StateSuccess, "each[2]": task.StateFailed,
		"all_ok": task.StateUpstreamFailed, "one_ok": task.StateSuccess, "all_done": task.StateSuccess})

	// Without the all_success leaf the run succeeds: the failed instance is
	// not a leaf.
	src2 := list("src", 0, 1, 2, 3)
	m2 := task.Map("each", src2, func(_ context.Context, _ *task.Run, x int) (int, error) {
		if x == 2 {
			return 0, errors.New("two is bad")
		}
		return x, nil
	})
	done2 := noop("all_done", task.Trigger(task.AllDone))
	m2.Then(done2)
	d2 := dag.New("m2", dag.DefaultRetries(0, 0)).Add(src2, m2, done2)
	e2 := setup(t, []*dag.DAG{d2})
	run2 := e2.trigger(d2, "r1")
	e2.runUntilIdle()
	e2.expect(run2, task.RunSuccess, map[string]task.State{"each[2]": task.StateFailed, "all_done": task.StateSuccess})
}

// TestMapInstanceRetriesAndClearOne: an instance retries on its own; clearing
// one instance runs only it again, with the next try number.
func TestMapInstanceRetriesAndClearOne(t *testing.T) {
	t.Parallel()
	src := list("src", 0, 1, 2)
	var tries [3]atomic.Int32
	m := task.Map("each", src, func(_ context.Context, r *task.Run, x int) (int, error) {
		if tries[x].Add(1) == 1 && x == 1 {
			return 0, errors.New("flaky")
		}
		return x * 10, nil
	}, task.Retries(1), task.RetryDelay(0))
	red := task.Go("red", func(_ context.Context, r *task.Run) ([]int, error) { return task.Output(r, m) })
	m.Then(red)
	d := dag.New("m").Add(src, m, red)
	e := setup(t, []*dag.DAG{d})
	run := e.trigger(d, "r1")
	e.runUntilIdle()
	e.expect(run, task.RunSuccess, map[string]task.State{"each[1]": task.StateSuccess, "red": task.StateSuccess})
	if got := e.states(run)["each[1]"].Try; got != 2 {
		t.Errorf("each[1] tries = %d, want 2", got)
	}
	cur, err := e.st.RunByID(context.Background(), run.ID)
	if err != nil {
		t.Fatal(err)
	}
	cleared, err := runs.Clear(context.Background(), e.st, d, cur, []task.Task{m}, runs.ClearOptions{MapIndexes: []int{2}, Downstream: true})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(cleared) != "[each[2] red]" {
		t.Errorf("cleared %v, want [each[2] red]", cleared)
	}
	e.runUntilIdle()
	st := e.states(run)
	e.expect(run, task.RunSuccess, map[string]task.State{"each[0]": task.StateSuccess, "each[2]": task.StateSuccess, "red": task.StateSuccess})
	if st["each[0]"].Try != 1 || st["each[2]"].Try != 2 || tries[0].Load() != 1 || tries[2].Load() != 2 {
		t.Errorf("tries: each[0] %d (ran %d), each[2] %d (ran %d); want 1 (1) and 2 (2)",
			st["each[0]"].Try, tries[0].Load(), st["each[2]"].Try, tries[2].Load())
	}
	v, _, _ := e.st.XCom(context.Background(), run.ID, "red")
	if string(v) != "[0,10,20]" {
		t.Errorf("red = %s, want [0,10,20]", v)
	}
}

// TestMapOverMapAndLiterals: a map over another map's result, a map over a
// literal list and one over a param.
func TestMapOverMapAndLiterals(t *testing.T) {
	t.Parallel()
	src := list("src", 1, 2, 3)
	plus := task.Map("plus", src, func(_ context.Context, _ *task.Run, x int) (int, error) { return x + 1, nil })
	twice := task.Map("twice", plus, func(_ context.Context, _ *task.Run, x int) (int, error) { return 2 * x, nil })
	var mu sync.Mutex
	var words []string
	lit := task.Go("lit", func(_ context.Context, r *task.Run) (string, error) {
		raw, err := r.Item()
		mu.Lock()
		words = append(words, fmt.Sprintf("%d=%s", r.MapIndex(), raw))
		mu.Unlock()
		return string(raw), err
	}, task.MapItems("a", "b"))
	par := task.Go("par", func(_ context.Context, r *task.Run) (int, error) {
		raw, err := r.Item()
		return len(raw), err
	}, task.MapParam("files"))
	d := dag.New("m", dag.Params(dag.Param{Name: "files", Default: []any{"x", "yy", "zzz"}})).Add(src, plus, twice, lit, par)
	e := setup(t, []*dag.DAG{d})
	run := e.trigger(d, "r1")
	e.runUntilIdle()
	e.expect(run, task.RunSuccess, map[string]task.State{"twice[2]": task.StateSuccess, "lit[1]": task.StateSuccess, "par[2]": task.StateSuccess})
	for id, want := range map[string]string{"twice": "[4,6,8]", "lit": `["\"a\"","\"b\""]`, "par": "[3,4,5]"} {
		v, _, err := e.st.XCom(context.Background(), run.ID, id)
		if err != nil || string(v) != want {
			t.Errorf("%s = %s (%v), want %s", id, v, err, want)
		}
	}
}

// gated returns a mapped function whose calls each say they started and wait
// for gate to close.
func gated(started chan<- int, gate <-chan struct{}) task.Func[int] {
	return func(ctx context.Context, r *task.Run) (int, error) {
		started <- r.MapIndex()
		select {
		case <-gate:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		return r.MapIndex(), nil
	}
}

// inFlight counts the instances of the runs that are queued or running in
// the store.
func (e *env) inFlight(runs ...store.Run) int {
	n := 0
	for _, r := range runs {
		for _, ti := range e.states(r) {
			if ti.State.Active() {
				n++
			}
		}
	}
	return n
}

// expectLimit runs the scheduler until limit calls are blocked in the gate,
// checks that the store has exactly limit instances in flight (every
// instance of these runs is scheduled in one step, so without the limit all
// of them would be queued in the commit that started these), then opens the
// gate and runs the runs to their end.
func (e *env) expectLimit(limit int, started chan int, gate chan struct{}, runs ...store.Run) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errc := e.runAsync(ctx)
	for range limit {
		select {
		case <-started:
		case <-ctx.Done():
			e.t.Fatalf("%d instances never started", limit)
		}
	}
	if n := e.inFlight(runs...); n != limit {
		e.t.Errorf("instances in flight = %d, want %d", n, limit)
	}
	close(gate)
	go func() {
		for range started {
		}
	}()
	if err := <-errc; err != nil {
		e.t.Fatal(err)
	}
	for _, r := range runs {
		if got := e.runState(r); got != task.RunSuccess {
			e.t.Errorf("run %s = %s", r.RunID, got)
		}
	}
}

// TestMapMaxActivePerRun: at most MaxActivePerRun instances run at once.
func TestMapMaxActivePerRun(t *testing.T) {
	t.Parallel()
	started, gate := make(chan int), make(chan struct{})
	m := task.Go("each", gated(started, gate), task.MapItems(0, 1, 2, 3, 4, 5, 6, 7, 8, 9), task.MaxActivePerRun(3))
	d := dag.New("m").Add(m)
	e := setup(t, []*dag.DAG{d})
	run := e.trigger(d, "r1")
	e.expectLimit(3, started, gate, run)
}

// TestMapMaxActivePerDAG: at most MaxActivePerDAG instances of the task run
// at once over the DAG's runs.
func TestMapMaxActivePerDAG(t *testing.T) {
	t.Parallel()
	started, gate := make(chan int), make(chan struct{})
	m := task.Go("each", gated(started, gate), task.MapItems(0, 1, 2, 3), task.MaxActivePerDAG(2))
	d := dag.New("m", dag.MaxActiveRuns(2)).Add(m)
	e := setup(t, []*dag.DAG{d})
	r1, r2 := e.trigger(d, "r1"), e.trigger(d, "r2")
	e.expectLimit(2, started, gate, r1, r2)
}

// TestMapRefusesAlways: Airflow refuses trigger rule always on a task mapped
// over an upstream's result.
func TestMapRefusesAlways(t *testing.T) {
	src := list("src", 1)
	m := task.Map("each", src, func(context.Context, *task.Run, int) (int, error) { return 0, nil }, task.Trigger(task.Always))
	err := dag.New("m").Add(src, m).Validate()
	if err == nil || !strings.Contains(err.Error(), "trigger rule always") {
		t.Fatalf("Validate = %v, want the always rule refused", err)
	}
}

var _ = store.ErrNotFound

// TestBranchSkipsMappedTask: a branch that does not choose a mapped task
// skips it before it expands.
func TestBranchSkipsMappedTask(t *testing.T) {
	t.Parallel()
	src := list("src", 1, 2)
	m := task.Map("each", src, func(context.Context, *task.Run, int) (int, error) { return 0, nil })
	other := noop("other")
	br := task.Branch("pick", func(context.Context, *task.Run) ([]task.Task, error) { return []task.Task{other}, nil })
	src.Then(br)
	br.Then(m, other)
	d := dag.New("m").Add(src, br, m, other)
	e := setup(t, []*dag.DAG{d})
	run := e.trigger(d, "r1")
	e.runUntilIdle()
	e.expect(run, task.RunSuccess, map[string]task.State{"each": task.StateSkipped, "other": task.StateSuccess})
}
