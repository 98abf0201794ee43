package operators_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/operators"
	"github.com/trellisdag/trellis/task"
)

var logicalDate = time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)

// inheritedVar is set in this process's environment, to tell the inherited
// environment from a replaced one.
const inheritedVar = "TRELLIS_TEST_INHERITED"

func TestMain(m *testing.M) {
	os.Setenv(inheritedVar, "inherited")
	os.Exit(m.Run())
}

// logBuf is a try's log. It hands every "PID=<n>" line the command prints to pids.
type logBuf struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	partial []byte
	pids    chan int
}

func newLog() *logBuf { return &logBuf{pids: make(chan int, 16)} }

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		if n, ok := strings.CutPrefix(string(l.partial[:i]), "PID="); ok {
			if pid, err := strconv.Atoi(n); err == nil {
				l.pids <- pid
			}
		}
		l.partial = l.partial[i+1:]
	}
	return len(p), nil
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// newRun is the context of try 1 of t in run manual__2024-01-02 of DAG "etl".
func newRun(t task.Task, params map[string]any, log *logBuf) *task.Run {
	info := task.Info{DAGID: "etl", TaskID: t.ID(), RunID: "manual__2024-01-02", RunType: task.RunManual, Try: 1, MaxTries: 1,
		LogicalDate: logicalDate, DataIntervalStart: logicalDate, DataIntervalEnd: logicalDate.AddDate(0, 0, 1)}
	conf, _ := json.Marshal(params)
	return task.NewRun(t, info, params, conf, nil, log)
}

func execute(t *testing.T, b *operators.BashTask, params map[string]any) ([]byte, *logBuf, error) {
	t.Helper()
	log := newLog()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := b.Execute(ctx, newRun(b, params, log))
	return out, log, err
}

func TestBashResult(t *testing.T) {
	t.Parallel()
	params := map[string]any{"table": "users", "n": 3}
	cases := []struct {
		name string
		spec operators.BashSpec
		want string
	}{
		{"DS", operators.BashSpec{Command: "echo {{ .DS }}"}, "2024-01-02"},
		{"params", operators.BashSpec{Command: "echo {{ .Params.table }} {{ .Params.n }}"}, "users 3"},
		{"run id and try", operators.BashSpec{Command: "echo {{ .RunID }} {{ .TryNumber }} {{ .TaskID }}"}, "manual__2024-01-02 1 t"},
		{"conf", operators.BashSpec{Command: "echo {{ .Conf.table }}"}, "users"},
		{"env template", operators.BashSpec{Command: `echo "$TABLE/$PART"`,
			Env: map[string]string{"TABLE": "{{ .Params.table }}", "PART": "{{ .DSNodash }}"}}, "users/20240102"},
		{"trellis env", operators.BashSpec{Command: `echo "$TRELLIS_DAG_ID $TRELLIS_TASK_ID $TRELLIS_RUN_ID $TRELLIS_TRY_NUMBER"`},
			"etl t manual__2024-01-02 1"},
		{"last line", operators.BashSpec{Command: "echo one; echo two; echo; echo '   '"}, "two"},
		{"last line without newline", operators.BashSpec{Command: `printf 'a\nb'`}, "b"},
		{"stderr is not the result", operators.BashSpec{Command: "echo out; echo err >&2"}, "out"},
		{"no output", operators.BashSpec{Command: "true"}, ""},
		{"quotes", operators.BashSpec{Command: `echo 'say "hi" \ bye'`}, `say "hi" \ bye`},
		{"working directory", operators.BashSpec{Command: "pwd", Dir: "/"}, "/"},
		{"inherited environment", operators.BashSpec{Command: `echo "${` + inheritedVar + `-unset}"`}, "inherited"},
		{"replaced environment", operators.BashSpec{Command: `echo "${` + inheritedVar + `-unset} $X"`, ReplaceEnv: true,
			Env: map[string]string{"X": "x"}}, "unset x"},
		{"replaced environment keeps PATH", operators.BashSpec{Command: `echo "$PATH"`, ReplaceEnv: true}, os.Getenv("PATH")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			out, log, err := execute(t, operators.BashWith("t", c.spec), params)
			if err != nil {
				t.Fatalf("Execute: %v\nlog:\n%s", err, log)
			}
			var got string
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("result %s is not a JSON string: %v", out, err)
			}
			if got != c.want {
				t.Errorf("result = %q, want %q\nlog:\n%s", got, c.want, log)
			}
		})
	}
}

func TestBashWorkingDirectory(t *testing.T) {
	t.Parallel()
	out, _, err := execute(t, operators.Bash("t", "pwd; touch made-here"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var dir string
	if err := json.Unmarshal(out, &dir); err != nil || !filepath.IsAbs(dir) {
		t.Fatalf("pwd = %s, %v", out, err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the temporary working directory %s was not removed: %v", dir, err)
	}

	mine := t.TempDir()
	if _, _, err := execute(t, operators.BashWith("t", operators.BashSpec{Command: "touch made-here", Dir: mine}), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(mine, "made-here")); err != nil {
		t.Errorf("the command did not run in Dir: %v", err)
	}
}

func TestBashLog(t *testing.T) {
	t.Parallel()
	out, log, err := execute(t, operators.Bash("t", "echo to-stdout; echo to-stderr >&2; echo {{ .DS }}"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != `"2024-01-02"` {
		t.Errorf("result = %s", out)
	}
	got := log.String()
	for _, want := range []string{"+ echo to-stdout; echo to-stderr >&2; echo 2024-01-02\n", "to-stdout\n", "to-stderr\n", "2024-01-02\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("log lacks %q:\n%s", want, got)
		}
	}
	// The command line (rendered) comes first.
	if !strings.HasPrefix(got, "+ echo to-stdout") {
		t.Errorf("log does not start with the rendered command:\n%s", got)
	}
}

func TestBashExit(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		spec     operators.BashSpec
		wantSkip bool
		wantCode int // for a failure; 0 means success
	}{
		{"success", operators.BashSpec{Command: "exit 0"}, false, 0},
		{"failure", operators.BashSpec{Command: "echo doing; exit 3"}, false, 3},
		{"failure of the last command", operators.BashSpec{Command: "false"}, false, 1},
		{"command not found", operators.BashSpec{Command: "no-such-command-trellis"}, false, 127},
		{"99 skips", operators.BashSpec{Command: "exit 99"}, true, 0},
		{"other skip code", operators.BashSpec{Command: "exit 42", SkipExitCode: 42}, true, 0},
		{"99 fails when another code skips", operators.BashSpec{Command: "exit 99", SkipExitCode: 42}, false, 99},
		{"no skip code", operators.BashSpec{Command: "exit 99", SkipExitCode: -1}, false, 99},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, log, err := execute(t, operators.BashWith("t", c.spec), nil)
			var ec interface{ ExitCode() int }
			switch {
			case c.wantSkip:
				if !errors.Is(err, task.ErrSkip) {
					t.Fatalf("Execute = %v, want ErrSkip", err)
				}
				if errors.As(err, &ec) {
					t.Errorf("a skip carries an exit code %d", ec.ExitCode())
				}
			case c.wantCode != 0:
				if !errors.As(err, &ec) {
					t.Fatalf("Execute = %v (%T), want an error with ExitCode()\nlog:\n%s", err, err, log)
				}
				if ec.ExitCode() != c.wantCode {
					t.Errorf("ExitCode() = %d, want %d", ec.ExitCode(), c.wantCode)
				}
				if errors.Is(err, task.ErrSkip) {
					t.Error("a failure matches ErrSkip")
				}
				if !strings.Contains(err.Error(), strconv.Itoa(c.wantCode)) {
					t.Errorf("error %q does not give the status", err)
				}
			default:
				if err != nil {
					t.Fatalf("Execute = %v", err)
				}
			}
		})
	}

	// Killed by a signal: a failure, not a skip.
	_, _, err := execute(t, operators.Bash("t", "kill -KILL $$"), nil)
	if err == nil || errors.Is(err, task.ErrSkip) || !strings.Contains(err.Error(), "killed") {
		t.Errorf("Execute of a command killed by SIGKILL = %v", err)
	}
}

func TestBashTemplateErrors(t *testing.T) {
	t.Parallel()
	// Templates that do not parse are problems of the DAG, naming the task.
	bad := operators.Bash("unclosed", "echo {{ .DS ")
	badEnv := operators.BashWith("bad_env", operators.BashSpec{Command: "true", Env: map[string]string{"X": "{{ if }}"}})
	empty := operators.Bash("empty", "")
	good := operators.Bash("good", "echo {{ .DS }}")
	err := dag.New("etl").Add(bad, badEnv, empty, good).Validate()
	if err == nil {
		t.Fatal("Validate accepted templates that do not parse")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 3 {
		t.Fatalf("Validate = %d problems, want 3:\n%s", len(lines), err)
	}
	for i, want := range []string{`dag "etl": task "unclosed": bash: command template:`, `dag "etl": task "bad_env": bash: env X template:`,
		`dag "etl": task "empty": bash: empty command`} {
		if !strings.HasPrefix(lines[i], want) {
			t.Errorf("problem %d = %q, want it to start with %q", i, lines[i], want)
		}
	}

	// A missing key is an error when the try renders, before anything runs.
	marker := filepath.Join(t.TempDir(), "ran")
	for name, spec := range map[string]operators.BashSpec{
		"command": {Command: "touch " + marker + "; echo {{ .Params.nope }}"},
		"env":     {Command: "touch " + marker, Env: map[string]string{"X": "{{ .Params.nope }}"}},
		"field":   {Command: "touch " + marker + "; echo {{ .NoSuchField }}"},
	} {
		_, log, err := execute(t, operators.BashWith("t", spec), map[string]any{"table": "users"})
		if err == nil || !strings.Contains(err.Error(), `task "t"`) {
			t.Errorf("%s: Execute with a missing key = %v; want an error naming the task", name, err)
		}
		if name != "field" && !strings.Contains(err.Error(), "nope") {
			t.Errorf("%s: error %q does not name the missing key", name, err)
		}
		if log.String() != "" {
			t.Errorf("%s: something ran: log %q", name, log)
		}
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Errorf("a command with a template error ran: %v", err)
	}
}

// gone waits, bounded, until no process has any of the given pids. A killed
// process whose parent died is reaped by init, which may take a moment.
func gone(t *testing.T, pids ...int) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for _, pid := range pids {
		for syscall.Kill(pid, 0) != syscall.ESRCH {
			select {
			case <-tick.C:
			case <-deadline:
				state, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
				for _, p := range pids {
					syscall.Kill(p, syscall.SIGKILL) // do not leave them behind
				}
				t.Fatalf("process %d still exists 20s after the try was stopped: %s", pid, state)
			}
		}
	}
}

func TestBashStopKillsProcessGroup(t *testing.T) {
	t.Parallel()
	// Two grandchildren in the background, then the shell waits for them.
	const command = `sleep 1000 & echo PID=$!; (sleep 1000; true) & echo PID=$!; wait`
	cases := []struct {
		name    string
		spec    operators.BashSpec
		stop    func(cancel context.CancelFunc) // nil: the context's deadline stops it
		timeout time.Duration
		wantErr error
	}{
		{"cancel", operators.BashSpec{Command: command}, func(cancel context.CancelFunc) { cancel() }, time.Minute, context.Canceled},
		{"timeout", operators.BashSpec{Command: command}, nil, 2 * time.Second, context.DeadlineExceeded},
		{"SIGTERM ignored: SIGKILL after the grace", operators.BashSpec{Command: `trap "" TERM; ` + command, KillGrace: 300 * time.Millisecond},
			func(cancel context.CancelFunc) { cancel() }, time.Minute, context.Canceled},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			b := operators.BashWith("t", c.spec)
			log := newLog()
			ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
			defer cancel()
			done := make(chan error, 1)
			go func() {
				_, err := b.Execute(ctx, newRun(b, nil, log))
				done <- err
			}()
			var pids []int
			for len(pids) < 2 {
				select {
				case pid := <-log.pids:
					pids = append(pids, pid)
				case err := <-done:
					t.Fatalf("Execute returned before the command started its children: %v\nlog:\n%s", err, log)
				case <-time.After(10 * time.Second):
					t.Fatalf("the command did not print its children's pids within 10s\nlog:\n%s", log)
				}
			}
			for _, pid := range pids {
				if err := syscall.Kill(pid, 0); err != nil {
					t.Fatalf("child %d is not running before the stop: %v", pid, err)
				}
			}
			stopped := time.Now()
			if c.stop != nil {
				c.stop(cancel)
			}
			select {
			case err := <-done:
				if !errors.Is(err, c.wantErr) {
					t.Errorf("Execute = %v, want it to wrap %v", err, c.wantErr)
				}
				var ec interface{ ExitCode() int }
				if errors.As(err, &ec) && ec.ExitCode() >= 0 {
					t.Errorf("a stopped try reports exit code %d", ec.ExitCode())
				}
			case <-time.After(20 * time.Second):
				t.Fatal("Execute did not return within 20s of the stop")
			}
			if c.spec.KillGrace > 0 && time.Since(stopped) < c.spec.KillGrace && c.stop != nil {
				t.Errorf("Execute returned %s after the stop, before the kill grace %s: SIGTERM was not ignored?",
					time.Since(stopped), c.spec.KillGrace)
			}
			gone(t, pids...)
		})
	}
}

func TestBashTask(t *testing.T) {
	t.Parallel()
	b := operators.Bash("b", "echo hi", task.Retries(2), task.Pool("shell"))
	if s := task.SettingsOf(b); s.Kind != task.KindBash || s.Pool != "shell" {
		t.Errorf("settings = %+v", s)
	}
	if p := task.PolicyOf(b, task.Policy{}); p.Retries != 2 {
		t.Errorf("policy = %+v", p)
	}
	// A downstream Go task reads the result with Output, typed as a string.
	read := task.Go("read", func(ctx context.Context, r *task.Run) (string, error) {
		s, err := task.Output(r, b)
		return strings.ToUpper(s), err
	})
	b.Then(read)
	out, _, err := execute(t, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := task.NewRun(read, task.Info{}, nil, nil, task.InputsFunc(func(id string) ([]byte, bool, error) {
		return out, id == "b", nil
	}), nil)
	if got, err := read.Execute(context.Background(), r); err != nil || string(got) != `"HI"` {
		t.Errorf("downstream result = %s, %v", got, err)
	}
}

func TestBashLeftoverProcessesEndWithTheTry(t *testing.T) {
	t.Parallel()
	b := operators.BashWith("t", operators.BashSpec{Command: "echo hi; sleep 1000 & echo PID=$!", KillGrace: 300 * time.Millisecond})
	log := newLog()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := b.Execute(ctx, newRun(b, nil, log))
	var pid int
	select {
	case pid = <-log.pids:
	default:
		t.Fatalf("the command printed no pid (err %v)\nlog:\n%s", err, log)
	}
	gone(t, pid)
}
