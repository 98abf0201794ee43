package store

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/trellisdag/trellis/task"
)

// TestCreateAssetRunOncePerEventSet: two connections (two schedulers) try to
// create the run an event set triggers at the same time; exactly one run is
// created, and none until every asset has a new event.
func testCreateAssetRunOncePerEventSet(t *testing.T, be backend) {
	t.Parallel()
	ctx := context.Background()
	path := be.newDB(t)
	a, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	uris := []string{"s3://x", "s3://y"}
	if err := a.RegisterAssetConsumer(ctx, "cons", uris); err != nil {
		t.Fatal(err)
	}
	seeds := []TaskSeed{{TaskID: "t", MaxTries: 1}}
	mk := func(n int) Run {
		now := time.Now().UTC()
		return Run{DAGID: "cons", RunID: "asset_triggered__" + now.Format(time.RFC3339Nano) + string(rune('a'+n)),
			Type: task.RunAssetTriggered, State: task.RunQueued, LogicalDate: now}
	}
	if _, err := a.PostAssetEvent(ctx, AssetEvent{URI: "s3://x"}); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := a.CreateAssetRun(ctx, "cons", uris, false, mk(0), seeds); ok || err != nil {
		t.Fatalf("one of two assets: created %v, %v; want no run", ok, err)
	}
	if _, err := b.PostAssetEvent(ctx, AssetEvent{URI: "s3://y"}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	oks := make(chan bool, 2)
	for i, st := range []*Store{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, ok, err := st.CreateAssetRun(ctx, "cons", uris, false, mk(i+1), seeds)
			if err != nil {
				t.Error(err)
			}
			oks <- ok
		}()
	}
	wg.Wait()
	close(oks)
	n := 0
	for ok := range oks {
		if ok {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d runs created for one event set, want 1", n)
	}
	rs, err := a.Runs(ctx, RunFilter{DAGID: "cons"})
	if err != nil || len(rs) != 1 {
		t.Fatalf("runs = %+v, %v", rs, err)
	}
	evs, err := a.RunAssetEvents(ctx, rs[0].ID)
	if err != nil || len(evs) != 2 {
		t.Errorf("triggering events = %+v, %v", evs, err)
	}
	if _, ok, err := a.CreateAssetRun(ctx, "cons", uris, false, mk(5), seeds); ok || err != nil {
		t.Errorf("no new events: created %v, %v", ok, err)
	}
}
