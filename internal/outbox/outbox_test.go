package outbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/internal/outbox"
	"github.com/trellisdag/trellis/internal/store"
	"github.com/trellisdag/trellis/task"
)

type sink struct {
	mu     sync.Mutex
	events []task.Event
}

func (s *sink) add(e task.Event) {
	s.mu.Lock()
	s.events = append(s.events, e)
	s.mu.Unlock()
}

func (s *sink) all() []task.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]task.Event(nil), s.events...)
}

func entry(t *testing.T, st *store.Store, run int64, e task.Event) {
	t.Helper()
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutOutbox(context.Background(), store.OutboxEntry{Key: e.Key, DAGID: e.DAGID, Run: run, Kind: string(e.Kind), Event: b}); err != nil {
		t.Fatal(err)
	}
}

// TestDeliveryRetryAndGiveUp: a good callback is delivered once with the log
// tail and the link; a failing one is retried with a growing delay and given
// up after MaxAttempts; a panicking or hanging one fails (bounded), never the
// worker; an entry whose callback this binary lacks is given up with a clear
// error.
func TestDeliveryRetryAndGiveUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "trellis.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var got sink
	calls := map[string]int{}
	var mu sync.Mutex
	count := func(k string) int { mu.Lock(); defer mu.Unlock(); calls[k]++; return calls[k] }
	good := task.Go("good", func(context.Context, *task.Run) (int, error) { return 0, nil },
		task.OnFailure(func(_ context.Context, e task.Event) error { got.add(e); count("good"); return nil }))
	bad := task.Go("bad", func(context.Context, *task.Run) (int, error) { return 0, nil },
		task.OnFailure(func(context.Context, task.Event) error { count("bad"); return errors.New("sink said 500") }))
	boom := task.Go("boom", func(context.Context, *task.Run) (int, error) { return 0, nil },
		task.OnFailure(func(context.Context, task.Event) error { count("boom"); panic("oops") }))
	slow := task.Go("slow", func(context.Context, *task.Run) (int, error) { return 0, nil },
		task.OnFailure(func(ctx context.Context, _ task.Event) error { count("slow"); <-ctx.Done(); return ctx.Err() }))
	d := dag.New("cb")
	d.Add(good, bad, boom, slow)
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	ld := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	run, err := st.CreateRun(ctx, store.Run{DAGID: "cb", RunID: "r1", Type: task.RunManual, State: task.RunFailed,
		LogicalDate: ld, IntervalStart: ld, IntervalEnd: ld}, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := st.TryLog(run.ID, "good", 1)
	for i := range 2000 {
		fmt.Fprintf(w, "line %d\n", i)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"good", "bad", "boom", "slow", "gone"} {
		entry(t, st, run.ID, task.Event{Kind: task.EventTaskFailure, DAGID: "cb", RunID: "r1", TaskID: id, Try: 1,
			Key: "task/" + id + "#0"})
	}
	now := time.Now().Add(time.Second) // the entries are due from their creation
	wk := outbox.New(outbox.Config{Store: st, DAGs: []*dag.DAG{d}, MaxAttempts: 3, Backoff: time.Minute,
		Timeout: 50 * time.Millisecond, BaseURL: "https://trellis.example.com/", LogTail: 100,
		Now: func() time.Time { return now }})
	for attempt := 1; attempt <= 3; attempt++ {
		if _, err := wk.DeliverDue(ctx); err != nil {
			t.Fatal(err)
		}
		// Nothing else is due before the backoff: 1 min, then 2 min.
		if n, err := wk.DeliverDue(ctx); err != nil || n != 0 {
			t.Fatalf("attempt %d: %d entries due again at once (%v), want 0", attempt, n, err)
		}
		now = now.Add(time.Duration(1<<(attempt-1)) * time.Minute)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls["good"] != 1 || calls["bad"] != 3 || calls["boom"] != 3 || calls["slow"] != 3 || calls["gone"] != 0 {
		t.Errorf("calls = %v, want good once, the others MaxAttempts (3) times", calls)
	}
	ev := got.all()[0]
	if ev.Key != "task/good#0" || ev.URL != "https://trellis.example.com/#/dags/cb/runs/r1/tasks/good/tries/1" ||
		!strings.HasSuffix(ev.LogTail, "line 1999\n") || len(ev.LogTail) > 100 || !strings.HasPrefix(ev.LogTail, "line ") {
		t.Errorf("event = %+v, want its key, link and the log's last lines (at most 100 bytes, from a line start)", ev)
	}
	delivered, pending, failed, err := st.OutboxStats(ctx)
	if err != nil || delivered != 1 || pending != 0 || failed != 4 {
		t.Errorf("stats = %d delivered, %d pending, %d given up (%v); want 1, 0, 4", delivered, pending, failed, err)
	}
	if s := wk.Stats(); s.Delivered != 1 || s.GivenUp != 4 || s.Retried != 6 {
		t.Errorf("worker stats = %+v", s)
	}
}

// TestStopLetsTheCallInFlightFinish: Stop ends Run after the pass in flight
// without cutting its call, so a delivered entry is recorded once and a later
// pass does not call it again (cancelling the context would cut the call,
// leave the entry due, and call it a second time).
func TestStopLetsTheCallInFlightFinish(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "trellis.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	started, release := make(chan struct{}), make(chan struct{})
	var calls, cut int
	var mu sync.Mutex
	slow := task.Go("slow", func(context.Context, *task.Run) (int, error) { return 0, nil },
		task.OnFailure(func(ctx context.Context, _ task.Event) error {
			mu.Lock()
			calls++
			mu.Unlock()
			close(started)
			<-release
			if ctx.Err() != nil {
				mu.Lock()
				cut++
				mu.Unlock()
			}
			return ctx.Err()
		}))
	d := dag.New("cb").Add(slow)
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	ld := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	run, err := st.CreateRun(ctx, store.Run{DAGID: "cb", RunID: "r1", Type: task.RunManual, State: task.RunFailed,
		LogicalDate: ld, IntervalStart: ld, IntervalEnd: ld}, nil)
	if err != nil {
		t.Fatal(err)
	}
	entry(t, st, run.ID, task.Event{Kind: task.EventTaskFailure, Key: "task/slow#0", DAGID: "cb", RunID: "r1", TaskID: "slow", Try: 1})
	now := time.Now().Add(time.Second) // due from its creation
	w := outbox.New(outbox.Config{Store: st, DAGs: []*dag.DAG{d}, Now: func() time.Time { return now }})
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the callback was never called")
	}
	w.Stop()
	close(release)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after Stop")
	}
	if n, err := w.DeliverDue(ctx); err != nil || n != 0 {
		t.Errorf("DeliverDue after Stop = %d, %v; want nothing left", n, err)
	}
	if calls != 1 || cut != 0 || w.Stats().Delivered != 1 {
		t.Errorf("calls %d, cut %d, delivered %d; want 1, 0, 1", calls, cut, w.Stats().Delivered)
	}
}
