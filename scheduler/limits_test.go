package scheduler_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/scheduler"
	"github.com/trellisdag/trellis/task"
)

// gauge tracks how many tasks run at once.
type gauge struct {
	cur, max atomic.Int32
}

func (g *gauge) task(id string, opts ...task.Option) *task.GoTask[int] {
	return task.Go(id, func(ctx context.Context, r *task.Run) (int, error) {
		n := g.cur.Add(1)
		for {
			m := g.max.Load()
			if n <= m || g.max.CompareAndSwap(m, n) {
				break
			}
		}
		// Hold the slot until every task that could start has had the chance.
		for i := 0; i < 2000; i++ {
			if ctx.Err() != nil {
				break
			}
			runtime.Gosched()
		}
		g.cur.Add(-1)
		return 0, nil
	}, opts...)
}

func TestPoolLimitsConcurrency(t *testing.T) {
	t.Parallel()
	var g gauge
	d := dag.New("pools", dag.MaxActiveTasks(50))
	for i := 0; i < 20; i++ {
		d.Add(g.task(fmt.Sprintf("p%d", i), task.Pool("db")))
	}
	e := setup(t, []*dag.DAG{d}, func(c *scheduler.Config) { c.Pools = map[string]int{"db": 2} })
	run := e.trigger(d, "r1")
	e.runUntilIdle()
	if e.runState(run) != task.RunSuccess {
		t.Fatalf("run %s", e.runState(run))
	}
	if g.max.Load() > 2 {
		t.Errorf("max concurrent = %d, want <= 2 (pool db has 2 slots)", g.max.Load())
	}
}

func TestParallelismAndMaxActiveTasks(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name                string
		parallelism, maxDag int
		want                int32
	}{
		{"parallelism", 3, 16, 3},
		{"max active tasks", 32, 4, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var g gauge
			d := dag.New("limits", dag.MaxActiveTasks(tc.maxDag))
			for i := 0; i < 30; i++ {
				d.Add(g.task(fmt.Sprintf("t%d", i)))
			}
			e := setup(t, []*dag.DAG{d}, func(c *scheduler.Config) { c.Parallelism = tc.parallelism })
			run := e.trigger(d, "r1")
			e.runUntilIdle()
			if e.runState(run) != task.RunSuccess {
				t.Fatalf("run %s", e.runState(run))
			}
			if g.max.Load() > tc.want {
				t.Errorf("max concurrent = %d, want <= %d", g.max.Load(), tc.want)
			}
		})
	}
}

func TestPriorityWeightOrdersReadyTasks(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var order []string
	rec := func(id string, w int) *task.GoTask[int] {
		return task.Go(id, func(ctx context.Context, r *task.Run) (int, error) {
			mu.Lock()
			order = append(order, id)
			mu.Unlock()
			return 0, nil
		}, task.Priority(w))
	}
	d := dag.New("prio")
	d.Add(rec("low", 1), rec("high", 10), rec("mid", 5))
	e := setup(t, []*dag.DAG{d}, func(c *scheduler.Config) { c.Parallelism = 1 })
	e.trigger(d, "r1")
	e.runUntilIdle()
	if got := order; len(got) != 3 || got[0] != "high" || got[1] != "mid" || got[2] != "low" {
		t.Errorf("order = %v, want [high mid low]", got)
	}
}

// TestPoolSlots: a task takes its pool_slots from its pool while it runs: in
// a 3-slot pool, the slots in use never exceed 3 (a 2-slot task runs beside at
// most one 1-slot task), and the pool is filled (both kinds ran).
func TestPoolSlots(t *testing.T) {
	t.Parallel()
	var inUse, most, heavyMost, heavyNow atomic.Int32
	slotTask := func(id string, slots int32) *task.GoTask[int] {
		return task.Go(id, func(ctx context.Context, r *task.Run) (int, error) {
			n := inUse.Add(slots)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			if slots == 2 {
				h := heavyNow.Add(1)
				for m := heavyMost.Load(); h > m && !heavyMost.CompareAndSwap(m, h); m = heavyMost.Load() {
				}
				defer heavyNow.Add(-1)
			}
			for i := 0; i < 2000 && ctx.Err() == nil; i++ {
				runtime.Gosched() // hold the slots while others could start
			}
			inUse.Add(-slots)
			return 0, nil
		}, task.Pool("db"), task.PoolSlots(int(slots)))
	}
	d := dag.New("slots", dag.MaxActiveTasks(50))
	for i := 0; i < 6; i++ {
		d.Add(slotTask(fmt.Sprintf("heavy%d", i), 2), slotTask(fmt.Sprintf("light%d", i), 1))
	}
	e := setup(t, []*dag.DAG{d}, func(c *scheduler.Config) { c.Pools = map[string]int{"db": 3} })
	run := e.trigger(d, "r1")
	e.runUntilIdle()
	if e.runState(run) != task.RunSuccess {
		t.Fatalf("run %s", e.runState(run))
	}
	if most.Load() > 3 || heavyMost.Load() > 1 {
		t.Errorf("at most %d slots and %d two-slot tasks in use at once in a three-slot pool", most.Load(), heavyMost.Load())
	}
}

// TestPoolSizeSetAtRunTime: a size set in the store (pools set) overrides the
// declared one: declared 5, set to 1, and one task runs at a time.
func TestPoolSizeSetAtRunTime(t *testing.T) {
	t.Parallel()
	var g gauge
	d := dag.New("resized", dag.MaxActiveTasks(50))
	for i := 0; i < 10; i++ {
		d.Add(g.task(fmt.Sprintf("p%d", i), task.Pool("db")))
	}
	e := setup(t, []*dag.DAG{d}, func(c *scheduler.Config) { c.Pools = map[string]int{"db": 5} })
	if err := e.st.SetPoolSlots(context.Background(), "db", 1); err != nil {
		t.Fatal(err)
	}
	run := e.trigger(d, "r1")
	e.runUntilIdle()
	if e.runState(run) != task.RunSuccess {
		t.Fatalf("run %s", e.runState(run))
	}
	if g.max.Load() > 1 {
		t.Errorf("max concurrent = %d, want 1 (pool db set to 1 slot at run time)", g.max.Load())
	}
}
