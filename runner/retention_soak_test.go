package runner

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
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

// The retention soak: minutely runs of a three-task DAG go through the real
// scheduler, local executor and store (a SQLite file, synchronous=FULL) on a
// fake clock, one simulated hour at a time; beside them, at every simulated
// hour, the clean of serve --retention (retention.clean, with the fake clock
// as its now) deletes what is older than the retention, as serve's hourly
// ticker does.

// soakConfig is one soak.
type soakConfig struct {
	hours       int           // simulated hours; 60 runs and one clean each
	retention   time.Duration // serve --retention
	sampleEvery int           // hours between two measures of the database
	logBytes    int           // log written by every try
}

// soakSample is the database after a simulated hour's runs and clean.
type soakSample struct {
	hour int
	runs int // runs in the database
	size dbSize
}

// soakHour is what a simulated hour took.
type soakHour struct {
	// wall is how long the hour's 60 runs took, from the clock's move to the
	// last success, the clean running beside them.
	wall time.Duration
	// maxGap is the longest the scheduler went without an event (a state
	// change it committed) in that time: how long it stalled at most.
	maxGap  time.Duration
	deletes []time.Duration // every DeleteRun of the hour's clean
	clean   time.Duration   // the hour's clean
}

// soakResult is what a soak measured.
type soakResult struct {
	samples []soakSample
	hours   []soakHour
	deleted int
	wall    time.Duration
}

// dbSize is the size of a database.
type dbSize struct {
	file int64 // bytes of the database file
	wal  int64 // bytes of its write-ahead log
	// live is the bytes of the pages in use: (page_count - freelist_count) *
	// page_size, as of the last commit (WAL included).
	live int64
}

// measureDB reads the size of the database at path through db, a read-only
// connection of its own.
func measureDB(ctx context.Context, db *sql.DB, path string) (dbSize, error) {
	var s dbSize
	fi, err := os.Stat(path)
	if err != nil {
		return s, fmt.Errorf("measure the database: %w", err)
	}
	s.file = fi.Size()
	if fi, err := os.Stat(path + "-wal"); err == nil {
		s.wal = fi.Size()
	}
	var pages, free, pageSize int64
	for _, q := range []struct {
		pragma string
		v      *int64
	}{{"page_count", &pages}, {"freelist_count", &free}, {"page_size", &pageSize}} {
		if err := db.QueryRowContext(ctx, "PRAGMA "+q.pragma).Scan(q.v); err != nil {
			return s, fmt.Errorf("measure the database: PRAGMA %s: %w", q.pragma, err)
		}
	}
	s.live = (pages - free) * pageSize
	return s, nil
}

// soakDAG is a minutely DAG of three chained tasks starting at start; each try
// writes logBytes of log and returns a small result.
func soakDAG(start time.Time, logBytes int) *dag.DAG {
	d := dag.New("soak", dag.Schedule("* * * * *"), dag.StartDate(start), dag.Catchup(true),
		dag.MaxActiveRuns(120), dag.DefaultRetries(0, 0))
	type batch struct {
		Rows     int    `json:"rows"`
		Checksum string `json:"checksum"`
	}
	logLines := func(r *task.Run, step string) error {
		line := fmt.Sprintf("%s %s: row %%05d of the batch, all fields valid, nothing to report\n",
			r.LogicalDate().UTC().Format(time.RFC3339), step)
		for n := 0; n < logBytes; {
			k, err := fmt.Fprintf(r.Output(), line, n)
			if err != nil {
				return fmt.Errorf("%s: write the log: %w", step, err)
			}
			n += k
		}
		return nil
	}
	extract := task.Go("extract", func(_ context.Context, r *task.Run) (batch, error) {
		return batch{Rows: 1000, Checksum: r.LogicalDate().UTC().Format("150405")}, logLines(r, "extract")
	})
	transform := task.Go("transform", func(_ context.Context, r *task.Run) (batch, error) {
		in, err := task.Output(r, extract)
		if err != nil {
			return batch{}, err
		}
		return batch{Rows: in.Rows - 3, Checksum: in.Checksum + "t"}, logLines(r, "transform")
	})
	load := task.Go("load", func(_ context.Context, r *task.Run) (int, error) {
		in, err := task.Output(r, transform)
		if err != nil {
			return 0, err
		}
		return in.Rows, logLines(r, "load")
	})
	d.Add(extract, transform, load)
	extract.Then(transform).Then(load)
	return d
}

// runSoak runs a soak and checks, after every simulated hour, that the hour's
// 60 runs succeeded and that the database holds exactly the runs younger than
// the retention.
func runSoak(tb testing.TB, cfg soakConfig) soakResult {
	tb.Helper()
	ctx := context.Background()
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	path := filepath.Join(tb.TempDir(), "soak.db")
	st, err := store.Open(ctx, path, store.Options{}) // synchronous=FULL, serve's default
	if err != nil {
		tb.Fatal(err)
	}
	defer st.Close()
	d := soakDAG(start, cfg.logBytes)
	r := New(Config{Stdout: io.Discard, Stderr: io.Discard, Getenv: func(string) string { return "" }}, d)
	if err := r.syncDAGs(ctx, st, false); err != nil {
		tb.Fatal(err)
	}
	ro, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		tb.Fatal(err)
	}
	defer ro.Close()

	clock := schedulertest.NewClock(start)
	type stamped struct {
		scheduler.Event
		at time.Time // when the scheduler sent it, after its commit
	}
	events := make(chan stamped, 1<<16)
	var sched *scheduler.Scheduler
	ex := local.New(local.Config{Report: func(rep executor.Report) { sched.Report(rep) },
		Logs: func(k executor.Key) io.WriteCloser { return st.TryLog(k.Run, k.TaskID, k.Try) }})
	sched, err = scheduler.New(scheduler.Config{Store: st, DAGs: []*dag.DAG{d}, Local: ex, Cron: true, Clock: clock,
		PollInterval: -1, Parallelism: 64, Observe: func(ev scheduler.Event) { events <- stamped{ev, time.Now()} }})
	if err != nil {
		tb.Fatal(err)
	}
	schedCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- sched.Run(schedCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			tb.Errorf("scheduler: %v", err)
		}
	}()

	var deletes []time.Duration // of the running clean; read once it has ended
	rt := &retention{st: st, age: cfg.retention, now: clock.Now, log: slog.New(slog.DiscardHandler),
		timed: func(d time.Duration) { deletes = append(deletes, d) }}
	type cleaned struct {
		s   cleanStats
		err error
	}
	var res soakResult
	began := time.Now()
	kept := int(cfg.retention / time.Minute) // runs younger than the retention, once there are that many
	for h := 1; h <= cfg.hours; h++ {
		hourStart := time.Now()
		clock.Set(start.Add(time.Duration(h) * time.Hour)) // the hour's 60 runs are due
		clean := make(chan cleaned, 1)
		deletes = nil
		go func() { // as serve's ticker does, beside the scheduler
			s, err := rt.clean(ctx)
			clean <- cleaned{s, err}
		}()
		bound := time.After(2 * time.Minute)
		hour := soakHour{}
		last := hourStart
		for ok := 0; ok < 60; {
			select {
			case ev := <-events:
				hour.maxGap = max(hour.maxGap, ev.at.Sub(last))
				last = ev.at
				if ev.TaskID == "" && ev.RunState == task.RunSuccess {
					ok++
				}
				if ev.TaskID == "" && ev.RunState == task.RunFailed || ev.TaskID != "" && ev.State == task.StateFailed {
					tb.Fatalf("hour %d: run %s failed: %+v", h, ev.RunID, ev)
				}
			case err := <-done:
				tb.Fatalf("hour %d: the scheduler stopped: %v", h, err)
			case <-bound:
				tb.Fatalf("hour %d: %d of 60 runs succeeded in 2 min", h, ok)
			}
		}
		hour.wall = time.Since(hourStart)
		var c cleaned
		select {
		case c = <-clean:
		case <-bound:
			tb.Fatalf("hour %d: the clean did not end in 2 min", h)
		}
		if c.err != nil {
			tb.Fatalf("hour %d: %v", h, c.err)
		}
		hour.deletes, hour.clean = deletes, c.s.took
		res.hours = append(res.hours, hour)
		res.deleted += c.s.deleted
		n, err := st.CountRuns(ctx, store.RunFilter{DAGID: "soak"})
		if err != nil {
			tb.Fatal(err)
		}
		if want := min(60*h, kept); n != want {
			tb.Fatalf("hour %d: %d runs in the database after the clean before %s, want %d (those of the last %s)",
				h, n, c.s.before.Format(time.RFC3339), want, cfg.retention)
		}
		if h%cfg.sampleEvery == 0 {
			size, err := measureDB(ctx, ro, path)
			if err != nil {
				tb.Fatal(err)
			}
			res.samples = append(res.samples, soakSample{hour: h, runs: n, size: size})
		}
	}
	res.wall = time.Since(began)
	if want := 60*cfg.hours - min(60*cfg.hours, kept); res.deleted != want {
		tb.Errorf("the cleans deleted %d runs, want %d", res.deleted, want)
	}
	return res
}

// sampleAt returns the sample of hour h.
func (r soakResult) sampleAt(tb testing.TB, h int) soakSample {
	tb.Helper()
	for _, s := range r.samples {
		if s.hour == h {
			return s
		}
	}
	tb.Fatalf("no sample at hour %d", h)
	return soakSample{}
}

// checkBounded fails unless the database at hour to is at most 1.2 times its
// size at hour from (on disk: the file and its WAL; and the pages in use), and the pages in use at from
// hold at least the logs of the runs kept.
func (r soakResult) checkBounded(tb testing.TB, from, to, runs, logBytes int) {
	tb.Helper()
	a, b := r.sampleAt(tb, from).size, r.sampleAt(tb, to).size
	if float64(b.file+b.wal) > 1.2*float64(a.file+a.wal) {
		tb.Errorf("database and WAL files at hour %d: %d bytes, more than 1.2 × %d at hour %d", to, b.file+b.wal, a.file+a.wal, from)
	}
	if float64(b.live) > 1.2*float64(a.live) {
		tb.Errorf("pages in use at hour %d: %d bytes, more than 1.2 × %d at hour %d", to, b.live, a.live, from)
	}
	if logs := int64(runs * 3 * logBytes); a.live < logs {
		tb.Errorf("pages in use at hour %d: %d bytes, less than the %d bytes of log of the %d runs kept: the logs were not stored", from, a.live, logs, runs)
	}
}

// TestRetentionFakeClock is the soak, small: 3 simulated hours of minutely
// runs with a retention of one hour: the database holds the last hour's 60
// runs, and does not grow from the second hour (the WAL's first checkpoint) to
// the third.
func TestRetentionFakeClock(t *testing.T) {
	t.Parallel()
	cfg := soakConfig{hours: 3, retention: time.Hour, sampleEvery: 1, logBytes: 4 << 10}
	res := runSoak(t, cfg)
	t.Log(res.report())
	res.checkBounded(t, 2, 3, 60, cfg.logBytes) // at hour 1, nothing was checkpointed yet
}

// BenchmarkRetentionSoak is the retention soak of docs/benchmarks.md: a
// simulated month (30 days, 43,200 minutely runs of three tasks, 4 KiB of log
// per try) with a week of retention. It fails unless the database at day 30 is
// at most 1.2 times its size at day 8. Run it once:
//
//	go test -run XXX -bench RetentionSoak -benchtime 1x ./runner
func BenchmarkRetentionSoak(b *testing.B) {
	cfg := soakConfig{hours: 30 * 24, retention: 7 * 24 * time.Hour, sampleEvery: 24, logBytes: 4 << 10}
	for range b.N {
		res := runSoak(b, cfg)
		b.Logf("%s", res.report())
		res.checkBounded(b, 8*24, 30*24, 7*24*60, cfg.logBytes)
		d8, d30 := res.sampleAt(b, 8*24).size, res.sampleAt(b, 30*24).size
		b.ReportMetric(float64(d8.file)/1e6, "MB-day8")
		b.ReportMetric(float64(d30.file)/1e6, "MB-day30")
		var deletes []time.Duration
		for _, h := range res.hours {
			deletes = append(deletes, h.deletes...)
		}
		b.ReportMetric(float64(quantile(deletes, 0.99).Microseconds())/1e3, "ms-p99-delete")
		b.ReportMetric(res.wall.Seconds(), "s-total")
	}
}

// report is the soak's figures: a line per sample, then per week how long a
// simulated hour's runs took, how long the scheduler went without an event,
// and how long a DeleteRun of the cleans beside it took.
func (r soakResult) report() string {
	var w strings.Builder
	fmt.Fprintf(&w, "\nhour   day   runs   file MB  WAL MB  in use MB\n")
	for _, s := range r.samples {
		fmt.Fprintf(&w, "%4d %5.1f %6d %9.1f %7.1f %10.1f\n", s.hour, float64(s.hour)/24, s.runs,
			float64(s.size.file)/1e6, float64(s.size.wal)/1e6, float64(s.size.live)/1e6)
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1e3) }
	fmt.Fprintf(&w, "deleted %d runs; total %v\n", r.deleted, r.wall.Round(time.Second))
	fmt.Fprintf(&w, "hours   | hour's runs: mean, max | scheduler's longest gap: p50 of hours, max | longest clean | DeleteRun: p50, p99, max\n")
	for wk := 0; wk*7*24 < len(r.hours); wk++ {
		hours := r.hours[wk*7*24 : min(len(r.hours), (wk+1)*7*24)]
		var sum, longest, clean time.Duration
		var gaps, deletes []time.Duration
		for _, h := range hours {
			sum += h.wall
			longest = max(longest, h.wall)
			clean = max(clean, h.clean)
			gaps = append(gaps, h.maxGap)
			deletes = append(deletes, h.deletes...)
		}
		fmt.Fprintf(&w, "%3d-%-3d | %s, %s | %s, %s | %s | %s, %s, %s\n", wk*7*24+1, wk*7*24+len(hours),
			ms(sum/time.Duration(len(hours))), ms(longest), ms(quantile(gaps, 0.5)), ms(quantile(gaps, 1)),
			ms(clean), ms(quantile(deletes, 0.5)), ms(quantile(deletes, 0.99)), ms(quantile(deletes, 1)))
	}
	return w.String()
}

// quantile returns the q-quantile of ds (0 when empty); it sorts ds.
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[min(len(ds)-1, int(q*float64(len(ds))))]
}
