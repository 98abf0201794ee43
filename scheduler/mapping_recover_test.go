package scheduler_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/internal/runs"
	"github.com/trellisdag/trellis/internal/store"
	"github.com/trellisdag/trellis/task"
)

// mappedDAG is src -> each (mapped over src's result) -> red, counting each
// element's calls.
func mappedDAG(calls *[4]atomic.Int32, xs func() []int) (*dag.DAG, *task.MapTask[int, int]) {
	src := task.Go("src", func(context.Context, *task.Run) ([]int, error) { return xs(), nil })
	each := task.Map("each", src, func(_ context.Context, r *task.Run, x int) (int, error) {
		calls[r.MapIndex()].Add(1)
		return x * 10, nil
	})
	red := task.Go("red", func(_ context.Context, r *task.Run) ([]int, error) { return task.Output(r, each) })
	each.Then(red)
	return dag.New("m", dag.DefaultRetries(1, 0)).Add(src, each, red), each
}

// TestMapExpandsAfterCrash: a process committed the producer's success and
// died before the expansion; the next scheduler expands and runs the map.
// Another died mid-map: its succeeded instance is not run again, its running
// one is interrupted and runs again with the next try number.
func TestMapExpandsAfterCrash(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	at := time.Now()
	t.Run("before expansion", func(t *testing.T) {
		var calls [4]atomic.Int32
		d, _ := mappedDAG(&calls, func() []int { t.Error("src ran again"); return nil })
		e := setup(t, []*dag.DAG{d})
		run := e.trigger(d, "r1")
		var b store.Batch
		b.SetRun(store.RunChange{Run: run.ID, From: task.RunQueued, To: task.RunRunning, At: at})
		b.SetTI(store.TIChange{From: task.StateNone, TI: store.TaskInstance{Run: run.ID, TaskID: "src", State: task.StateSuccess, MaxTries: 2}, At: at})
		b.PutXCom(run.ID, "src", []byte("[1,2,3]"))
		if err := e.st.Apply(ctx, &b); err != nil {
			t.Fatal(err)
		}
		e.runUntilIdle()
		e.expect(run, task.RunSuccess, map[string]task.State{"each[0]": task.StateSuccess, "each[2]": task.StateSuccess, "red": task.StateSuccess})
		if v, _, _ := e.st.XCom(ctx, run.ID, "red"); string(v) != "[10,20,30]" {
			t.Errorf("red = %s, want [10,20,30]", v)
		}
	})
	t.Run("mid map", func(t *testing.T) {
		var calls [4]atomic.Int32
		d, _ := mappedDAG(&calls, func() []int { t.Error("src ran again"); return nil })
		e := setup(t, []*dag.DAG{d})
		run := e.trigger(d, "r1")
		ti := func(id string, s task.State, try int) store.TaskInstance {
			return store.TaskInstance{Run: run.ID, TaskID: id, State: s, Try: try, MaxTries: 2, Executor: "local", Started: at}
		}
		steps := []func(*store.Batch){
			func(b *store.Batch) {
				b.SetRun(store.RunChange{Run: run.ID, From: task.RunQueued, To: task.RunRunning, At: at})
				b.SetTI(store.TIChange{From: task.StateNone, TI: store.TaskInstance{Run: run.ID, TaskID: "src", State: task.StateSuccess, MaxTries: 2}, At: at})
				b.PutXCom(run.ID, "src", []byte("[1,2,3]"))
			},
			func(b *store.Batch) {
				b.Expand(store.Expansion{Run: run.ID, TaskID: "each", Count: 3, MaxTries: 2})
				for _, id := range []string{"each[0]", "each[1]", "each[2]"} {
					b.SetTI(store.TIChange{From: task.StateNone, TI: ti(id, task.StateScheduled, 0), At: at})
				}
			},
			func(b *store.Batch) {
				for _, id := range []string{"each[0]", "each[1]", "each[2]"} {
					b.SetTI(store.TIChange{From: task.StateScheduled, TI: ti(id, task.StateQueued, 1), At: at})
				}
			},
			func(b *store.Batch) {
				b.SetTI(store.TIChange{From: task.StateQueued, TI: ti("each[0]", task.StateSuccess, 1), At: at})
				b.PutXCom(run.ID, "each[0]", []byte("10"))
				b.SetTI(store.TIChange{From: task.StateQueued, TI: ti("each[1]", task.StateRunning, 1), At: at})
			},
		}
		for i, step := range steps {
			var b store.Batch
			step(&b)
			if err := e.st.Apply(ctx, &b); err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
		}
		e.runUntilIdle()
		e.expect(run, task.RunSuccess, map[string]task.State{"each[0]": task.StateSuccess, "each[1]": task.StateSuccess, "red": task.StateSuccess})
		st := e.states(run)
		if calls[0].Load() != 0 || st["each[0]"].Try != 1 {
			t.Errorf("each[0] ran %d more times (try %d); a succeeded instance must not run again", calls[0].Load(), st["each[0]"].Try)
		}
		if st["each[1]"].Try != 2 || st["each[2]"].Try != 2 {
			t.Errorf("interrupted instances: each[1] try %d, each[2] try %d; want 2 and 2 (numbers never reused)", st["each[1]"].Try, st["each[2]"].Try)
		}
		if v, _, _ := e.st.XCom(ctx, run.ID, "red"); string(v) != "[10,20,30]" {
			t.Errorf("red = %s, want [10,20,30]", v)
		}
	})
}

// TestMapReexpandsAfterClear: clearing the producer and what follows reads
// the list again; instances past a shorter list become removed (kept, not
// counted downstream), and a longer list adds instances (Airflow's revision of
// map indexes).
func TestMapReexpandsAfterClear(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var calls [4]atomic.Int32
	var n atomic.Int32
	n.Store(3)
	d, each := mappedDAG(&calls, func() []int {
		xs := make([]int, n.Load())
		for i := range xs {
			xs[i] = i + 1
		}
		return xs
	})
	e := setup(t, []*dag.DAG{d})
	run := e.trigger(d, "r1")
	e.runUntilIdle()
	e.expect(run, task.RunSuccess, map[string]task.State{"each[2]": task.StateSuccess})
	src, _ := d.Task("src")
	for _, c := range []struct {
		n       int32
		want    string
		removed []string
	}{{2, "[10,20]", []string{"each[2]"}}, {4, "[10,20,30,40]", nil}, {0, "", []string{"each[0]", "each[3]"}}, {3, "[10,20,30]", []string{"each[3]"}}} {
		n.Store(c.n)
		cur, err := e.st.RunByID(ctx, run.ID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := runs.Clear(ctx, e.st, d, cur, []task.Task{src}, runs.ClearOptions{Downstream: true}); err != nil {
			t.Fatal(err)
		}
		e.runUntilIdle()
		if got := e.runState(run); got != task.RunSuccess {
			t.Fatalf("list of %d: run %s", c.n, got)
		}
		if v, _, _ := e.st.XCom(ctx, run.ID, "red"); string(v) != c.want {
			t.Errorf("list of %d: red = %s, want %s", c.n, v, c.want)
		}
		st := e.states(run)
		if c.n == 0 && (st["each"].State != task.StateSkipped || st["red"].State != task.StateSkipped) {
			t.Errorf("empty list: each %s, red %s; want both skipped", st["each"].State, st["red"].State)
		}
		for _, id := range c.removed {
			if st[id].State != task.StateRemoved {
				t.Errorf("list of %d: %s is %s, want removed", c.n, id, st[id].State)
			}
		}
		for i := range int(c.n) {
			if s := st[fmt.Sprintf("each[%d]", i)].State; s != task.StateSuccess {
				t.Errorf("list of %d: each[%d] is %s", c.n, i, s)
			}
		}
	}
	_ = each
}
