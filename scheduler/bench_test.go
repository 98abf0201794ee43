package scheduler_test

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/executor"
	"github.com/trellisdag/trellis/executor/local"
	"github.com/trellisdag/trellis/internal/store"
	"github.com/trellisdag/trellis/scheduler"
	"github.com/trellisdag/trellis/scheduler/schedulertest"
	"github.com/trellisdag/trellis/task"
)

type benchEnv struct {
	st     *store.Store
	sched  *scheduler.Scheduler
	clock  *schedulertest.Clock
	events chan scheduler.Event
	cancel context.CancelFunc
	done   chan error
}

func startBench(b *testing.B, dags []*dag.DAG, at time.Time) *benchEnv {
	b.Helper()
	st, err := store.Open(context.Background(), filepath.Join(b.TempDir(), "b.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	e := &benchEnv{st: st, clock: schedulertest.NewClock(at), events: make(chan scheduler.Event, 1<<20), done: make(chan error, 1)}
	ex := local.New(local.Config{Report: func(r executor.Report) { e.sched.Report(r) },
		Logs: func(k executor.Key) io.WriteCloser { return st.TryLog(k.Run, k.TaskID, k.Try) }})
	e.sched, err = scheduler.New(scheduler.Config{Store: st, DAGs: dags, Local: ex, Cron: true, Clock: e.clock,
		PollInterval: -1, Parallelism: 64, Observe: func(ev scheduler.Event) { e.events <- ev }})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	go func() { e.done <- e.sched.Run(ctx) }()
	return e
}

func (e *benchEnv) stop(b *testing.B) {
	e.cancel()
	if err := <-e.done; err != nil {
		b.Fatal(err)
	}
}

// waitRuns waits (bounded) for n run events in state want.
func (e *benchEnv) waitRuns(b *testing.B, n int, want task.RunState) {
	b.Helper()
	timeout := time.After(5 * time.Minute)
	for n > 0 {
		select {
		case ev := <-e.events:
			if ev.TaskID == "" && ev.RunState == want {
				n--
			}
		case <-timeout:
			b.Fatalf("%d runs short of %s", n, want)
		}
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCatchupYearHourly creates the 8,760 runs of one year of hourly catchup
// (one no-op task each; max active runs above 8,760) and measures the time until
// the scheduler has created them all.
func BenchmarkCatchupYearHourly(b *testing.B) {
	for i := 0; i < b.N; i++ {
		start := time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC)
		d := dag.New("year", dag.Schedule("@hourly"), dag.StartDate(start), dag.MaxActiveRuns(10000))
		d.Add(task.Go("noop", func(context.Context, *task.Run) (struct{}, error) { return struct{}{}, nil }))
		began := time.Now()
		e := startBench(b, []*dag.DAG{d}, start.AddDate(1, 0, 0).Add(time.Minute))
		e.waitRuns(b, 8760, task.RunQueued)
		created := time.Since(began)
		e.waitRuns(b, 8760, task.RunSuccess)
		all := time.Since(began)
		e.stop(b)
		b.ReportMetric(created.Seconds(), "s-to-create-8760")
		b.ReportMetric(all.Seconds(), "s-to-finish-8760")
	}
}

// BenchmarkThousandMinutelyDAGs runs 1,000 DAGs scheduled `* * * * *` (one no-op
// task each) for one simulated hour on a fake clock: 60,000 runs. It reports the
// process CPU time per simulated hour (scheduling, commits and the no-op tasks).
func BenchmarkThousandMinutelyDAGs(b *testing.B) {
	for i := 0; i < b.N; i++ {
		start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
		var dags []*dag.DAG
		for j := 0; j < 1000; j++ {
			d := dag.New(fmt.Sprintf("m%04d", j), dag.Schedule("* * * * *"), dag.StartDate(start), dag.Catchup(false))
			d.Add(task.Go("noop", func(context.Context, *task.Run) (struct{}, error) { return struct{}{}, nil }))
			dags = append(dags, d)
		}
		e := startBench(b, dags, start)
		cpu0, wall0 := cpuTime(), time.Now()
		for m := 1; m <= 60; m++ {
			e.clock.Set(start.Add(time.Duration(m) * time.Minute))
			e.waitRuns(b, 1000, task.RunSuccess)
		}
		cpu, wall := cpuTime()-cpu0, time.Since(wall0)
		e.stop(b)
		b.ReportMetric(cpu.Seconds(), "cpu-s/simulated-hour")
		b.ReportMetric(wall.Seconds(), "wall-s/simulated-hour")
	}
}
