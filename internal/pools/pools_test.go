package pools_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/internal/pools"
	"github.com/trellisdag/trellis/internal/store"
	"github.com/trellisdag/trellis/task"
)

func noop(id string, opts ...task.Option) task.Task {
	return task.Go(id, func(context.Context, *task.Run) (struct{}, error) { return struct{}{}, nil }, opts...)
}

func catalog() pools.Catalog {
	d := dag.New("wh")
	d.Add(noop("load", task.Pool("warehouse"), task.PoolSlots(2)), noop("check", task.Pool("warehouse")), noop("other"))
	return pools.Catalog{Declared: map[string]int{"warehouse": 4}, DAGs: []*dag.DAG{d}}
}

func TestListSizesAndOccupancy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cat := catalog()
	list, err := cat.List(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "default_pool" || list[0].Slots != 128 || list[0].Tasks != 1 ||
		list[1].Name != "warehouse" || list[1].Slots != 4 || list[1].Tasks != 2 || list[1].InUse != 0 {
		t.Fatalf("without a database: %+v", list)
	}

	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "trellis.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := cat.Set(ctx, st, "warehouse", 6); err != nil {
		t.Fatal(err)
	}
	ld := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	run, err := st.CreateRun(ctx, store.Run{DAGID: "wh", RunID: "r1", Type: task.RunManual, State: task.RunQueued,
		LogicalDate: ld, IntervalStart: ld, IntervalEnd: ld}, []store.TaskSeed{{TaskID: "load", MaxTries: 1}, {TaskID: "check", MaxTries: 1}, {TaskID: "other", MaxTries: 1}})
	if err != nil {
		t.Fatal(err)
	}
	// load is queued (2 slots of warehouse), check is only scheduled (none).
	var b store.Batch
	b.SetRun(store.RunChange{Run: run.ID, From: task.RunQueued, To: task.RunRunning, At: ld})
	b.SetTI(store.TIChange{From: task.StateNone, TI: store.TaskInstance{Run: run.ID, TaskID: "load", State: task.StateScheduled, MaxTries: 1}, At: ld})
	b.SetTI(store.TIChange{From: task.StateNone, TI: store.TaskInstance{Run: run.ID, TaskID: "check", State: task.StateScheduled, MaxTries: 1}, At: ld})
	if err := st.Apply(ctx, &b); err != nil {
		t.Fatal(err)
	}
	b = store.Batch{}
	b.SetTI(store.TIChange{From: task.StateScheduled, TI: store.TaskInstance{Run: run.ID, TaskID: "load", State: task.StateQueued, Try: 1, MaxTries: 1}, At: ld})
	if err := st.Apply(ctx, &b); err != nil {
		t.Fatal(err)
	}
	list, err = cat.List(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if wh := list[1]; wh.Slots != 6 || !wh.SetAtRunTime || wh.Declared != 4 || wh.InUse != 2 {
		t.Errorf("warehouse = %+v, want 6 slots set at run time, 2 in use", wh)
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	cat := catalog()
	if err := cat.Check("warehose", 3); !errors.Is(err, pools.ErrUndeclared) || err.Error() != `pool "warehose" is not declared (declared: default_pool (128), warehouse (4))` {
		t.Errorf("undeclared: %v", err)
	}
	var small *pools.TooSmallError
	if err := cat.Check("warehouse", 1); !errors.As(err, &small) || small.TaskID != "load" || small.Need != 2 {
		t.Errorf("too small: %v", err)
	}
	if err := cat.Check("warehouse", -1); err == nil {
		t.Error("negative size accepted")
	}
	if err := cat.Check("default_pool", 1); err != nil {
		t.Errorf("default pool to 1: %v", err)
	}
}
