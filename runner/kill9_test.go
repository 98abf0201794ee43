package runner_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// lives runs a test DAG binary on one database, one process life after
// another, for the kill -9 tests: every command gets the test's environment,
// --db, and the test's time bound.
type lives struct {
	t       *testing.T
	ctx     context.Context
	bin, db string
	env     []string
}

// newLives bounds every life of bin on db by timeout; env is added to the
// test's environment.
func newLives(t *testing.T, bin, db string, timeout time.Duration, env ...string) *lives {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return &lives{t: t, ctx: ctx, bin: bin, db: db, env: append(os.Environ(), env...)}
}

func (l *lives) cmd(args ...string) *exec.Cmd {
	c := exec.CommandContext(l.ctx, l.bin, append(args, "--db", l.db)...)
	c.Env = l.env
	return c
}

// run runs one command to its end and returns its output; a failure fails the
// test, named by what.
func (l *lives) run(what string, args ...string) string {
	l.t.Helper()
	out, err := l.cmd(args...).CombinedOutput()
	if err != nil {
		l.t.Fatalf("%s: %v\n%s", what, err, out)
	}
	return string(out)
}

// serveUntil starts `serve`, waits for the DAG to say something through said
// (what names the wait in a failure), SIGKILLs the process at once and waits
// for it to be gone. It returns what was said.
func (l *lives) serveUntil(said <-chan string, what string) string {
	l.t.Helper()
	first := l.cmd("serve", "--listen", "")
	var out bytes.Buffer
	first.Stdout, first.Stderr = &out, &out
	if err := first.Start(); err != nil {
		l.t.Fatal(err)
	}
	var s string
	select {
	case s = <-said:
	case <-l.ctx.Done():
		l.t.Fatalf("%s never happened\n%s", what, &out)
	}
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		l.t.Fatal(err)
	}
	first.Wait()
	return s
}
