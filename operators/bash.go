package operators

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"sync"
	"syscall"
	"text/template"
	"time"

	"github.com/trellisdag/trellis/task"
)

// BashSpec describes a Bash task.
type BashSpec struct {
	// Command is run by bash -c (sh -c where bash is missing). It is a Go
	// text/template over task.TemplateData: {{ .DS }}, {{ .RunID }}, {{ .Params.x }}.
	Command string
	// Env adds environment variables; values are templates like Command.
	Env map[string]string
	// ReplaceEnv starts the command with only Env (and PATH), instead of the
	// runner's environment plus Env.
	ReplaceEnv bool
	// Dir is the working directory (default: a new temporary directory, removed after).
	Dir string
	// SkipExitCode is the exit code that skips the task instead of failing it
	// (default 99, as in Airflow; negative: none).
	SkipExitCode int
	// KillGrace is how long the process group gets between SIGTERM and SIGKILL when
	// the try is stopped (default 10s).
	KillGrace time.Duration
}

// BashTask runs a shell command in a child process, in its own process group. Its
// stdout and stderr go to the try's log; its result is the last line it wrote to
// stdout (Airflow's BashOperator XCom).
type BashTask struct {
	task.Def
	task.Returns[string]
	spec BashSpec
	cmd  *template.Template
	env  map[string]*template.Template
}

var _ task.Ref[string] = (*BashTask)(nil)

// Bash returns a task that runs command, a template, with bash -c.
func Bash(id, command string, opts ...task.Option) *BashTask {
	return BashWith(id, BashSpec{Command: command}, opts...)
}

// BashWith returns a Bash task from a full spec. Templates that do not parse are
// reported by the DAG's Validate.
func BashWith(id string, spec BashSpec, opts ...task.Option) *BashTask {
	b := &BashTask{Def: task.NewDef(id, task.KindBash, opts...), spec: spec, env: map[string]*template.Template{}}
	if spec.SkipExitCode == 0 {
		b.spec.SkipExitCode = 99
	}
	if spec.KillGrace <= 0 {
		b.spec.KillGrace = 10 * time.Second
	}
	var errs []error
	if spec.Command == "" {
		errs = append(errs, errors.New("bash: empty command"))
	}
	var err error
	if b.cmd, err = task.ParseTemplate("command", spec.Command); err != nil {
		errs = append(errs, fmt.Errorf("bash: command template: %w", err))
	}
	for k, v := range spec.Env {
		t, err := task.ParseTemplate("env "+k, v)
		if err != nil {
			errs = append(errs, fmt.Errorf("bash: env %s template: %w", k, err))
			continue
		}
		b.env[k] = t
	}
	for _, e := range errs {
		task.Invalid(e)(&b.Def) // reported by the DAG's Validate
	}
	return b
}

// ExitError is the error of a command that exited with a non-zero status, or was
// killed by a signal (Code is then 128 + the signal's number, as a shell reports it).
type ExitError struct {
	Code   int
	Signal syscall.Signal // 0 unless killed by a signal
}

func (e *ExitError) Error() string {
	if e.Signal != 0 {
		return fmt.Sprintf("command killed by signal %d (%s), status %d", int(e.Signal), e.Signal, e.Code)
	}
	return fmt.Sprintf("command exited with status %d", e.Code)
}

// ExitCode returns the exit status.
func (e *ExitError) ExitCode() int { return e.Code }

// Execute renders the command and env, runs the command, and returns the last
// line of stdout as a JSON string.
func (b *BashTask) Execute(ctx context.Context, r *task.Run) ([]byte, error) {
	command, err := r.Render(b.cmd)
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(b.env))
	for k := range b.env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var env []string
	if !b.spec.ReplaceEnv {
		env = os.Environ()
	} else {
		env = []string{"PATH=" + os.Getenv("PATH")}
	}
	info := r.Info()
	env = append(env, "TRELLIS_DAG_ID="+info.DAGID, "TRELLIS_TASK_ID="+info.TaskID,
		"TRELLIS_RUN_ID="+info.RunID, fmt.Sprintf("TRELLIS_TRY_NUMBER=%d", info.Try))
	if m := task.ProcessMarker(ctx); m != "" {
		env = append(env, task.ProcessMarkerEnv+"="+m)
	}
	for _, k := range keys {
		v, err := r.Render(b.env[k])
		if err != nil {
			return nil, err
		}
		env = append(env, k+"="+v)
	}
	dir := b.spec.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "trellis-bash-"); err != nil {
			return nil, fmt.Errorf("bash: working directory: %w", err)
		}
		defer os.RemoveAll(dir)
	}
	shell := "/bin/sh"
	if p, err := exec.LookPath("bash"); err == nil {
		shell = p
	}
	fmt.Fprintf(r.Output(), "+ %s\n", command)
	last := &lastLine{}
	out := &syncWriter{w: r.Output()}
	code, sig, err := b.run(ctx, shell, command, env, dir, io.MultiWriter(out, last), out)
	if ctx.Err() != nil {
		return nil, fmt.Errorf("bash: stopped: %w", context.Cause(ctx))
	}
	switch {
	case err != nil:
		return nil, err
	case code == b.spec.SkipExitCode && sig == 0:
		return nil, task.Skip(fmt.Sprintf("command exited with status %d", code))
	case code != 0:
		return nil, &ExitError{Code: code, Signal: sig}
	}
	return json.Marshal(last.String())
}

// run starts the command in its own process group, copies its stdout and stderr,
// and waits for it. On Linux the shell also dies with the runner (SIGKILL when
// the runner's thread that started it ends); what the shell started and left
// running is stopped by the local executor's recovery, found by its process
// marker (task.ProcessMarkerEnv). When ctx is done, or once the shell has exited, the whole
// group is stopped: SIGTERM, then SIGKILL after KillGrace, so that no process of a
// try outlives it. A command killed by a signal gets the shell's code, 128+signal.
func (b *BashTask) run(ctx context.Context, shell, command string, env []string, dir string, stdout, stderr io.Writer) (int, syscall.Signal, error) {
	outR, outW, err := os.Pipe()
	if err != nil {
		return 0, 0, fmt.Errorf("bash: %w", err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return 0, 0, fmt.Errorf("bash: %w", err)
	}
	// Pdeathsig fires when the thread that started the shell ends, not the
	// process: keep this goroutine on its thread until the shell is waited for.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cmd := exec.Command(shell, "-c", command)
	cmd.Env, cmd.Dir = env, dir
	cmd.Stdout, cmd.Stderr = outW, errW
	cmd.SysProcAttr = groupAttr()
	err = cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return 0, 0, fmt.Errorf("bash: start: %w", err)
	}
	copied := make(chan struct{}, 2)
	go func() { io.Copy(stdout, outR); outR.Close(); copied <- struct{}{} }()
	go func() { io.Copy(stderr, errR); errR.Close(); copied <- struct{}{} }()

	exited := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			stopGroup(cmd.Process.Pid, b.spec.KillGrace, exited)
		case <-exited:
		}
	}()
	werr := cmd.Wait()
	close(exited)
	// The shell is gone; whatever it left running in its group goes too.
	drained := make(chan struct{})
	go func() { <-copied; <-copied; close(drained) }()
	if !groupGone(cmd.Process.Pid) {
		stopGroup(cmd.Process.Pid, b.spec.KillGrace, drained)
	}
	select {
	case <-drained:
	case <-time.After(b.spec.KillGrace):
		// A process outside the group holds the pipes (it changed its group):
		// stop reading; its output is lost.
		outR.Close()
		errR.Close()
	}
	var ee *exec.ExitError
	if errors.As(werr, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), ws.Signal(), nil
		}
		return ee.ExitCode(), 0, nil
	}
	if werr != nil {
		return 0, 0, fmt.Errorf("bash: %w", werr)
	}
	return 0, 0, nil
}

// groupGone reports whether no process of the group is left.
func groupGone(pgid int) bool {
	return syscall.Kill(-pgid, 0) == syscall.ESRCH
}

// stopGroup sends SIGTERM to the process group, and SIGKILL if it has not ended
// (done closed) within grace.
func stopGroup(pgid int, grace time.Duration, done <-chan struct{}) {
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(grace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// lastLine keeps the last non-empty line written to it (bounded to 64 KiB).
type lastLine struct {
	cur, last []byte
}

func (l *lastLine) Write(p []byte) (int, error) {
	for _, c := range p {
		if c == '\n' {
			if len(bytes.TrimSpace(l.cur)) > 0 {
				l.last = append(l.last[:0], l.cur...)
			}
			l.cur = l.cur[:0]
			continue
		}
		if len(l.cur) < 64<<10 {
			l.cur = append(l.cur, c)
		}
	}
	return len(p), nil
}

func (l *lastLine) String() string {
	if len(bytes.TrimSpace(l.cur)) > 0 {
		return string(l.cur)
	}
	return string(l.last)
}
