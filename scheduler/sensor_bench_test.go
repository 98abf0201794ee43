package scheduler_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/executor"
	"github.com/trellisdag/trellis/executor/local"
	"github.com/trellisdag/trellis/internal/outbox"
	"github.com/trellisdag/trellis/internal/runs"
	"github.com/trellisdag/trellis/internal/store"
	"github.com/trellisdag/trellis/scheduler"
	"github.com/trellisdag/trellis/scheduler/schedulertest"
	"github.com/trellisdag/trellis/task"
)

// sensorFigures is what the sensors scenario measured.
type sensorFigures struct {
	Sensors int
	// FirstPokes: the runs admitted to every sensor deferred after its first
	// poke (each first poke is an ordinary try: queued, running, deferred).
	FirstPokes time.Duration
	// RSS (VmRSS) with every sensor deferred, at the start and at the end of
	// the quiet window; HWM is the process's peak RSS (VmHWM) at the end.
	RSSQuiet, RSSQuietEnd, HWM int64 // bytes
	// Quiet is the window of wall time with every sensor deferred and none
	// due; QuietCPU the process CPU time (user + system) spent in it.
	Quiet, QuietCPU time.Duration
	// AllDue: from the clock reaching every sensor's next poke to every sensor
	// deferred again (committed); Succeed: the same when the pokes find the
	// condition met, to every sensor succeeded and every run finished.
	AllDue, Succeed time.Duration
	Commits         int64 // store commits during AllDue
}

func (f sensorFigures) cpuShare() float64 { return f.QuietCPU.Seconds() / f.Quiet.Seconds() }

func (f sensorFigures) String() string {
	return fmt.Sprintf("%d sensors: first pokes %s; RSS deferred %.1f MB (%.1f MB after %s), peak %.1f MB; "+
		"CPU between pokes %s in %s (%.2f%% of a core); all due: %s (%.0f pokes/s, %d commits); all met: %s (%.0f pokes/s)",
		f.Sensors, f.FirstPokes.Round(time.Millisecond), mb(f.RSSQuiet), mb(f.RSSQuietEnd), f.Quiet.Round(time.Second), mb(f.HWM),
		f.QuietCPU.Round(time.Millisecond), f.Quiet.Round(time.Millisecond), 100*f.cpuShare(),
		f.AllDue.Round(time.Millisecond), float64(f.Sensors)/f.AllDue.Seconds(), f.Commits,
		f.Succeed.Round(time.Millisecond), float64(f.Sensors)/f.Succeed.Seconds())
}

func mb(b int64) float64 { return float64(b) / 1e6 }

// procStatus reads a size field ("VmRSS", "VmHWM") of /proc/self/status, in
// bytes.
func procStatus(tb testing.TB, field string) int64 {
	tb.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		tb.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				tb.Fatal(err)
			}
			return kb << 10
		}
	}
	tb.Fatalf("no %s in /proc/self/status", field)
	return 0
}

// stateCount counts committed task events by state and run events by run
// state (Observe), and lets a goroutine wait for a count.
type stateCount struct {
	mu     sync.Mutex
	tasks  map[task.State]int
	runs   map[task.RunState]int
	signal chan struct{}
}

func newStateCount() *stateCount {
	return &stateCount{tasks: map[task.State]int{}, runs: map[task.RunState]int{}, signal: make(chan struct{}, 1)}
}

func (c *stateCount) observe(e scheduler.Event) {
	c.mu.Lock()
	if e.TaskID != "" {
		c.tasks[e.State]++
	} else {
		c.runs[e.RunState]++
	}
	c.mu.Unlock()
	select {
	case c.signal <- struct{}{}:
	default:
	}
}

// wait waits (bounded) until done, read under the lock, holds.
func (c *stateCount) wait(tb testing.TB, what string, done func(tasks map[task.State]int, runs map[task.RunState]int) bool) {
	tb.Helper()
	timeout := time.NewTimer(5 * time.Minute)
	defer timeout.Stop()
	for {
		c.mu.Lock()
		ok := done(c.tasks, c.runs)
		c.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-c.signal:
		case <-timeout.C:
			c.mu.Lock()
			defer c.mu.Unlock()
			tb.Fatalf("%s: not reached in 5 minutes (tasks %v, runs %v)", what, c.tasks, c.runs)
		}
	}
}

// sensorScenario defers nRuns × perRun sensors (one DAG of perRun sensors,
// nRuns manual runs) with the real scheduler, local executor, outbox worker
// and store (a SQLite file, synchronous=FULL), configured as serve configures
// them (parallelism 32, store polled every second, outbox polled every
// second), on a fake clock: the poke interval is an hour of fake time, so
// nothing is due until the clock moves. It measures the first pokes, the
// memory and the CPU of a quiet window of wall time (none when quiet is 0),
// then moves the clock an hour so that every sensor is due at once and
// measures until every one is deferred again, then makes the condition true,
// moves the clock another hour and measures until every sensor succeeded.
func sensorScenario(tb testing.TB, nRuns, perRun int, quiet time.Duration) sensorFigures {
	tb.Helper()
	ctx := context.Background()
	var met atomic.Bool
	var pokes atomic.Int64
	d := dag.New("sensors", dag.MaxActiveRuns(nRuns), dag.MaxActiveTasks(perRun), dag.DefaultRetries(0, 0))
	for j := range perRun {
		d.Add(task.Sensor(fmt.Sprintf("s%03d", j), func(context.Context, *task.Run) (bool, error) {
			pokes.Add(1)
			return met.Load(), nil
		}, task.PokeInterval(time.Hour)))
	}
	if err := d.Validate(); err != nil {
		tb.Fatal(err)
	}
	st, err := store.Open(ctx, filepath.Join(tb.TempDir(), "trellis.db"), store.Options{Sync: store.SyncFull})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	clock := schedulertest.NewClock(time.Now())
	for r := range nRuns {
		ld := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(r) * time.Hour)
		if _, err := runs.Create(ctx, st, d, runs.Spec{Type: task.RunManual, LogicalDate: ld}); err != nil {
			tb.Fatal(err)
		}
	}
	n := nRuns * perRun
	count := newStateCount()
	var sched *scheduler.Scheduler
	ex := local.New(local.Config{Report: func(r executor.Report) { sched.Report(r) },
		Logs: func(k executor.Key) io.WriteCloser { return st.TryLog(k.Run, k.TaskID, k.Try) }})
	ob := outbox.New(outbox.Config{Store: st, DAGs: []*dag.DAG{d}})
	sched, err = scheduler.New(scheduler.Config{Store: st, DAGs: []*dag.DAG{d}, Local: ex, Clock: clock, Cron: true,
		OutboxWritten: ob.Wake, Observe: count.observe})
	if err != nil {
		tb.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 2)
	began := time.Now()
	go func() { done <- sched.Run(runCtx) }()
	go func() { done <- ob.Run(runCtx) }()
	defer func() {
		stop()
		for range 2 {
			if err := <-done; err != nil {
				tb.Error(err)
			}
		}
		shut, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := ex.Shutdown(shut); err != nil {
			tb.Error(err)
		}
	}()

	var f sensorFigures
	f.Sensors = n
	deferred := func(k int) func(map[task.State]int, map[task.RunState]int) bool {
		return func(t map[task.State]int, _ map[task.RunState]int) bool { return t[task.StateDeferred] >= k }
	}
	count.wait(tb, "every sensor deferred after its first poke", deferred(n))
	f.FirstPokes = time.Since(began)

	f.RSSQuiet = procStatus(tb, "VmRSS")
	if quiet > 0 {
		p0, cpu0, wall0 := pokes.Load(), cpuTime(), time.Now()
		time.Sleep(quiet) // the measurement window itself: nothing is awaited
		f.QuietCPU, f.Quiet = cpuTime()-cpu0, time.Since(wall0)
		if p := pokes.Load(); p != p0 {
			tb.Fatalf("%d pokes in the quiet window, want none", p-p0)
		}
		f.RSSQuietEnd = procStatus(tb, "VmRSS")
	}

	commits0 := st.Stats().Batches
	t0 := time.Now()
	clock.Advance(time.Hour)
	count.wait(tb, "every sensor deferred again after its second poke", deferred(2*n))
	f.AllDue = time.Since(t0)
	f.Commits = st.Stats().Batches - commits0

	met.Store(true)
	t0 = time.Now()
	clock.Advance(time.Hour)
	count.wait(tb, "every sensor succeeded, every run finished", func(t map[task.State]int, r map[task.RunState]int) bool {
		return t[task.StateSuccess] >= n && r[task.RunSuccess] >= nRuns
	})
	f.Succeed = time.Since(t0)
	f.HWM = procStatus(tb, "VmHWM")
	if got := pokes.Load(); got != int64(3*n) {
		tb.Errorf("%d pokes, want %d (three per sensor)", got, 3*n)
	}
	return f
}

// BenchmarkSensors10000 is the sensors requirement: 10,000 sensors deferred
// at once across runs (100 runs of a DAG of 100 sensors): runner RSS at most
// 150 MB and at most 5% of one core between pokes (10 s of wall time with
// none due); when they all come due together, at least 1,000 pokes/s.
func BenchmarkSensors10000(b *testing.B) {
	for range b.N {
		f := sensorScenario(b, 100, 100, 10*time.Second)
		b.Log(f)
		b.ReportMetric(mb(f.RSSQuiet), "MB-RSS-deferred")
		b.ReportMetric(mb(f.HWM), "MB-peak-RSS")
		b.ReportMetric(100*f.cpuShare(), "%core-between-pokes")
		b.ReportMetric(float64(f.Sensors)/f.AllDue.Seconds(), "pokes/s-all-due")
		b.ReportMetric(float64(f.Sensors)/f.Succeed.Seconds(), "pokes/s-all-met")
		if f.HWM > 150e6 || f.cpuShare() > 0.05 || float64(f.Sensors)/f.AllDue.Seconds() < 1000 {
			b.Errorf("a ceiling is missed (peak RSS ≤ 150 MB, ≤ 5%% of a core between pokes, ≥ 1,000 pokes/s): %s", f)
		}
	}
}

// TestSensorScenarioSmall runs the sensors scenario small (no quiet window),
// so that the benchmark's code is checked by the ordinary test run.
func TestSensorScenarioSmall(t *testing.T) {
	t.Parallel()
	f := sensorScenario(t, 4, 10, 0)
	if f.AllDue <= 0 || f.Succeed <= 0 || f.RSSQuiet <= 0 {
		t.Errorf("figures %+v", f)
	}
}
