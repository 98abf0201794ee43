package bench_test

import (
	"context"
	"testing"

	"github.com/trellisdag/trellis/internal/bench"
	"github.com/trellisdag/trellis/internal/store"
)

func report(b *testing.B, r bench.Result) {
	b.Log(r)
	b.ReportMetric(r.TasksPerSecond(), "tasks/s")
	if r.HandoffP50 > 0 {
		b.ReportMetric(float64(r.HandoffP50.Microseconds()), "p50-handoff-µs")
		b.ReportMetric(float64(r.HandoffP99.Microseconds()), "p99-handoff-µs")
	}
}

// BenchmarkChain1000 is scenario (a): hand-off latency along a chain of 1,000
// no-op Go tasks (synchronous=FULL commits).
func BenchmarkChain1000(b *testing.B) {
	for i := 0; i < b.N; i++ {
		r, err := bench.Chain(context.Background(), b.TempDir(), bench.DB{Sync: store.SyncNormal}, 1000)
		if err != nil {
			b.Fatal(err)
		}
		report(b, r)
	}
}

// BenchmarkFanOut10000 is scenario (b): 10,000 no-op Go tasks at parallelism 64.
func BenchmarkFanOut10000(b *testing.B) {
	for i := 0; i < b.N; i++ {
		r, err := bench.FanOut(context.Background(), b.TempDir(), bench.DB{Sync: store.SyncFull}, 10000, 64)
		if err != nil {
			b.Fatal(err)
		}
		report(b, r)
	}
}

// BenchmarkMapped10000 is 10,000 mapped instances of a no-op Go function
// at parallelism 64 (synchronous=FULL commits).
func BenchmarkMapped10000(b *testing.B) {
	for i := 0; i < b.N; i++ {
		r, err := bench.Mapped(context.Background(), b.TempDir(), bench.DB{Sync: store.SyncFull}, 10000, 64)
		if err != nil {
			b.Fatal(err)
		}
		report(b, r)
	}
}

// BenchmarkBash1000 is scenario (c): 1,000 Bash `true` tasks at parallelism 8.
func BenchmarkBash1000(b *testing.B) {
	for i := 0; i < b.N; i++ {
		r, err := bench.Bash(context.Background(), b.TempDir(), bench.DB{Sync: store.SyncFull}, 1000, 8)
		if err != nil {
			b.Fatal(err)
		}
		report(b, r)
	}
}

// TestScenariosComplete runs each scenario small, so that the benchmark code is
// checked by the ordinary test run.
func TestScenariosComplete(t *testing.T) {
	ctx := context.Background()
	if r, err := bench.Mapped(ctx, t.TempDir(), bench.DB{Sync: store.SyncNormal}, 200, 8); err != nil || r.Tasks != 202 {
		t.Fatalf("mapped: %v %+v", err, r)
	}
	if r, err := bench.Chain(ctx, t.TempDir(), bench.DB{Sync: store.SyncNormal}, 20); err != nil || r.HandoffP50 <= 0 {
		t.Fatalf("chain: %v %+v", err, r)
	}
	if _, err := bench.FanOut(ctx, t.TempDir(), bench.DB{Sync: store.SyncNormal}, 200, 16); err != nil {
		t.Fatal(err)
	}
	if _, err := bench.Bash(ctx, t.TempDir(), bench.DB{Sync: store.SyncNormal}, 10, 4); err != nil {
		t.Fatal(err)
	}
}
