package executor_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/trellisdag/trellis/executor"
	"github.com/trellisdag/trellis/task"
)

type exitErr struct{ code int }

func (e exitErr) Error() string { return fmt.Sprintf("exit status %d", e.code) }
func (e exitErr) ExitCode() int { return e.code }

// TestClassify: the one rule that says how a try that ran in process ended.
func TestClassify(t *testing.T) {
	t.Parallel()
	live := context.Background()
	stopped, cancel := context.WithCancelCause(context.Background())
	cancel(errors.New("execution timeout of 1s exceeded"))
	for _, tc := range []struct {
		name   string
		ctx    context.Context
		result []byte
		err    error
		want   executor.Status
		errHas string
		retry  bool
		exit   int // -1: none
	}{
		{"success", live, []byte("1"), nil, executor.Succeeded, "", true, -1},
		{"skip", live, nil, task.Skip("nothing to do"), executor.Skipped, "nothing to do", true, -1},
		{"sensor not met", live, nil, task.ErrNotDone, executor.Deferred, "", true, -1},
		{"failure", live, nil, errors.New("boom\nsecond line"), executor.Failed, "boom …", true, -1},
		{"fail now", live, nil, fmt.Errorf("%w: bad input", task.ErrFailNow), executor.Failed, "bad input", false, -1},
		{"a shell's exit code", live, nil, exitErr{3}, executor.Failed, "exit status 3", true, 3},
		{"stopped: the cause is named", stopped, nil, context.Canceled, executor.Failed, "execution timeout of 1s exceeded", true, -1},
		{"returned after a stop", stopped, []byte("1"), nil, executor.Failed, "execution timeout", true, -1},
		{"a sensor stopped is a failure", stopped, nil, task.ErrNotDone, executor.Failed, "execution timeout", true, -1},
	} {
		o := executor.Classify(tc.ctx, tc.result, tc.err)
		if o.Status != tc.want || !strings.Contains(o.Error, tc.errHas) || o.NoRetry == tc.retry {
			t.Errorf("%s: %+v, want %s with %q (retry %v)", tc.name, o, tc.want, tc.errHas, tc.retry)
		}
		if (o.ExitCode == nil) != (tc.exit < 0) || (o.ExitCode != nil && *o.ExitCode != tc.exit) {
			t.Errorf("%s: exit code %v, want %d", tc.name, o.ExitCode, tc.exit)
		}
	}
}

// TestRunTryRecoversPanics: a panic is the try's error, its stack in the log.
func TestRunTryRecoversPanics(t *testing.T) {
	t.Parallel()
	p := task.Go("p", func(context.Context, *task.Run) (int, error) { panic("oops") })
	var log strings.Builder
	_, err := executor.RunTry(context.Background(), p, task.NewRun(p, task.Info{TaskID: "p"}, nil, nil, nil, nil), &log)
	if err == nil || err.Error() != "panic: oops" || !strings.Contains(log.String(), "goroutine") {
		t.Errorf("err %v, log %q", err, log.String())
	}
}
