package web

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/internal/runs"
	"github.com/trellisdag/trellis/internal/store"
	"github.com/trellisdag/trellis/task"
)

// fanDAG is list -> square (mapped over list's result) -> total.
func fanDAG(id string) *dag.DAG {
	d := dag.New(id, dag.DefaultRetries(0, 0))
	list := task.Go("list", func(ctx context.Context, r *task.Run) ([]int, error) { return []int{1}, nil })
	square := task.Map("square", list, func(ctx context.Context, r *task.Run, x int) (int, error) { return x * x, nil })
	total := task.Go("total", func(ctx context.Context, r *task.Run) (int, error) { return 0, nil })
	d.Add(list, square, total)
	square.Then(total)
	return d
}

// fillMapped creates nRuns runs of d (a fanDAG) through the store API, each
// with square expanded to n instances whose states state(run, index) gives
// (list and total success), as the scheduler's batches leave them.
func fillMapped(tb testing.TB, st *store.Store, d *dag.DAG, nRuns, n int, state func(r, k int) task.State) []store.Run {
	tb.Helper()
	ctx := context.Background()
	var out []store.Run
	for r := 0; r < nRuns; r++ {
		run, err := runs.Create(ctx, st, d, runs.Spec{Type: task.RunManual, LogicalDate: time.Date(2024, 1, 1, r, 0, 0, 0, time.UTC)})
		if err != nil {
			tb.Fatal(err)
		}
		var b store.Batch
		b.Expand(store.Expansion{Run: run.ID, TaskID: "square", Count: n, MaxTries: 1})
		for _, id := range []string{"list", "total"} {
			b.SetTI(store.TIChange{From: task.StateNone, TI: store.TaskInstance{Run: run.ID, TaskID: id, State: task.StateSuccess, Try: 1, MaxTries: 1}})
		}
		// Each instance goes to its state by legal steps, one batch a step.
		paths := make([][]task.State, n)
		steps := 0
		for k := range paths {
			paths[k] = pathTo(state(r, k))
			steps = max(steps, len(paths[k]))
		}
		for step := 0; step < steps; step++ {
			for k, p := range paths {
				if step >= len(p) {
					continue
				}
				from, try := task.StateNone, 1
				if step > 0 {
					from = p[step-1]
				}
				if p[step] == task.StateScheduled {
					try = 0 // a try begins when it is queued
				}
				b.SetTI(store.TIChange{From: from, TI: store.TaskInstance{Run: run.ID, TaskID: task.InstanceID("square", k),
					State: p[step], Try: try, MaxTries: 1}})
			}
			if err := st.Apply(ctx, &b); err != nil {
				tb.Fatalf("fill run %d, step %d: %v", r, step, err)
			}
			b = store.Batch{}
		}
		out = append(out, run)
	}
	return out
}

// pathTo is the legal steps from none to st.
func pathTo(st task.State) []task.State {
	switch st {
	case task.StateNone:
		return nil
	case task.StateScheduled:
		return []task.State{st}
	case task.StateQueued:
		return []task.State{task.StateScheduled, st}
	case task.StateRunning:
		return []task.State{task.StateScheduled, task.StateQueued, st}
	case task.StateUpForRetry, task.StateDeferred:
		return []task.State{task.StateScheduled, task.StateQueued, task.StateRunning, st}
	}
	return []task.State{st}
}

// BenchmarkGridMapped is the server time of the grid (25 runs, the default)
// of a DAG whose mapped task has 1,000 instances in each run, through the
// HTTP handler over a real SQLite store: store.GridCells groups the 25,000
// instances by task and state in SQL. The target is at most 100 ms.
func BenchmarkGridMapped(b *testing.B) {
	ctx := context.Background()
	st, err := store.Open(ctx, b.TempDir()+"/bench.db", store.Options{Sync: store.SyncNormal})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	d := fanDAG("fan")
	if err := d.Validate(); err != nil {
		b.Fatal(err)
	}
	fillMapped(b, st, d, 25, 1000, func(r, k int) task.State {
		if k == r {
			return task.StateFailed
		}
		return task.StateSuccess
	})
	srv, err := New(Config{Store: st, DAGs: []*dag.DAG{d}})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	srv.SetReady(nil)
	h := srv.Handler()
	req := httptest.NewRequest("GET", "http://127.0.0.1/api/v1/dags/fan/grid", nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != 200 {
		b.Fatalf("grid: %d %s", w.Code, w.Body)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("grid: %d", w.Code)
		}
	}
}
