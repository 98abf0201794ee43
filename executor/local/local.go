package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"time"

	"github.com/trellisdag/trellis/executor"
	"github.com/trellisdag/trellis/task"
)

// Config configures an Executor.
type Config struct {
	// Report receives every try's start and end. Required.
	Report executor.ReportFunc
	// Values is the context every try's context carries the values of (the
	// runner puts the cluster it talks to there, k8s.WithCluster); its
	// cancellation is ignored. Nil: none.
	Values context.Context
	// Logs opens the log of a try; the executor closes it before reporting the end.
	// Nil discards logs.
	Logs func(executor.Key) io.WriteCloser
	// Host is recorded as where tries run (default: the machine's hostname).
	Host string
	// Instance identifies the runner's database (the runner's instance id).
	// When set, every process a try starts carries a marker naming the
	// instance and the try (task.ProcessMarkerEnv), and Recover stops the
	// processes of the tries it recovers before it reports them, so that a
	// process that outlived a crashed runner never overlaps its task's next
	// try. Empty: processes are not marked, and Recover cannot find them.
	Instance string
	// Child, when set, runs the tries Isolate selects in a child process: it
	// returns the command of one try (the binary's task-run entrypoint), with
	// whatever files it needs written into dir, a fresh directory removed
	// after the try; the child writes its end to dir/ChildResultFile. A panic
	// in any goroutine, os.Exit, a segfault or an OOM kill then fails only
	// that try, with the exit status and the last lines of stderr; a stopped
	// try's child gets SIGTERM, then SIGKILL.
	Child func(ctx context.Context, t executor.Try, dir string) (*exec.Cmd, error)
	// Isolate selects the tries that run in a child process (default none).
	Isolate func(t executor.Try) bool
	// CrashReport is what the Go runtime wrote when the previous process
	// crashed (runtime/debug.SetCrashOutput); Recover appends it to the log
	// of every try it recovers, where the cause of the crash is looked for.
	CrashReport []byte
	// AbandonAfter is how long a try may go on after it was stopped (its
	// execution timeout, a kill or shutdown) before it is failed anyway and its
	// slot freed (default DefaultAbandonAfter). A Go function that ignores its
	// context cannot be stopped in-process: its goroutine is abandoned, runs
	// until it returns, and what it returns or logs is dropped.
	AbandonAfter time.Duration
}

// DefaultAbandonAfter is Config.AbandonAfter's default.
const DefaultAbandonAfter = 10 * time.Second

// Executor runs tries in goroutines of this process. The scheduler limits how many
// run at once.
type Executor struct {
	cfg     Config
	base    context.Context
	stop    context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	running map[executor.Key]context.CancelCauseFunc
}

var _ executor.Executor = (*Executor)(nil)

// New returns a local executor.
func New(cfg Config) *Executor {
	if cfg.Host == "" {
		cfg.Host, _ = os.Hostname()
	}
	if cfg.Logs == nil {
		cfg.Logs = func(executor.Key) io.WriteCloser { return nopCloser{io.Discard} }
	}
	if cfg.AbandonAfter <= 0 {
		cfg.AbandonAfter = DefaultAbandonAfter
	}
	root := context.Background()
	if cfg.Values != nil {
		root = context.WithoutCancel(cfg.Values)
	}
	base, stop := context.WithCancel(root)
	return &Executor{cfg: cfg, base: base, stop: stop, running: map[executor.Key]context.CancelCauseFunc{}}
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// ErrTimeout is the cause of a try stopped by its execution timeout.
var ErrTimeout = errors.New("execution timeout")

// ErrShutdown is returned by Start after Shutdown.
var ErrShutdown = errors.New("local executor is shut down")

// Start runs the try in a new goroutine.
func (e *Executor) Start(_ context.Context, t executor.Try) error {
	if e.base.Err() != nil {
		return ErrShutdown
	}
	ctx, cancel := context.WithCancelCause(e.base)
	if m := e.marker(t.Key); m != "" {
		ctx = task.WithProcessMarker(ctx, m)
	}
	if t.Lookup != nil {
		ctx = task.WithLookup(ctx, t.Lookup)
	}
	if t.Timeout > 0 {
		var c2 context.CancelFunc
		ctx, c2 = context.WithTimeoutCause(ctx, t.Timeout, fmt.Errorf("%w of %s exceeded", ErrTimeout, t.Timeout))
		inner := cancel
		cancel = func(err error) { inner(err); c2() }
	}
	e.mu.Lock()
	e.running[t.Key] = cancel
	e.mu.Unlock()
	e.wg.Add(1)
	go e.run(ctx, cancel, t)
	return nil
}

func (e *Executor) run(ctx context.Context, cancel context.CancelCauseFunc, t executor.Try) {
	defer e.wg.Done()
	log := e.cfg.Logs(t.Key)
	gate := &gatedWriter{w: log} // what the task writes to
	e.cfg.Report(executor.Report{Key: t.Key, Status: executor.Started, Host: e.cfg.Host, At: time.Now()})
	var result []byte
	var err error
	// A sensor's poke always runs in this process: it is short, and its
	// not-yet answer (task.ErrNotDone) is not a process outcome.
	if e.cfg.Child != nil && e.cfg.Isolate != nil && e.cfg.Isolate(t) && task.SettingsOf(t.Task).Kind != task.KindSensor {
		result, err = e.runChild(ctx, t, gate)
	} else {
		result, err = e.execute(ctx, t.Task, task.NewRun(t.Task, t.Info, t.Params, t.Conf, t.Inputs, gate), gate)
	}
	gate.shutOff()                           // goroutines the task left behind no longer write to the closed log
	o := executor.Classify(ctx, result, err) // before cancel: it reads whether the try was stopped
	cancel(nil)
	e.mu.Lock()
	delete(e.running, t.Key)
	e.mu.Unlock()
	rep := executor.Report{Key: t.Key, Host: e.cfg.Host, Status: o.Status, Result: o.Result, Error: o.Error,
		NoRetry: o.NoRetry, ExitCode: o.ExitCode}
	if o.Status == executor.Failed {
		fmt.Fprintf(log, "task failed: %v\n", o.Err)
	}
	if cerr := log.Close(); cerr != nil && rep.Status == executor.Succeeded {
		rep.Status, rep.Error = executor.Failed, "save log: "+executor.OneLine(cerr)
	}
	rep.At = time.Now()
	e.cfg.Report(rep)
}

// execute runs the task in a goroutine of its own and waits for it; once ctx
// is done it waits AbandonAfter more, then gives the try up: the goroutine is
// left to end on its own, its log closed to it.
func (e *Executor) execute(ctx context.Context, t task.Task, r *task.Run, log *gatedWriter) ([]byte, error) {
	type outcome struct {
		result []byte
		err    error
	}
	done := make(chan outcome, 1)
	go func() {
		result, err := executor.RunTry(ctx, t, r, log)
		done <- outcome{result, err}
	}()
	select {
	case o := <-done:
		return o.result, o.err
	case <-ctx.Done():
	}
	timer := time.NewTimer(e.cfg.AbandonAfter)
	defer timer.Stop()
	select {
	case o := <-done:
		return o.result, o.err
	case <-timer.C:
		log.shutOff()
		return nil, fmt.Errorf("%w; the task did not return within %s after it was stopped (local.Config.AbandonAfter, default %s): "+
			"its goroutine is abandoned and the try failed", context.Cause(ctx), e.cfg.AbandonAfter, DefaultAbandonAfter)
	}
}

// gatedWriter is a try's log as its task sees it: once the try is given up,
// the abandoned task's writes are dropped.
type gatedWriter struct {
	mu     sync.Mutex
	w      io.Writer
	closed bool
}

func (g *gatedWriter) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return len(p), nil // dropped: the try was given up
	}
	return g.w.Write(p)
}

// shutOff drops every later write.
func (g *gatedWriter) shutOff() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

// Kill cancels a running try; its end is reported as a failure with the reason.
func (e *Executor) Kill(_ context.Context, k executor.Key, reason string) error {
	e.mu.Lock()
	cancel, ok := e.running[k]
	e.mu.Unlock()
	if ok {
		cancel(errors.New(reason))
	}
	return nil
}

// marker is the process marker of a try ("" without an Instance).
func (e *Executor) marker(k executor.Key) string {
	if e.cfg.Instance == "" {
		return ""
	}
	return fmt.Sprintf("%s/%d/%s/%d", e.cfg.Instance, k.Run, k.TaskID, k.Try)
}

// Recover reports every try of a previous process as Interrupted: its
// goroutine died with that process, and a queued try may have started too
// (the executor starts a try before its running state is committed), so the
// try is ended, never reused, and the task runs again (see
// executor.Interrupted). First it stops what those tries started and left
// running on this machine (found by their process markers): the shell of a
// Bash task dies with the runner, but what the shell started may not.
func (e *Executor) Recover(ctx context.Context, tries []executor.Try) error {
	markers := map[string]bool{}
	for _, t := range tries {
		if m := e.marker(t.Key); m != "" {
			markers[m] = true
		}
	}
	killed, err := killMarked(ctx, markers)
	if err != nil {
		return fmt.Errorf("local executor: stop the processes of interrupted tries: %w", err)
	}
	for _, t := range tries {
		rep := executor.Report{Key: t.Key, At: time.Now(), Host: t.Host, Status: executor.Interrupted}
		if t.State == task.StateQueued {
			rep.Error = executor.InterruptedPrefix + "the runner stopped after it handed the try to its local executor, before the try was recorded as running: it may have run"
		} else {
			rep.Error = executor.InterruptedPrefix + "the runner stopped while the try was running; its goroutine or process died with it"
		}
		if n := killed[e.marker(t.Key)]; n > 0 {
			rep.Error += fmt.Sprintf(" (%d process(es) it had started outlived the runner and were killed)", n)
		}
		if len(e.cfg.CrashReport) > 0 {
			rep.Error += " (the runner crashed: its crash report is in this try's log)"
			w := e.cfg.Logs(t.Key)
			fmt.Fprintf(w, "\n[trellis: the runner crashed while this try was in flight; its crash report follows]\n%s\n", e.cfg.CrashReport)
			if err := w.Close(); err != nil {
				return fmt.Errorf("local executor: attach the crash report to task %q try %d: %w", t.TaskID, t.Try, err)
			}
		}
		e.cfg.Report(rep)
	}
	return nil
}

// Shutdown cancels every running try and waits until each has reported, or ctx is
// done.
func (e *Executor) Shutdown(ctx context.Context) error {
	e.stop()
	done := make(chan struct{})
	go func() { e.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
