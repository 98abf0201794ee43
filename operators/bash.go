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

// ExitError is the error of a command that exited with a non-zero status.
type ExitError struct{ Code int }

func (e *ExitError) Error() string { return fmt.Sprintf("command exited with status %d", e.Code) }

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
	cmd := exec.Command(shell, "-c", command)
	cmd.Env, cmd.Dir = env, dir
	out := &syncWriter{w: r.Output()}
	cmd.Stdout = io.MultiWriter(out, last)
	cmd.Stderr = out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Output pipes are copied by goroutines; a grandchild that keeps them open must
	// not hold the try forever once the command has exited.
	cmd.WaitDelay = b.spec.KillGrace
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bash: start: %w", err)
	}
	stopped := make(chan struct{})
	defer close(stopped)
	go func() {
		select {
		case <-ctx.Done():
		case <-stopped:
			return
		}
		pgid := -cmd.Process.Pid
		_ = syscall.Kill(pgid, syscall.SIGTERM)
		select {
		case <-time.After(b.spec.KillGrace):
			_ = syscall.Kill(pgid, syscall.SIGKILL)
		case <-stopped:
		}
	}()
	err = cmd.Wait()
	if ctx.Err() != nil {
		return nil, fmt.Errorf("bash: stopped: %w", context.Cause(ctx))
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code := ee.ExitCode()
		if code == -1 { // killed by a signal
			return nil, fmt.Errorf("bash: %w", err)
		}
		if code == b.spec.SkipExitCode {
			return nil, task.Skip(fmt.Sprintf("command exited with status %d", code))
		}
		return nil, &ExitError{Code: code}
	}
	if err != nil {
		return nil, fmt.Errorf("bash: %w", err)
	}
	return jsonString(last.String())
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

func jsonString(s string) ([]byte, error) { return json.Marshal(s) }
