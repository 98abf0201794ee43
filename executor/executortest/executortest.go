package executortest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trellisdag/trellis/executor"
	"github.com/trellisdag/trellis/task"
)

// Behavior is what the task of a try does.
type Behavior int

// Behaviors.
const (
	// Succeed returns Result.
	Succeed Behavior = iota
	// Fail returns an error whose text is FailMessage.
	Fail
	// FailNow returns task.ErrFailNow wrapped with FailMessage.
	FailNow
	// Skip returns task.ErrSkip wrapped with SkipMessage.
	Skip
	// Block runs until it is stopped (a kill, its timeout, a shutdown).
	Block
)

func (b Behavior) String() string {
	return [...]string{"succeed", "fail", "fail_now", "skip", "block"}[b]
}

// What the tasks return.
const (
	// Result is the JSON result of a Succeed task.
	Result = "42"
	// FailMessage is in the error of a Fail or FailNow task.
	FailMessage = "executortest: the task failed on purpose"
	// SkipMessage is in the error of a Skip task.
	SkipMessage = "executortest: the task skipped itself"
)

// GoTask returns a Go task (task.Go) with the id that behaves as b: a task
// for executors that run Go functions.
func GoTask(id string, b Behavior) task.Task {
	return task.Go(id, func(ctx context.Context, _ *task.Run) (int, error) {
		switch b {
		case Succeed:
			return 42, nil
		case Fail:
			return 0, errors.New(FailMessage)
		case FailNow:
			return 0, fmt.Errorf("%s: %w", FailMessage, task.ErrFailNow)
		case Skip:
			return 0, fmt.Errorf("%s: %w", SkipMessage, task.ErrSkip)
		default:
			<-ctx.Done()
			return 0, context.Cause(ctx)
		}
	})
}

// Harness is what RunConformance needs of an executor.
type Harness struct {
	// New returns a fresh executor that sends every report of its tries to
	// report. Required. The suite shuts it down (once) at the end of the
	// subtest; what else the harness must release it registers with
	// t.Cleanup (it runs after that shutdown).
	New func(t *testing.T, report executor.ReportFunc) executor.Executor
	// Try returns a try of key k whose task behaves as b. Required. The
	// suite sets Info when it is left zero, and sets Timeout and State.
	Try func(t *testing.T, k executor.Key, b Behavior) executor.Try
	// Wait bounds each wait for a report, and Shutdown (default 30s).
	Wait time.Duration
	// Timeout is the execution timeout of the timeout check (default 200ms).
	Timeout time.Duration
	// NoRetry says the executor carries task.ErrFailNow to Report.NoRetry
	// (an executor that runs the task elsewhere may learn only that it
	// failed).
	NoRetry bool
	// ShutdownEndsTries says Shutdown stops the tries still running and
	// reports their ends (the local executor); false: it leaves them
	// running, unreported, for the next process to adopt (the Kubernetes
	// executor).
	ShutdownEndsTries bool
	// RecoverQueued and RecoverRunning are the statuses Recover reports for
	// a queued and for a running try that no longer runs anywhere. The local
	// executor says Interrupted for both (its goroutines died with the
	// process, and a queued try may have started); the Kubernetes executor
	// says Lost for a queued try without a pod (it never started) and
	// Failed for a running one (its end is unknown).
	RecoverQueued, RecoverRunning executor.Status
}

var seq atomic.Int64

// stamp makes the keys of one test process unique among those of earlier
// ones (an executor may find what earlier processes left behind).
var stamp = strconv.FormatInt(time.Now().UnixMilli()%1e9, 36)

// RunConformance checks the executor seam's contract (see the package
// documentation), each check a parallel subtest with an executor of its own.
func RunConformance(t *testing.T, h Harness) {
	t.Helper()
	if h.New == nil || h.Try == nil {
		t.Fatal("executortest: Harness.New and Harness.Try are required")
	}
	if h.Wait <= 0 {
		h.Wait = 30 * time.Second
	}
	if h.Timeout <= 0 {
		h.Timeout = 200 * time.Millisecond
	}
	for _, c := range []struct {
		name string
		run  func(*env)
	}{
		{"Success", testSuccess},
		{"Failure", testFailure},
		{"FailNow", testFailNow},
		{"Skip", testSkip},
		{"Kill", testKill},
		{"KillUnknown", testKillUnknown},
		{"Timeout", testTimeout},
		{"Shutdown", testShutdown},
		{"Recover", testRecover},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(newEnv(t, h))
		})
	}
}

// env is one subtest's executor and the reports it made.
type env struct {
	t    *testing.T
	h    Harness
	ex   executor.Executor
	shut bool

	mu      sync.Mutex
	reports []executor.Report
	signal  chan struct{}
	read    int // reports[:read] were checked
}

func newEnv(t *testing.T, h Harness) *env {
	e := &env{t: t, h: h, signal: make(chan struct{}, 1)}
	e.ex = h.New(t, e.report)
	t.Cleanup(e.finish)
	return e
}

func (e *env) report(r executor.Report) {
	e.mu.Lock()
	e.reports = append(e.reports, r)
	e.mu.Unlock()
	select {
	case e.signal <- struct{}{}:
	default:
	}
}

// finish shuts the executor down and checks that no report came beyond
// those the subtest expected.
func (e *env) finish() {
	if !e.shut {
		e.shutdown()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, r := range e.reports[e.read:] {
		e.t.Errorf("unexpected report after the try's end: %s", describe(r))
	}
}

func (e *env) shutdown() error {
	e.t.Helper()
	e.shut = true
	ctx, cancel := context.WithTimeout(context.Background(), e.h.Wait)
	defer cancel()
	began := time.Now()
	err := e.ex.Shutdown(ctx)
	if d := time.Since(began); d > e.h.Wait+time.Second {
		e.t.Errorf("Shutdown returned %s after its context's deadline (%s)", d-e.h.Wait, e.h.Wait)
	}
	return err
}

// key returns a key no other try of this process or an earlier one has.
func (e *env) key(taskID string) executor.Key {
	n := seq.Add(1)
	return executor.Key{Run: n, DAGID: "executortest", RunID: fmt.Sprintf("conformance__%s_%d", stamp, n), TaskID: taskID, Try: 1}
}

func (e *env) try(b Behavior, timeout time.Duration) executor.Try {
	k := e.key(b.String())
	tr := e.h.Try(e.t, k, b)
	if tr.Key != k {
		e.t.Fatalf("Harness.Try returned key %+v, want %+v", tr.Key, k)
	}
	if tr.Info == (task.Info{}) {
		tr.Info = task.Info{DAGID: k.DAGID, TaskID: k.TaskID, RunID: k.RunID, Try: k.Try, MaxTries: 1}
	}
	tr.Timeout, tr.State = timeout, task.StateQueued
	return tr
}

func (e *env) start(tr executor.Try) {
	e.t.Helper()
	if err := e.ex.Start(context.Background(), tr); err != nil {
		e.t.Fatalf("Start: %v", err)
	}
}

// next returns the next report, failing the test after Harness.Wait.
func (e *env) next(what string) executor.Report {
	e.t.Helper()
	timer := time.NewTimer(e.h.Wait)
	defer timer.Stop()
	for {
		e.mu.Lock()
		if e.read < len(e.reports) {
			r := e.reports[e.read]
			e.read++
			e.mu.Unlock()
			if r.At.IsZero() {
				e.t.Errorf("report without a time: %s", describe(r))
			}
			return r
		}
		e.mu.Unlock()
		select {
		case <-e.signal:
		case <-timer.C:
			e.t.Fatalf("no report within %s while waiting for %s", e.h.Wait, what)
		}
	}
}

// started waits for the try's Started report.
func (e *env) started(k executor.Key) {
	e.t.Helper()
	r := e.next("the try to start")
	if r.Key != k || r.Status != executor.Started {
		e.t.Fatalf("report %s, want started of %+v", describe(r), k)
	}
}

// end waits for the try's terminal report; Started may come first, once.
func (e *env) end(k executor.Key, seenStart bool) executor.Report {
	e.t.Helper()
	for {
		r := e.next("the try's end")
		if r.Key != k {
			e.t.Fatalf("report %s: its key is not the try's %+v", describe(r), k)
		}
		if r.Status != executor.Started {
			return r
		}
		if seenStart {
			e.t.Errorf("a second started report: %s", describe(r))
		}
		seenStart = true
	}
}

func describe(r executor.Report) string {
	s := fmt.Sprintf("%v of %s/%s/%s try %d", r.Status, r.DAGID, r.RunID, r.TaskID, r.Try)
	if r.Error != "" {
		s += fmt.Sprintf(" (%s)", r.Error)
	}
	return s
}

func (e *env) want(r executor.Report, status executor.Status) {
	e.t.Helper()
	if r.Status != status {
		e.t.Fatalf("end %s, want %v", describe(r), status)
	}
}

func testSuccess(e *env) {
	tr := e.try(Succeed, 0)
	e.start(tr)
	r := e.end(tr.Key, false)
	e.want(r, executor.Succeeded)
	if string(r.Result) != Result {
		e.t.Errorf("result %q, want %q", r.Result, Result)
	}
	if r.Error != "" || r.NoRetry {
		e.t.Errorf("success with error %q, NoRetry %v", r.Error, r.NoRetry)
	}
}

func testFailure(e *env) {
	tr := e.try(Fail, 0)
	e.start(tr)
	r := e.end(tr.Key, false)
	e.want(r, executor.Failed)
	if !strings.Contains(r.Error, FailMessage) {
		e.t.Errorf("error %q does not say the task's %q", r.Error, FailMessage)
	}
	if r.NoRetry {
		e.t.Error("a plain failure is NoRetry")
	}
}

func testFailNow(e *env) {
	tr := e.try(FailNow, 0)
	e.start(tr)
	r := e.end(tr.Key, false)
	e.want(r, executor.Failed)
	if !strings.Contains(r.Error, FailMessage) {
		e.t.Errorf("error %q does not say the task's %q", r.Error, FailMessage)
	}
	if e.h.NoRetry && !r.NoRetry {
		e.t.Error("task.ErrFailNow did not make the failure NoRetry")
	}
}

func testSkip(e *env) {
	tr := e.try(Skip, 0)
	e.start(tr)
	e.want(e.end(tr.Key, false), executor.Skipped)
}

const killReason = "executortest: killed by the suite"

func testKill(e *env) {
	tr := e.try(Block, 0)
	e.start(tr)
	e.started(tr.Key)
	if err := e.ex.Kill(context.Background(), tr.Key, killReason); err != nil {
		e.t.Fatalf("Kill: %v", err)
	}
	r := e.end(tr.Key, true)
	e.want(r, executor.Failed)
	if !strings.Contains(r.Error, killReason) {
		e.t.Errorf("error %q does not give the kill's reason %q", r.Error, killReason)
	}
}

func testKillUnknown(e *env) {
	if err := e.ex.Kill(context.Background(), e.key("unknown"), killReason); err != nil {
		e.t.Errorf("Kill of a try the executor does not know: %v", err)
	}
	// finish checks that nothing was reported.
}

func testTimeout(e *env) {
	tr := e.try(Block, e.h.Timeout)
	began := time.Now()
	e.start(tr)
	r := e.end(tr.Key, false)
	e.want(r, executor.Failed)
	if !strings.Contains(strings.ToLower(r.Error), "timeout") || !strings.Contains(r.Error, e.h.Timeout.String()) {
		e.t.Errorf("error %q does not name the timeout of %s", r.Error, e.h.Timeout)
	}
	if d := time.Since(began); d < e.h.Timeout {
		e.t.Errorf("ended %s after Start, before its timeout of %s", d, e.h.Timeout)
	}
}

func testShutdown(e *env) {
	tr := e.try(Block, 0)
	e.start(tr)
	e.started(tr.Key)
	if err := e.shutdown(); err != nil {
		e.t.Errorf("Shutdown: %v", err)
	}
	if e.h.ShutdownEndsTries {
		r := e.end(tr.Key, true)
		if r.Status != executor.Failed && r.Status != executor.Interrupted {
			e.t.Errorf("end %s of a try stopped by Shutdown, want failed or interrupted", describe(r))
		}
	}
	if err := e.ex.Start(context.Background(), e.try(Succeed, 0)); err == nil {
		e.t.Error("Start after Shutdown returned no error")
	}
}

func testRecover(e *env) {
	queued, running := e.try(Succeed, 0), e.try(Succeed, 0)
	running.State = task.StateRunning
	if err := e.ex.Recover(context.Background(), []executor.Try{queued, running}); err != nil {
		e.t.Fatalf("Recover: %v", err)
	}
	got := map[executor.Key]executor.Report{}
	for range 2 {
		r := e.next("the recovered tries' reports")
		if _, dup := got[r.Key]; dup {
			e.t.Errorf("a second report of a recovered try: %s", describe(r))
		}
		got[r.Key] = r
	}
	for _, c := range []struct {
		tr   executor.Try
		want executor.Status
	}{{queued, e.h.RecoverQueued}, {running, e.h.RecoverRunning}} {
		r, ok := got[c.tr.Key]
		switch {
		case !ok:
			e.t.Errorf("the recovered %v try was not reported", c.tr.State)
		case r.Status != c.want:
			e.t.Errorf("recovered %v try: %s, want %v", c.tr.State, describe(r), c.want)
		case r.Error == "":
			e.t.Errorf("recovered %v try: %s says nothing of what happened", c.tr.State, describe(r))
		case r.Status == executor.Interrupted && !strings.HasPrefix(r.Error, executor.InterruptedPrefix):
			e.t.Errorf("recovered %v try: interrupted error %q does not start with executor.InterruptedPrefix", c.tr.State, r.Error)
		}
	}
}
