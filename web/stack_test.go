package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/executor"
	"github.com/trellisdag/trellis/executor/local"
	"github.com/trellisdag/trellis/internal/store"
	"github.com/trellisdag/trellis/operators"
	"github.com/trellisdag/trellis/scheduler"
	"github.com/trellisdag/trellis/task"
)

const (
	operatorToken = "op-token-0123456789abcdef"
	viewerToken   = "view-token-0123456789abcdef"
)

// stack is a real store (a SQLite file), scheduler, local executor and web
// server on loopback.
type stack struct {
	t      testing.TB
	st     *store.Store
	srv    *Server
	hs     *httptest.Server
	sched  *scheduler.Scheduler
	logs   *syncBuffer
	failed atomic.Int32  // tries of flaky/boom that failed so far
	gate   chan struct{} // closed to let slow/hold finish

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every scheduler event
}

type stackOpts struct {
	tokens bool
	dags   func(s *stack) []*dag.DAG
	pools  map[string]int
	cron   bool // the scheduler creates scheduled and asset-triggered runs
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// testDAGs: etl succeeds; flaky's boom fails on its first try (and prints a
// line first), then succeeds once cleared; slow's hold runs until the gate opens.
func testDAGs(s *stack) []*dag.DAG {
	etl := dag.New("etl", dag.DefaultRetries(0, 0), dag.Description("extract, count, report"), dag.Params(
		dag.Param{Name: "limit", Default: 10, Description: "rows to read"},
		dag.Param{Name: "mode", Default: "fast"},
	))
	extract := task.Go("extract", func(ctx context.Context, r *task.Run) ([]int, error) {
		fmt.Fprintln(r.Output(), "extracting rows")
		return []int{1, 2, 3}, nil
	})
	count := task.Go("count", func(ctx context.Context, r *task.Run) (int, error) {
		rows, err := task.Output(r, extract)
		return len(rows), err
	})
	report := operators.Bash("report", `echo "limit={{ .Params.limit }}"`)
	etl.Add(extract, count, report)
	extract.Then(count).Then(report)

	flaky := dag.New("flaky", dag.DefaultRetries(0, 0))
	boom := task.Go("boom", func(ctx context.Context, r *task.Run) (string, error) {
		if s.failed.Load() == 0 {
			s.failed.Add(1)
			fmt.Fprintln(r.Output(), "about to fail: the source is not ready")
			return "", errors.New("source not ready")
		}
		fmt.Fprintln(r.Output(), "the source is ready")
		return "ok", nil
	})
	after := task.Go("after", func(ctx context.Context, r *task.Run) (string, error) { return task.Output(r, boom) })
	flaky.Add(boom, after)
	boom.Then(after)

	slow := dag.New("slow", dag.DefaultRetries(0, 0))
	hold := task.Go("hold", func(ctx context.Context, r *task.Run) (int, error) {
		fmt.Fprintln(r.Output(), "holding")
		select {
		case <-s.gate:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		fmt.Fprintln(r.Output(), "released")
		return 1, nil
	})
	slow.Add(hold)
	return []*dag.DAG{etl, flaky, slow}
}

func newStack(t testing.TB, o stackOpts) *stack {
	t.Helper()
	s := &stack{t: t, logs: &syncBuffer{}, gate: make(chan struct{}), changed: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "trellis.db"), store.Options{Sync: store.SyncNormal})
	if err != nil {
		t.Fatal(err)
	}
	s.st = st
	mk := testDAGs
	if o.dags != nil {
		mk = o.dags
	}
	dags := mk(s)
	for _, d := range dags {
		if err := d.Validate(); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(d.Snapshot())
		if err := st.PutDAG(ctx, d.ID(), b, false); err != nil {
			t.Fatal(err)
		}
		if uris, _ := d.AssetSchedule(); len(uris) > 0 { // as the runner does before it serves
			if err := st.RegisterAssetConsumer(ctx, d.ID(), uris); err != nil {
				t.Fatal(err)
			}
		}
	}
	var toks *Tokens
	if o.tokens {
		toks, err = ParseTokens("test", []byte(operatorToken+" operator alice\n"+viewerToken+" viewer bob\n"))
		if err != nil {
			t.Fatal(err)
		}
	}
	log := slog.New(slog.NewJSONHandler(s.logs, nil))
	srv, err := New(Config{Store: st, DAGs: dags, Pools: o.pools, Tokens: toks, Logger: log, Wake: func() { s.sched.Wake() }, MaxBodyBytes: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	s.srv = srv
	var sched *scheduler.Scheduler
	loc := local.New(local.Config{
		Report: func(r executor.Report) { sched.Report(r) },
		Logs:   func(k executor.Key) io.WriteCloser { return st.TryLog(k.Run, k.TaskID, k.Try) },
	})
	sched, err = scheduler.New(scheduler.Config{Store: st, DAGs: dags, Local: loc, PollInterval: -1, Cron: o.cron,
		Observe: func(e scheduler.Event) {
			srv.Observe(e)
			s.mu.Lock()
			close(s.changed)
			s.changed = make(chan struct{})
			s.mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	s.sched = sched
	done := make(chan error, 1)
	go func() { done <- sched.Run(ctx) }()
	srv.SetReady(nil)
	srv.SetActive(true)
	s.hs = httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		s.hs.Close()
		select {
		case <-s.gate:
		default:
			close(s.gate)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("scheduler: %v", err)
		}
		sctx, c := context.WithTimeout(context.Background(), 10*time.Second)
		defer c()
		loc.Shutdown(sctx)
		srv.Close()
		st.Close()
	})
	return s
}

// waitFor re-checks cond after every scheduler event (and every 50ms, for what
// is not an event, such as log output) until it holds, failing the test after
// the bound.
func (s *stack) waitFor(what string, bound time.Duration, cond func() bool) {
	s.t.Helper()
	deadline := time.NewTimer(bound)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-tick.C:
		case <-deadline.C:
			s.t.Fatalf("timed out after %s waiting for %s", bound, what)
		}
	}
}

func (s *stack) runState(dagID, runID string) task.RunState {
	r, err := s.st.Run(context.Background(), dagID, runID)
	if err != nil {
		return ""
	}
	return r.State
}

func (s *stack) waitRun(dagID, runID string, want task.RunState) {
	s.t.Helper()
	s.waitFor(fmt.Sprintf("run %s of %s to be %s", runID, dagID, want), 30*time.Second, func() bool {
		return s.runState(dagID, runID) == want
	})
}

type reqOpt func(*http.Request)

func bearer(tok string) reqOpt {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}

func header(k, v string) reqOpt { return func(r *http.Request) { r.Header.Set(k, v) } }

// do sends a request and decodes a JSON answer into out (when not nil).
func (s *stack) do(method, path string, body any, out any, opts ...reqOpt) *http.Response {
	s.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, s.hs.URL+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, o := range opts {
		o(req)
	}
	res, err := s.hs.Client().Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	res.Body = io.NopCloser(bytes.NewReader(data))
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			s.t.Fatalf("%s %s: %d, body %q is not the JSON expected: %v", method, path, res.StatusCode, data, err)
		}
	}
	return res
}

// expectError checks an error response's status, code and (if given) field.
func (s *stack) expectError(res *http.Response, status int, code, field string) ErrorBody {
	s.t.Helper()
	var eb ErrorBody
	data, _ := io.ReadAll(res.Body)
	if err := json.Unmarshal(data, &eb); err != nil || eb.Error == nil {
		s.t.Fatalf("%s %s: body %q is not an error object", res.Request.Method, res.Request.URL.Path, data)
	}
	if res.StatusCode != status || eb.Error.Code != code || (field != "" && eb.Error.Field != field) {
		s.t.Errorf("%s %s = %d %+v; want %d code %s field %q", res.Request.Method, res.Request.URL, res.StatusCode, *eb.Error, status, code, field)
	}
	if eb.Error.Message == "" {
		s.t.Errorf("%s %s: empty error message", res.Request.Method, res.Request.URL.Path)
	}
	return eb
}

// trigger creates a run through the API and returns it.
func (s *stack) trigger(dagID string, conf string, opts ...reqOpt) Run {
	s.t.Helper()
	body := `{}`
	if conf != "" {
		body = `{"conf":` + conf + `}`
	}
	var run Run
	res := s.do("POST", "/api/v1/dags/"+dagID+"/runs", body, &run, opts...)
	if res.StatusCode != http.StatusCreated {
		s.t.Fatalf("trigger %s: %d", dagID, res.StatusCode)
	}
	return run
}
