package scheduler_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/executor"
	"github.com/trellisdag/trellis/executor/local"
	"github.com/trellisdag/trellis/internal/store"
	"github.com/trellisdag/trellis/scheduler"
	"github.com/trellisdag/trellis/task"
)

// env is a scheduler over a real SQLite file and the real local executor.
type env struct {
	t      *testing.T
	st     *store.Store
	events chan scheduler.Event
	sched  atomic.Pointer[scheduler.Scheduler]
	local  *local.Executor
	dags   []*dag.DAG
	opts   []option
}

type option func(*scheduler.Config)

func setup(t *testing.T, dags []*dag.DAG, opts ...option) *env {
	t.Helper()
	for _, d := range dags {
		if err := d.Validate(); err != nil {
			t.Fatalf("invalid test DAG: %v", err)
		}
	}
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "trellis.db"), store.Options{Sync: store.SyncNormal})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return newEnv(t, st, dags, opts...)
}

func newEnv(t *testing.T, st *store.Store, dags []*dag.DAG, opts ...option) *env {
	e := &env{t: t, st: st, events: make(chan scheduler.Event, 100000), dags: dags, opts: opts}
	e.t.Cleanup(func() {
		shut, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.local.Shutdown(shut); err != nil {
			e.t.Error(err)
		}
	})
	e.local = local.New(local.Config{
		Report: func(r executor.Report) { e.sched.Load().Report(r) },
		Logs:   func(k executor.Key) io.WriteCloser { return st.TryLog(k.Run, k.TaskID, k.Try) },
	})
	s, err := scheduler.New(e.configIdle())
	if err != nil {
		t.Fatal(err)
	}
	e.sched.Store(s)
	return e
}

// trigger creates a queued run of d.
func (e *env) trigger(d *dag.DAG, runID string) store.Run {
	e.t.Helper()
	var seeds []store.TaskSeed
	for _, t := range d.Tasks() {
		seeds = append(seeds, store.TaskSeed{TaskID: t.ID(), MaxTries: task.PolicyOf(t, d.Defaults()).Retries + 1})
	}
	ld := time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)
	run, err := e.st.CreateRun(context.Background(), store.Run{DAGID: d.ID(), RunID: runID, Type: task.RunManual,
		State: task.RunQueued, LogicalDate: ld, IntervalStart: ld, IntervalEnd: ld.Add(24 * time.Hour)}, seeds)
	if err != nil {
		e.t.Fatal(err)
	}
	return run
}

// runUntilIdle runs the scheduler until no run is active, bounded by 30s.
func (e *env) runUntilIdle() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := scheduler.New(e.configIdle())
	if err != nil {
		e.t.Fatal(err)
	}
	e.sched.Store(s)
	if err := s.Run(ctx); err != nil {
		e.t.Fatal(err)
	}
	if ctx.Err() != nil {
		e.t.Fatal("scheduler did not finish within 30s")
	}
}

func (e *env) configIdle() scheduler.Config {
	cfg := scheduler.Config{Store: e.st, DAGs: e.dags, Local: e.local, PollInterval: -1,
		Observe: func(ev scheduler.Event) { e.events <- ev }}
	for _, o := range e.opts {
		o(&cfg)
	}
	cfg.ExitWhenIdle = true
	return cfg
}

func (e *env) states(run store.Run) map[string]store.TaskInstance {
	e.t.Helper()
	tis, err := e.st.TaskInstances(context.Background(), run.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	m := map[string]store.TaskInstance{}
	for _, ti := range tis {
		m[ti.TaskID] = ti
	}
	return m
}

func (e *env) runState(run store.Run) task.RunState {
	e.t.Helper()
	r, err := e.st.RunByID(context.Background(), run.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	return r.State
}

func (e *env) expect(run store.Run, want task.RunState, tasks map[string]task.State) {
	e.t.Helper()
	if got := e.runState(run); got != want {
		e.t.Errorf("run state = %s, want %s", got, want)
	}
	got := e.states(run)
	for id, w := range tasks {
		if got[id].State != w {
			e.t.Errorf("task %s = %s (error %q), want %s", id, got[id].State, got[id].Error, w)
		}
	}
}

func noop(id string, opts ...task.Option) *task.GoTask[struct{}] {
	return task.Go(id, func(context.Context, *task.Run) (struct{}, error) { return struct{}{}, nil }, opts...)
}

func fail(id string, opts ...task.Option) *task.GoTask[struct{}] {
	return task.Go(id, func(context.Context, *task.Run) (struct{}, error) { return struct{}{}, errors.New("boom") }, opts...)
}

func TestTypedResultsFlowDownstream(t *testing.T) {
	t.Parallel()
	d := dag.New("typed")
	nums := task.Go("nums", func(ctx context.Context, r *task.Run) ([]int, error) { return []int{1, 2, 3}, nil })
	sum := task.Go("sum", func(ctx context.Context, r *task.Run) (int, error) {
		ns, err := task.Output(r, nums)
		if err != nil {
			return 0, err
		}
		total := 0
		for _, n := range ns {
			total += n
		}
		return total, nil
	})
	d.Add(nums, sum)
	nums.Then(sum)
	e := setup(t, []*dag.DAG{d})
	run := e.trigger(d, "r1")
	e.runUntilIdle()
	e.expect(run, task.RunSuccess, map[string]task.State{"nums": task.StateSuccess, "sum": task.StateSuccess})
	v, ok, err := e.st.XCom(context.Background(), run.ID, "sum")
	if err != nil || !ok || string(v) != "6" {
		t.Fatalf("xcom sum = %q %v %v, want 6", v, ok, err)
	}
}

func TestRetryThenSuccess(t *testing.T) {
	t.Parallel()
	d := dag.New("retry")
	var calls atomic.Int32
	flaky := task.Go("flaky", func(ctx context.Context, r *task.Run) (int, error) {
		calls.Add(1)
		if r.Info().Try < 3 {
			return 0, fmt.Errorf("try %d fails", r.Info().Try)
		}
		return r.Info().Try, nil
	}, task.Retries(3), task.RetryDelay(0))
	d.Add(flaky)
	e := setup(t, []*dag.DAG{d})
	run := e.trigger(d, "r1")
	e.runUntilIdle()
	e.expect(run, task.RunSuccess, map[string]task.State{"flaky": task.StateSuccess})
	if calls.Load() != 3 {
		t.Errorf("calls = %d, want 3", calls.Load())
	}
	tries, err := e.st.Tries(context.Background(), run.ID, "flaky")
	if err != nil {
		t.Fatal(err)
	}
	var states []string
	for _, tr := range tries {
		states = append(states, fmt.Sprintf("%d:%s", tr.Try, tr.State))
	}
	if got := strings.Join(states, " "); got != "1:up_for_retry 2:up_for_retry 3:success" {
		t.Errorf("tries = %s", got)
	}
	if !strings.Contains(tries[0].Error, "try 1 fails") {
		t.Errorf("try 1 error = %q", tries[0].Error)
	}
}

func TestFailureRulesAndRunState(t *testing.T) {
	t.Parallel()
	d := dag.New("rules", dag.DefaultRetries(0, 0))
	a := fail("a")
	b := noop("b") // all_success: upstream_failed
	c := noop("c", task.Trigger(task.AllDone))
	f := noop("f", task.Trigger(task.OneFailed))
	g := noop("g") // downstream of b: upstream_failed too
	d.Add(a, b, c, f, g)
	a.Then(b, c, f)
	b.Then(g)
	e := setup(t, []*dag.DAG{d})
	run := e.trigger(d, "r1")
	e.runUntilIdle()
	e.expect(run, task.RunFailed, map[string]task.State{
		"a": task.StateFailed, "b": task.StateUpstreamFailed, "c": task.StateSuccess,
		"f": task.StateSuccess, "g": task.StateUpstreamFailed,
	})
}

func TestFailNowSkipsRetries(t *testing.T) {
	t.Parallel()
	d := dag.New("failnow")
	var calls atomic.Int32
	x := task.Go("x", func(ctx context.Context, r *task.Run) (int, error) {
		calls.Add(1)
		return 0, fmt.Errorf("bad credentials: %w", task.ErrFailNow)
	}, task.Retries(5), task.RetryDelay(0))
	d.Add(x)
	e := setup(t, []*dag.DAG{d})
	run := e.trigger(d, "r1")
	e.runUntilIdle()
	e.expect(run, task.RunFailed, map[string]task.State{"x": task.StateFailed})
	if calls.Load() != 1 {
		t.Errorf("calls = %d, want 1", calls.Load())
	}
}

func TestBranchSkipsTheOthers(t *testing.T) {
	t.Parallel()
	d := dag.New("branch")
	left, right, after := noop("left"), noop("right"), noop("after_right")
	join := noop("join", task.Trigger(task.NoneFailedMinOneSuccess))
	br := task.Branch("br", func(ctx context.Context, r *task.Run) ([]task.Task, error) { return []task.Task{left}, nil })
	d.Add(br, left, right, after, join)
	br.Then(left, right)
	right.Then(after)
	join.After(left, after)
	e := setup(t, []*dag.DAG{d})
	run := e.trigger(d, "r1")
	e.runUntilIdle()
	e.expect(run, task.RunSuccess, map[string]task.State{
		"br": task.StateSuccess, "left": task.StateSuccess, "right": task.StateSkipped,
		"after_right": task.StateSkipped, "join": task.StateSuccess,
	})
}

func TestBranchKeepsTaskDownstreamOfChosen(t *testing.T) {
	t.Parallel()
	// br -> a -> j and br -> j: choosing a must not skip j (Airflow's skip_all_except).
	d := dag.New("branch2")
	a := noop("a")
	j := noop("j", task.Trigger(task.NoneFailedMinOneSuccess))
	br := task.Branch("br", func(ctx context.Context, r *task.Run) ([]task.Task, error) { return []task.Task{a}, nil })
	d.Add(br, a, j)
	br.Then(a, j)
	a.Then(j)
	e := setup(t, []*dag.DAG{d})
	run := e.trigger(d, "r1")
	e.runUntilIdle()
	e.expect(run, task.RunSuccess, map[string]task.State{"a": task.StateSuccess, "j": task.StateSuccess})
}

func TestShortCircuitSkipsAllDownstream(t *testing.T) {
	t.Parallel()
	d := dag.New("sc")
	sc := task.ShortCircuit("gate", func(ctx context.Context, r *task.Run) (bool, error) { return false, nil })
	x := noop("x")
	y := noop("y", task.Trigger(task.AllDone)) // skipped even though all_done would run it
	other := noop("other")
	d.Add(sc, x, y, other)
	sc.Then(x).Then(y)
	e := setup(t, []*dag.DAG{d})
	run := e.trigger(d, "r1")
	e.runUntilIdle()
	e.expect(run, task.RunSuccess, map[string]task.State{
		"gate": task.StateSuccess, "x": task.StateSkipped, "y": task.StateSkipped, "other": task.StateSuccess,
	})
}

func TestSelfSkipPropagates(t *testing.T) {
	t.Parallel()
	d := dag.New("skip")
	s := task.Go("s", func(ctx context.Context, r *task.Run) (int, error) { return 0, task.Skip("no data today") })
	next := noop("next")
	always := noop("always", task.Trigger(task.Always))
	d.Add(s, next, always)
	s.Then(next, always)
	e := setup(t, []*dag.DAG{d})
	run := e.trigger(d, "r1")
	e.runUntilIdle()
	e.expect(run, task.RunSuccess, map[string]task.State{"s": task.StateSkipped, "next": task.StateSkipped, "always": task.StateSuccess})
	if got := e.states(run)["s"].Error; !strings.Contains(got, "no data today") {
		t.Errorf("skip reason = %q", got)
	}
}

func TestExecutionTimeout(t *testing.T) {
	t.Parallel()
	d := dag.New("timeout")
	slow := task.Go("slow", func(ctx context.Context, r *task.Run) (int, error) {
		<-ctx.Done()
		return 0, ctx.Err()
	}, task.Timeout(50*time.Millisecond))
	d.Add(slow)
	e := setup(t, []*dag.DAG{d})
	run := e.trigger(d, "r1")
	e.runUntilIdle()
	e.expect(run, task.RunFailed, map[string]task.State{"slow": task.StateFailed})
	if got := e.states(run)["slow"].Error; !strings.Contains(got, "execution timeout of 50ms exceeded") {
		t.Errorf("error = %q", got)
	}
}

func TestRunTimeoutFailsRunAndSkipsTasks(t *testing.T) {
	t.Parallel()
	d := dag.New("runtimeout", dag.RunTimeout(100*time.Millisecond))
	started := make(chan struct{})
	block := task.Go("block", func(ctx context.Context, r *task.Run) (int, error) {
		close(started)
		<-ctx.Done()
		return 0, ctx.Err()
	})
	after := noop("after")
	d.Add(block, after)
	block.Then(after)
	e := setup(t, []*dag.DAG{d})
	run := e.trigger(d, "r1")
	e.runUntilIdle()
	<-started
	e.expect(run, task.RunFailed, map[string]task.State{"block": task.StateSkipped, "after": task.StateSkipped})
	if got := e.states(run)["after"].Error; !strings.Contains(got, "run timed out") {
		t.Errorf("error = %q", got)
	}
}

func TestPanicBecomesFailureWithStack(t *testing.T) {
	t.Parallel()
	d := dag.New("panic")
	p := task.Go("p", func(ctx context.Context, r *task.Run) (int, error) { panic("kaboom") })
	d.Add(p)
	e := setup(t, []*dag.DAG{d})
	run := e.trigger(d, "r1")
	e.runUntilIdle()
	e.expect(run, task.RunFailed, map[string]task.State{"p": task.StateFailed})
	log, _, err := e.st.Log(context.Background(), run.ID, "p", 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "panic: kaboom") || !strings.Contains(string(log), "goroutine") {
		t.Errorf("log has no panic and stack:\n%s", log)
	}
}

func mustNew(t *testing.T, cfg scheduler.Config) *scheduler.Scheduler {
	t.Helper()
	s, err := scheduler.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// waitRunState waits (bounded) for the event that a run reached state.
func waitRunState(t *testing.T, e *env, runID string, want task.RunState) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ev := <-e.events:
			if ev.TaskID == "" && ev.RunID == runID && ev.RunState == want {
				return
			}
		case <-timeout:
			t.Fatalf("run %s did not reach %s within 20s", runID, want)
		}
	}
}
