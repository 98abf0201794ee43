package runner_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/trellisdag/trellis/internal/store"
	"github.com/trellisdag/trellis/internal/store/storetest"
)

// gateSink is a webhook receiver on 127.0.0.1 that acknowledges (204) each
// call and counts the acknowledgements per Idempotency-Key until holdAfter
// distinct keys are acknowledged; from then on it holds every call, unanswered,
// until release is closed (then answers 503). A POST to /all-failed closes
// allFailed.
type gateSink struct {
	holdAfter int
	release   chan struct{}
	held      chan struct{} // closed when the first call is held
	allFailed chan struct{}

	mu                sync.Mutex
	acked             map[string]int
	holding, released bool
	heldCalls         int
	allFailedOnce     sync.Once
}

func (g *gateSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	if r.URL.Path == "/all-failed" {
		g.allFailedOnce.Do(func() { close(g.allFailed) })
		w.WriteHeader(http.StatusNoContent)
		return
	}
	key := r.Header.Get("Idempotency-Key")
	g.mu.Lock()
	if !g.released && len(g.acked) >= g.holdAfter {
		if !g.holding {
			g.holding = true
			close(g.held)
		}
		g.heldCalls++
		g.mu.Unlock()
		select {
		case <-g.release:
		case <-r.Context().Done(): // the caller died
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	g.acked[key]++
	g.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// snapshot returns the distinct keys acknowledged, the acknowledgements in
// all, and the calls held.
func (g *gateSink) snapshot() (keys, acks, held int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, n := range g.acked {
		acks += n
	}
	return len(g.acked), acks, g.heldCalls
}

// TestFailureNotificationsSurviveKill9: 1,000 tasks fail, each with a
// notify.Webhook failure callback to a sink on 127.0.0.1. The sink
// acknowledges the first 300 keys and then holds every call; once every
// failure is committed (a downstream all_done task says so) the runner is
// killed (SIGKILL) with calls in flight and 700 entries undelivered. After a
// restart (serve --until-idle) the sink has acknowledged every one of the
// 1,000 keys at least once (deduplicated by Idempotency-Key), and the outbox
// holds nothing pending or given up.
//
// It runs on SQLite and, with $TRELLIS_TEST_POSTGRES, on PostgreSQL.
func TestFailureNotificationsSurviveKill9(t *testing.T) {
	t.Parallel()
	bin := buildTestdata(t, "notifydag")
	storetest.Run(t, func(t *testing.T, be storetest.Backend) { testFailureNotificationsSurviveKill9(t, bin, be.NewDB(t)) })
}

func testFailureNotificationsSurviveKill9(t *testing.T, bin, db string) {
	const failing, holdAfter = 1000, 300
	sink := &gateSink{holdAfter: holdAfter, release: make(chan struct{}), held: make(chan struct{}),
		allFailed: make(chan struct{}), acked: map[string]int{}}
	srv := httptest.NewServer(sink)
	defer srv.Close()
	var releaseOnce sync.Once
	release := func() {
		releaseOnce.Do(func() {
			sink.mu.Lock()
			sink.released = true
			sink.mu.Unlock()
			close(sink.release)
		})
	}
	defer release()
	env := append(os.Environ(), "SINK_URL="+srv.URL)

	first := exec.Command(bin, "dags", "trigger", "notify", "--wait", "--logical-date", "2024-05-01", "--db", db)
	first.Env = env
	var out1 bytes.Buffer
	first.Stdout, first.Stderr = &out1, &out1
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- first.Wait() }()
	for _, w := range []struct {
		ch   <-chan struct{}
		what string
	}{{sink.held, "a call held by the sink"}, {sink.allFailed, "every failure committed"}} {
		select {
		case <-w.ch:
		case err := <-exited:
			t.Fatalf("the runner exited (%v) before %s\n%s", err, w.what, &out1)
		case <-time.After(2 * time.Minute):
			first.Process.Kill()
			t.Fatalf("never %s\n%s", w.what, &out1)
		}
	}
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited
	keysAtKill, _, heldAtKill := sink.snapshot()
	release()
	if keysAtKill >= failing {
		t.Fatalf("%d keys acknowledged before the kill: the kill came too late to lose any", keysAtKill)
	}

	began := time.Now()
	second := exec.Command(bin, "serve", "--until-idle", "--listen", "", "--db", db)
	second.Env = env
	if out, err := second.CombinedOutput(); err != nil {
		t.Fatalf("second life: %v\n%s", err, out)
	}
	secondLife := time.Since(began)

	keys, acks, _ := sink.snapshot()
	t.Logf("killed with %d keys acknowledged and %d calls held; after the restart (%s) %d keys acknowledged, %d acknowledgements (%d repeated)",
		keysAtKill, heldAtKill, secondLife.Round(time.Millisecond), keys, acks, acks-keys)
	sink.mu.Lock()
	want := regexp.MustCompile(`^task/\d+/(t\d{4})/1/task_failure#0$`)
	tasks := map[string]bool{}
	for k := range sink.acked {
		m := want.FindStringSubmatch(k)
		if m == nil {
			t.Errorf("unexpected key %q", k)
			continue
		}
		tasks[m[1]] = true
	}
	sink.mu.Unlock()
	for i := range failing {
		if id := fmt.Sprintf("t%04d", i); !tasks[id] {
			t.Errorf("no failure notification of task %s was acknowledged", id)
		}
	}
	st, err := store.Open(context.Background(), db, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	delivered, pending, givenUp, err := st.OutboxStats(context.Background())
	if err != nil || delivered != failing || pending != 0 || givenUp != 0 {
		t.Errorf("outbox: %d delivered, %d pending, %d given up (%v); want %d, 0, 0", delivered, pending, givenUp, err, failing)
	}
}
