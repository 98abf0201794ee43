package web

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/internal/runs"
	"github.com/trellisdag/trellis/internal/store"
	"github.com/trellisdag/trellis/task"
)

// wideDAG is n tasks in layers of width: each task feeds two of the next layer.
func wideDAG(id string, n, width int, fn func(context.Context, *task.Run) (int, error)) *dag.DAG {
	d := dag.New(id, dag.DefaultRetries(0, 0), dag.MaxActiveTasks(64))
	ts := make([]*task.GoTask[int], n)
	for i := range ts {
		ts[i] = task.Go(fmt.Sprintf("t%04d", i), fn)
		d.Add(ts[i])
		if i >= width {
			ts[i-width].Then(ts[i])
			if j := i - width + 1; j%width != 0 && j < i {
				ts[j].Then(ts[i])
			}
		}
	}
	return d
}

func noop(context.Context, *task.Run) (int, error) { return 1, nil }

// BenchmarkGrid is the server time of the grid of a DAG with 200 tasks and 25
// finished runs: the store reads and the JSON, through the HTTP handler.
func BenchmarkGrid(b *testing.B) {
	ctx := context.Background()
	st, err := store.Open(ctx, b.TempDir()+"/bench.db", store.Options{Sync: store.SyncNormal})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	d := wideDAG("wide", 200, 10, noop)
	if err := d.Validate(); err != nil {
		b.Fatal(err)
	}
	states := []task.State{task.StateSuccess, task.StateSuccess, task.StateSuccess, task.StateFailed, task.StateSkipped, task.StateUpstreamFailed}
	for r := 0; r < 25; r++ {
		run, err := runs.Create(ctx, st, d, runs.Spec{Type: task.RunManual, LogicalDate: time.Date(2024, 1, 1+r, 0, 0, 0, 0, time.UTC)})
		if err != nil {
			b.Fatal(err)
		}
		var batch store.Batch
		for i, t := range d.Tasks() {
			batch.SetTI(store.TIChange{From: task.StateNone, TI: store.TaskInstance{Run: run.ID, TaskID: t.ID(),
				State: states[(i+r)%len(states)], MaxTries: 1}})
		}
		if err := st.Apply(ctx, &batch); err != nil {
			b.Fatal(err)
		}
	}
	srv, err := New(Config{Store: st, DAGs: []*dag.DAG{d}})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	srv.SetReady(nil)
	h := srv.Handler()
	req := httptest.NewRequest("GET", "http://127.0.0.1/api/v1/dags/wide/grid", nil)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 || w.Body.Len() < 5000*8 {
			b.Fatalf("grid: %d, %d bytes", w.Code, w.Body.Len())
		}
	}
}

// BenchmarkGraphSVG renders the graph of a 200-task DAG.
func BenchmarkGraphSVG(b *testing.B) {
	d := wideDAG("wide", 200, 10, noop)
	states := map[string]task.State{}
	for i, t := range d.Tasks() {
		states[t.ID()] = task.States[i%len(task.States)]
	}
	b.ReportAllocs()
	for b.Loop() {
		if len(renderGraph(d.ID(), layoutOf(d), "Graph", "run", states, nil)) == 0 {
			b.Fatal("empty")
		}
	}
}

// BenchmarkGraphLayout lays out a 200-task DAG (what layoutOf caches per DAG,
// and what a run of an older version costs per request), and a DAG whose 60
// tasks each depend on the first one and on the one before (long edges across
// up to 58 columns: 1,711 dummy points).
func BenchmarkGraphLayout(b *testing.B) {
	wide := wideDAG("wide", 200, 10, noop)
	var nodes []node
	for _, t := range wide.Tasks() {
		nd := node{id: t.ID(), kind: task.SettingsOf(t).Kind}
		for _, u := range task.Upstream(t) {
			nd.up = append(nd.up, u.ID())
		}
		nodes = append(nodes, nd)
	}
	chain := make([]node, 60)
	for i := range chain {
		chain[i] = node{id: fmt.Sprintf("c%02d", i)}
		if i > 1 {
			chain[i].up = []string{"c00", fmt.Sprintf("c%02d", i-1)}
		} else if i == 1 {
			chain[i].up = []string{"c00"}
		}
	}
	b.Run("wide200", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			computeLayout(nodes, nil)
		}
	})
	b.Run("longEdges60", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			computeLayout(chain, nil)
		}
	})
}

// BenchmarkDAGList is the server time of the DAG list of 50 DAGs with 40 runs
// each, through the handler, with the response cache dropped every time (as
// a change does).
func BenchmarkDAGList(b *testing.B) {
	ctx := context.Background()
	st, err := store.Open(ctx, b.TempDir()+"/bench.db", store.Options{Sync: store.SyncNormal})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	var ds []*dag.DAG
	for i := range 50 {
		d := dag.New(fmt.Sprintf("dag%02d", i), dag.Schedule("@hourly"), dag.StartDate(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)),
			dag.Tags("team"+fmt.Sprint(i%5)), dag.Description("benchmark DAG"))
		d.Add(task.Go("t", noop))
		if err := d.Validate(); err != nil {
			b.Fatal(err)
		}
		ds = append(ds, d)
		for r := range 40 {
			if _, err := runs.Create(ctx, st, d, runs.Spec{Type: task.RunManual, LogicalDate: time.Date(2024, 2, 1, r, i, 0, 0, time.UTC)}); err != nil {
				b.Fatal(err)
			}
		}
	}
	srv, err := New(Config{Store: st, DAGs: ds})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	srv.SetReady(nil)
	h := srv.Handler()
	req := httptest.NewRequest("GET", "http://127.0.0.1/api/v1/dags", nil)
	b.ReportAllocs()
	for b.Loop() {
		srv.cache.invalidate()
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 || w.Body.Len() < 50*1000 {
			b.Fatalf("list: %d, %d bytes", w.Code, w.Body.Len())
		}
	}
}

// BenchmarkTaskInstancesUnderLoad sends task-instance listings of a 1,000-task
// run at a fixed 1,000 requests per second over loopback HTTP for 5 seconds
// (open loop: latency is measured from each request's planned send time), while
// that run executes. It reports the latency percentiles and the rate achieved.
// Run it with -benchtime=1x.
func BenchmarkTaskInstancesUnderLoad(b *testing.B) {
	const (
		rate     = 1000
		duration = 5 * time.Second
		workers  = 64
	)
	s := newStack(b, stackOpts{dags: func(s *stack) []*dag.DAG {
		return []*dag.DAG{wideDAG("big", 1000, 20, func(ctx context.Context, r *task.Run) (int, error) {
			select {
			case <-time.After(150 * time.Millisecond):
			case <-ctx.Done():
			}
			return 1, nil
		})}
	}})
	defer s.hs.Close()
	for b.Loop() {
		run := s.trigger("big", "")
		path := s.hs.URL + runPath("big", run.RunID) + "/tasks"
		_ = url.PathEscape
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers, MaxConnsPerHost: workers}}
		total := int(rate * duration / time.Second)
		lat := make([]time.Duration, total)
		errs := 0
		var mu sync.Mutex
		jobs := make(chan time.Time, total)
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for planned := range jobs {
					res, err := client.Get(path)
					ok := err == nil && res.StatusCode == 200
					if err == nil {
						io.Copy(io.Discard, res.Body)
						res.Body.Close()
					}
					d := time.Since(planned)
					mu.Lock()
					if !ok {
						errs++
					}
					lat = append(lat, d)
					mu.Unlock()
				}
			}()
		}
		lat = lat[:0]
		start := time.Now()
		for i := 0; i < total; i++ {
			planned := start.Add(time.Duration(i) * time.Second / rate)
			if d := time.Until(planned); d > 0 {
				time.Sleep(d)
			}
			jobs <- planned
		}
		close(jobs)
		wg.Wait()
		elapsed := time.Since(start)
		r, _ := s.st.Run(context.Background(), "big", run.RunID)
		tis, _ := s.st.TaskInstances(context.Background(), r.ID)
		done := 0
		for _, ti := range tis {
			if ti.State.Finished() {
				done++
			}
		}
		slices.Sort(lat)
		pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
		b.ReportMetric(pct(0.5), "p50-ms")
		b.ReportMetric(pct(0.99), "p99-ms")
		b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "req/s")
		b.ReportMetric(float64(errs), "errors")
		b.ReportMetric(float64(done), "tasks-done-during-load")
	}
}
