package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strings"

	"github.com/trellisdag/trellis/task"
)

// RunTry runs one try of t in this process and returns what Execute returned;
// a panic becomes the try's error, with its stack in log. The local executor
// and a worker pod's task-run entrypoint both run tries through it.
func RunTry(ctx context.Context, t task.Task, r *task.Run, log io.Writer) (result []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			fmt.Fprintf(log, "panic: %v\n\n%s", p, debug.Stack())
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return t.Execute(ctx, r)
}

// Outcome is how a try that ran in this process ended.
type Outcome struct {
	// Status is Succeeded, Failed, Skipped or Deferred.
	Status Status
	// Result is the try's result (Succeeded only).
	Result []byte
	// Error is the error in one line (Failed and Skipped).
	Error string
	// NoRetry is set for task.ErrFailNow.
	NoRetry bool
	// ExitCode is the task's own exit code when its error carries one (a
	// shell's), else nil.
	ExitCode *int
	// Err is the whole error (Failed), for the try's log.
	Err error
}

// Classify says how a try ended, from what RunTry returned and the try's
// context: a task that returned after its context was stopped (a timeout, a
// kill) failed with the cause; task.ErrSkip skips; task.ErrNotDone defers a
// sensor; task.ErrFailNow fails without retry. One rule for every executor.
func Classify(ctx context.Context, result []byte, err error) Outcome {
	stopped := ctx.Err() != nil
	if err == nil && stopped {
		err = context.Cause(ctx) // finished only because it was stopped
	}
	switch {
	case err == nil:
		return Outcome{Status: Succeeded, Result: result}
	case errors.Is(err, task.ErrSkip):
		return Outcome{Status: Skipped, Error: OneLine(err)}
	case errors.Is(err, task.ErrNotDone) && !stopped:
		return Outcome{Status: Deferred}
	}
	if c := context.Cause(ctx); stopped && !errors.Is(err, c) {
		err = fmt.Errorf("%w (%v)", c, err)
	}
	o := Outcome{Status: Failed, Error: OneLine(err), NoRetry: errors.Is(err, task.ErrFailNow), Err: err}
	var ec interface{ ExitCode() int }
	if errors.As(err, &ec) {
		code := ec.ExitCode()
		o.ExitCode = &code
	}
	return o
}

// OneLine is an error's first line ("…" when it had more).
func OneLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " …"
	}
	return s
}
