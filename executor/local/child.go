package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/trellisdag/trellis/executor"
	"github.com/trellisdag/trellis/k8s/termination"
	"github.com/trellisdag/trellis/task"
)

// ChildResultFile is the file, in the directory Config.Child is given, where
// the child writes how its try ended (a termination.Message as JSON).
const ChildResultFile = "result.json"

// childKillGrace is how long a child has to exit after SIGTERM (its timeout,
// a kill, shutdown) before its process group is SIGKILLed.
const childKillGrace = 5 * time.Second

// childExit is a child that ended without saying how its try ended: it
// crashed (a panic in another goroutine, os.Exit, a signal, the OOM killer).
type childExit struct {
	code     int
	signal   syscall.Signal
	stderr   string // its last lines
	returned bool   // the task had returned (success) when the process died
}

func (e *childExit) Error() string {
	how := fmt.Sprintf("exited with status %d", e.code)
	if e.signal != 0 {
		how = fmt.Sprintf("was killed by signal %d (%s)", int(e.signal), e.signal)
	}
	msg := "the task's process " + how + " before it reported its end"
	if e.returned {
		msg = "the task's process " + how + " after the task returned (something it left running crashed it)"
	}
	if e.stderr != "" {
		msg += "; the last lines of its stderr: " + e.stderr
	}
	return msg
}

// ExitCode is the child's exit status (128 + the signal for a signal).
func (e *childExit) ExitCode() int { return e.code }

// runChild runs one try in a child process made by Config.Child: its stdout
// and stderr go to the try's log, ctx's end stops its process group (SIGTERM,
// then SIGKILL), and the end it wrote to ChildResultFile becomes the try's.
func (e *Executor) runChild(ctx context.Context, t executor.Try, log io.Writer) ([]byte, error) {
	dir, err := os.MkdirTemp("", "trellis-try-")
	if err != nil {
		return nil, fmt.Errorf("isolated try: %w", err)
	}
	defer os.RemoveAll(dir)
	cmd, err := e.cfg.Child(ctx, t, dir)
	if err != nil {
		return nil, fmt.Errorf("isolated try: %w", err)
	}
	tail := &tailLines{max: 20}
	cmd.Stdout, cmd.Stderr = log, io.MultiWriter(log, tail)
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	if m := task.ProcessMarker(ctx); m != "" {
		cmd.Env = append(cmd.Env, task.ProcessMarkerEnv+"="+m)
	}
	cmd.SysProcAttr = childAttr()
	// Pdeathsig fires when the thread that started the child ends: keep this
	// goroutine on its thread until the child is waited for.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("isolated try: start %s: %w", cmd.Path, err)
	}
	exited := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(childKillGrace):
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			}
		case <-exited:
		}
	}()
	werr := cmd.Wait()
	close(exited)
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // whatever the child left in its group

	crashed := func(returned bool) error {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		ce := &childExit{code: -1, stderr: tail.String(), returned: returned}
		var ee *exec.ExitError
		if errors.As(werr, &ee) {
			ce.code = ee.ExitCode()
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				ce.signal, ce.code = ws.Signal(), 128+int(ws.Signal())
			}
		}
		return ce
	}
	raw, err := os.ReadFile(filepath.Join(dir, ChildResultFile))
	if err != nil {
		return nil, crashed(false)
	}
	var m termination.Message
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("isolated try: its end (%s): %w", ChildResultFile, err)
	}
	if m.Status == termination.Succeeded && werr != nil {
		// The task returned, then something it left running crashed the
		// process: the try does not count as a success.
		return nil, crashed(true)
	}
	switch m.Status {
	case termination.Succeeded:
		return m.Result, nil
	case termination.Skipped:
		return nil, fmt.Errorf("%w: %s", task.ErrSkip, m.Error)
	default:
		var err error = &childFailed{msg: m.Error, code: m.ExitCode}
		if m.NoRetry {
			err = fmt.Errorf("%w: %w", task.ErrFailNow, err)
		}
		return nil, err
	}
}

// childFailed is a try that failed in its child and said so.
type childFailed struct {
	msg  string
	code int
}

func (e *childFailed) Error() string { return e.msg }

// ExitCode is the status the child exited with (a Bash task's, or 1).
func (e *childFailed) ExitCode() int { return e.code }

// tailLines keeps the last max lines written to it (at most 16 KiB).
type tailLines struct {
	mu    sync.Mutex
	max   int
	lines []string
	part  string
}

func (t *tailLines) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.part + string(p)
	parts := strings.Split(s, "\n")
	t.part = parts[len(parts)-1]
	if len(t.part) > 1024 {
		t.part = t.part[len(t.part)-1024:]
	}
	for _, l := range parts[:len(parts)-1] {
		if len(l) > 800 {
			l = l[:800] + "…"
		}
		t.lines = append(t.lines, l)
	}
	if len(t.lines) > t.max {
		t.lines = t.lines[len(t.lines)-t.max:]
	}
	return len(p), nil
}

// String is the kept lines, joined by " | ".
func (t *tailLines) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := t.lines
	if t.part != "" {
		lines = append(lines[:len(lines):len(lines)], t.part)
	}
	return strings.Join(lines, " | ")
}
