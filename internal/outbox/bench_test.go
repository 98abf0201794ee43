package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/executor"
	"github.com/trellisdag/trellis/executor/local"
	"github.com/trellisdag/trellis/internal/outbox"
	"github.com/trellisdag/trellis/internal/runs"
	"github.com/trellisdag/trellis/internal/store"
	"github.com/trellisdag/trellis/notify"
	"github.com/trellisdag/trellis/scheduler"
	"github.com/trellisdag/trellis/task"
)

// keySink is a webhook receiver on 127.0.0.1 that records when it first
// received each Idempotency-Key, and how many requests it got.
type keySink struct {
	srv *httptest.Server

	mu       sync.Mutex
	first    map[string]time.Time
	requests int
	want     int
	all      chan struct{} // closed once want distinct keys arrived
}

func newKeySink(tb testing.TB, want int) *keySink {
	k := &keySink{first: map[string]time.Time{}, want: want, all: make(chan struct{})}
	k.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		key := r.Header.Get("Idempotency-Key")
		now := time.Now()
		k.mu.Lock()
		k.requests++
		if _, seen := k.first[key]; !seen && key != "" {
			k.first[key] = now
			if len(k.first) == k.want {
				close(k.all)
			}
		}
		k.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	tb.Cleanup(k.srv.Close)
	return k
}

// last returns when the last new key arrived, the distinct keys and the
// requests.
func (k *keySink) last() (at time.Time, keys, requests int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, t := range k.first {
		if t.After(at) {
			at = t
		}
	}
	return at, len(k.first), k.requests
}

// notifyFigures is what the notification scenario measured.
type notifyFigures struct {
	Failures int
	// Delivered: from the first failure's commit to the last sink receipt of
	// a distinct key; Failed: from the first failure's commit to the last's.
	Delivered, Failed time.Duration
	// Backlog (backlog mode only): from the worker's start, every failure
	// committed, to the last receipt.
	Backlog  time.Duration
	Requests int
}

func (f notifyFigures) String() string {
	s := fmt.Sprintf("%d failure notifications: first failure committed → last received %s (%.0f/s); "+
		"first → last failure committed %s; %d requests", f.Failures, f.Delivered.Round(time.Millisecond),
		float64(f.Failures)/f.Delivered.Seconds(), f.Failed.Round(time.Millisecond), f.Requests)
	if f.Backlog > 0 {
		s += fmt.Sprintf("; backlog delivered in %s (%.0f/s) from the worker's start", f.Backlog.Round(time.Millisecond),
			float64(f.Failures)/f.Backlog.Seconds())
	}
	return s
}

// notifyScenario runs n Go tasks that fail (no retry), each with
// OnFailure(notify.Webhook(sink)), in one run, with the real scheduler, local
// executor, outbox worker and store (a SQLite file, synchronous=FULL), wired
// and configured as the runner's engine does (parallelism 32, the worker woken
// after each commit that wrote entries, its defaults: 16 calls in flight), the
// sink an httptest server on 127.0.0.1. It measures from the commit of the
// first failure to the sink's receipt of the last distinct Idempotency-Key.
// With backlog, the worker starts only once every failure is committed (as
// after a restart with every entry pending), and its drain is measured too.
func notifyScenario(tb testing.TB, n int, backlog bool) notifyFigures {
	tb.Helper()
	ctx := context.Background()
	sink := newKeySink(tb, n)
	d := dag.New("failing", dag.MaxActiveTasks(32), dag.DefaultRetries(0, 0))
	for i := range n {
		d.Add(task.Go(fmt.Sprintf("t%04d", i), func(_ context.Context, r *task.Run) (struct{}, error) {
			fmt.Fprintln(r.Output(), "about to fail")
			return struct{}{}, errors.New("boom")
		}, task.OnFailure(notify.Webhook(sink.srv.URL))))
	}
	if err := d.Validate(); err != nil {
		tb.Fatal(err)
	}
	st, err := store.Open(ctx, filepath.Join(tb.TempDir(), "trellis.db"), store.Options{Sync: store.SyncFull})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	if _, err := runs.Create(ctx, st, d, runs.Spec{Type: task.RunManual, LogicalDate: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}); err != nil {
		tb.Fatal(err)
	}

	var mu sync.Mutex
	var firstFail, lastFail time.Time
	failed := 0
	allFailed := make(chan struct{})
	observe := func(e scheduler.Event) {
		if e.TaskID == "" || e.State != task.StateFailed {
			return
		}
		now := time.Now()
		mu.Lock()
		if failed == 0 {
			firstFail = now
		}
		failed++
		lastFail = now
		if failed == n {
			close(allFailed)
		}
		mu.Unlock()
	}
	var sched *scheduler.Scheduler
	ex := local.New(local.Config{Report: func(r executor.Report) { sched.Report(r) },
		Logs: func(k executor.Key) io.WriteCloser { return st.TryLog(k.Run, k.TaskID, k.Try) }})
	w := outbox.New(outbox.Config{Store: st, DAGs: []*dag.DAG{d}})
	sched, err = scheduler.New(scheduler.Config{Store: st, DAGs: []*dag.DAG{d}, Local: ex, Cron: true,
		OutboxWritten: w.Wake, Observe: observe})
	if err != nil {
		tb.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 2)
	go func() { done <- sched.Run(runCtx) }()
	var workerStart time.Time
	if backlog {
		select {
		case <-allFailed:
		case <-time.After(2 * time.Minute):
			tb.Fatalf("%d failures not committed in 2 minutes", n)
		}
		workerStart = time.Now()
	}
	go func() { done <- w.Run(runCtx) }()
	defer func() {
		stop()
		for range 2 {
			if err := <-done; err != nil {
				tb.Error(err)
			}
		}
		shut, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := ex.Shutdown(shut); err != nil {
			tb.Error(err)
		}
	}()

	select {
	case <-sink.all:
	case <-time.After(2 * time.Minute):
		_, keys, _ := sink.last()
		tb.Fatalf("the sink received %d of %d keys in 2 minutes", keys, n)
	}
	last, keys, requests := sink.last()
	mu.Lock()
	defer mu.Unlock()
	if failed != n {
		tb.Fatalf("%d failures committed, want %d", failed, n)
	}
	f := notifyFigures{Failures: keys, Delivered: last.Sub(firstFail), Failed: lastFail.Sub(firstFail), Requests: requests}
	if backlog {
		f.Backlog = last.Sub(workerStart)
	}
	if s := w.Stats(); s.Retried != 0 || s.GivenUp != 0 {
		tb.Errorf("worker %+v, want every call delivered at its first attempt", s)
	}
	return f
}

// BenchmarkFailureNotifications1000 is the notifications requirement: 1,000
// failure notifications delivered to a local webhook sink within 5 s, from
// the first failure's commit to the 1,000th receipt.
func BenchmarkFailureNotifications1000(b *testing.B) {
	for range b.N {
		f := notifyScenario(b, 1000, false)
		b.Log(f)
		b.ReportMetric(f.Delivered.Seconds(), "s-first-failure-to-1000th-receipt")
		b.ReportMetric(f.Failed.Seconds(), "s-first-to-last-failure")
		if f.Delivered > 5*time.Second {
			b.Errorf("ceiling missed (≤ 5 s): %s", f)
		}
	}
}

// BenchmarkFailureNotificationsBacklog1000 is the same with the worker
// started once all 1,000 failures are committed: the delivery of a backlog, as
// after a restart. The ceiling applies from the first failure's commit too.
func BenchmarkFailureNotificationsBacklog1000(b *testing.B) {
	for range b.N {
		f := notifyScenario(b, 1000, true)
		b.Log(f)
		b.ReportMetric(f.Delivered.Seconds(), "s-first-failure-to-1000th-receipt")
		b.ReportMetric(f.Backlog.Seconds(), "s-backlog-drain")
		if f.Delivered > 5*time.Second {
			b.Errorf("ceiling missed (≤ 5 s): %s", f)
		}
	}
}

// TestNotifyScenarioSmall runs the notification scenario small, so that the
// benchmark's code is checked by the ordinary test run.
func TestNotifyScenarioSmall(t *testing.T) {
	t.Parallel()
	for _, backlog := range []bool{false, true} {
		if f := notifyScenario(t, 50, backlog); f.Failures != 50 || f.Delivered <= 0 || backlog != (f.Backlog > 0) {
			t.Errorf("backlog %v: figures %+v", backlog, f)
		}
	}
}
