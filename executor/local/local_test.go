package local_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trellisdag/trellis/executor"
	"github.com/trellisdag/trellis/executor/local"
	"github.com/trellisdag/trellis/task"
)

type logBuf struct {
	mu     sync.Mutex
	b      bytes.Buffer
	closed bool
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, fmt.Errorf("write after close: %q", p)
	}
	return l.b.Write(p)
}

func (l *logBuf) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	return nil
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestTimeoutFreesTheSlotOfATaskThatIgnoresCtx: a Go function that never
// looks at its context runs past its execution timeout; the try is failed
// AbandonAfter later (so the scheduler frees its slot), shutdown does not wait
// for it, and what the abandoned goroutine writes later is dropped.
func TestTimeoutFreesTheSlotOfATaskThatIgnoresCtx(t *testing.T) {
	t.Parallel()
	release, wrote := make(chan struct{}), make(chan struct{})
	defer close(release)
	stubborn := task.Go("stubborn", func(_ context.Context, r *task.Run) (int, error) {
		fmt.Fprintln(r.Output(), "started")
		<-release // ignores ctx
		fmt.Fprintln(r.Output(), "too late")
		close(wrote)
		return 1, nil
	})
	reports := make(chan executor.Report, 10)
	log := &logBuf{}
	ex := local.New(local.Config{Report: func(r executor.Report) { reports <- r },
		Logs:         func(executor.Key) io.WriteCloser { return log },
		AbandonAfter: 50 * time.Millisecond})
	key := executor.Key{Run: 1, DAGID: "d", RunID: "r", TaskID: "stubborn", Try: 1}
	if err := ex.Start(context.Background(), executor.Try{Key: key, Task: stubborn, Timeout: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	var end executor.Report
	for end.Status == executor.Started {
		select {
		case end = <-reports:
		case <-time.After(10 * time.Second):
			t.Fatal("no end reported: the stubborn try holds its slot")
		}
	}
	if end.Status != executor.Failed || !strings.Contains(end.Error, "execution timeout of 50ms exceeded") ||
		!strings.Contains(end.Error, "did not return within 50ms after it was stopped (local.Config.AbandonAfter") {
		t.Errorf("end = %+v, want failed by its timeout, abandoned", end)
	}
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ex.Shutdown(shut); err != nil {
		t.Errorf("shutdown waited for the abandoned goroutine: %v", err)
	}
	release <- struct{}{}
	<-wrote
	if got := log.String(); !strings.Contains(got, "started") || strings.Contains(got, "too late") {
		t.Errorf("log = %q: want the line before the timeout, not the one after", got)
	}
}
