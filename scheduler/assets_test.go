package scheduler_test

import (
	"context"
	"testing"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/internal/store"
	"github.com/trellisdag/trellis/scheduler"
	"github.com/trellisdag/trellis/task"
)

// TestAssetScheduledRuns: a producer's success records its asset events in
// the same commit; a DAG scheduled on both assets runs once when both have new
// events (not after one), and once more only after new events; a DAG on any
// asset runs after one; an event posted from outside (another connection, as
// the API does) triggers too; events from before a DAG was scheduled on an
// asset do not.
func TestAssetScheduledRuns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	prodA := dag.New("prod_a")
	prodA.Add(noop("write", task.Outlets("s3://lake/orders")))
	prodB := dag.New("prod_b")
	prodB.Add(noop("write", task.Outlets("s3://lake/customers")))
	both := dag.New("both", dag.ScheduleOnAssets("s3://lake/orders", "s3://lake/customers"))
	both.Add(noop("join"))
	either := dag.New("either", dag.ScheduleOnAnyAsset("s3://lake/orders", "s3://lake/customers"))
	either.Add(noop("react"))
	dags := []*dag.DAG{prodA, prodB, both, either}

	e := setup(t, dags, func(c *scheduler.Config) { c.Cron = true })
	// An event from before the DAGs were scheduled on the assets.
	if _, err := e.st.PostAssetEvent(ctx, store.AssetEvent{URI: "s3://lake/orders", Source: "old"}); err != nil {
		t.Fatal(err)
	}
	e.runUntilIdle()
	if n := countRuns(t, e, "both") + countRuns(t, e, "either"); n != 0 {
		t.Fatalf("%d asset-triggered runs from an event older than the schedule", n)
	}

	a := e.trigger(prodA, "a1")
	e.runUntilIdle()
	e.expect(a, task.RunSuccess, map[string]task.State{"write": task.StateSuccess})
	if n := countRuns(t, e, "both"); n != 0 {
		t.Errorf("both ran after one of its two assets")
	}
	if n := countRuns(t, e, "either"); n != 1 {
		t.Errorf("either ran %d times after one event, want 1", n)
	}
	evs, total, err := e.st.AssetEvents(ctx, "s3://lake/orders", 10, 0)
	if err != nil || total != 2 || evs[0].SourceDAG != "prod_a" || evs[0].SourceTask != "write" || evs[0].SourceTry != 1 || evs[0].SourceRun != "a1" {
		t.Errorf("events of orders = %+v (%d, %v)", evs, total, err)
	}

	// The other asset's event comes from outside (the API's way).
	if _, err := e.st.PostAssetEvent(ctx, store.AssetEvent{URI: "s3://lake/customers", Source: "api:ci"}); err != nil {
		t.Fatal(err)
	}
	e.runUntilIdle()
	if n := countRuns(t, e, "both"); n != 1 {
		t.Errorf("both ran %d times once both assets had events, want 1", n)
	}
	if n := countRuns(t, e, "either"); n != 2 {
		t.Errorf("either ran %d times, want 2", n)
	}
	e.runUntilIdle() // nothing new: no new run
	if n := countRuns(t, e, "both") + countRuns(t, e, "either"); n != 3 {
		t.Errorf("%d asset-triggered runs without new events, want still 3", n)
	}
	rs, err := e.st.Runs(ctx, store.RunFilter{DAGID: "both", Limit: 10})
	if err != nil || len(rs) != 1 || rs[0].Type != task.RunAssetTriggered || rs[0].State != task.RunSuccess {
		t.Fatalf("both's runs = %+v, %v", rs, err)
	}
	trig, err := e.st.RunAssetEvents(ctx, rs[0].ID)
	if err != nil || len(trig) != 2 {
		t.Errorf("both's run was triggered by %+v (%v), want the two new events", trig, err)
	}
	if rs[0].IntervalEnd.Before(rs[0].IntervalStart) || rs[0].IntervalStart.IsZero() {
		t.Errorf("data interval [%s, %s)", rs[0].IntervalStart, rs[0].IntervalEnd)
	}
}

func countRuns(t *testing.T, e *env, dagID string) int {
	t.Helper()
	rs, err := e.st.Runs(context.Background(), store.RunFilter{DAGID: dagID, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return len(rs)
}
