package bench

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/executor"
	"github.com/trellisdag/trellis/executor/local"
	"github.com/trellisdag/trellis/internal/store"
	"github.com/trellisdag/trellis/operators"
	"github.com/trellisdag/trellis/scheduler"
	"github.com/trellisdag/trellis/task"
)

// Result is what one scenario measured.
type Result struct {
	Scenario    string
	Tasks       int
	Parallelism int
	Wall        time.Duration // run created to run finished
	HandoffP50  time.Duration // chain only: upstream returned to downstream started
	HandoffP99  time.Duration
	HandoffMax  time.Duration
	Store       store.Stats // commits made during the run
}

// TasksPerSecond is Tasks / Wall.
func (r Result) TasksPerSecond() float64 { return float64(r.Tasks) / r.Wall.Seconds() }

func (r Result) String() string {
	s := fmt.Sprintf("%s: %d tasks, parallelism %d, %s wall, %.0f tasks/s", r.Scenario, r.Tasks, r.Parallelism,
		r.Wall.Round(time.Millisecond), r.TasksPerSecond())
	if r.HandoffP50 > 0 {
		s += fmt.Sprintf(", hand-off p50 %s p99 %s max %s", r.HandoffP50, r.HandoffP99, r.HandoffMax)
	}
	if r.Store.Batches > 0 {
		s += fmt.Sprintf("; %d commits of %.1f changes on average, %s committing, %d log commits",
			r.Store.Batches, float64(r.Store.Changes)/float64(r.Store.Batches), r.Store.CommitTime.Round(time.Millisecond), r.Store.LogCommits)
	}
	return s
}

// DB is the store a scenario runs on.
type DB struct {
	// Path is an empty PostgreSQL schema's DSN (postgres://...), or empty for a
	// new SQLite file in the scenario's directory.
	Path string
	// Sync is the store's durability.
	Sync store.Sync
}

// run executes one run of d to its end on a fresh database: db's, or a SQLite
// file in dir.
func run(ctx context.Context, dir string, db DB, d *dag.DAG, parallelism int, opts ...func(*scheduler.Config)) (time.Duration, store.Stats, error) {
	if err := d.Validate(); err != nil {
		return 0, store.Stats{}, err
	}
	path := db.Path
	if path == "" {
		path = filepath.Join(dir, "bench.db")
	}
	st, err := store.Open(ctx, path, store.Options{Sync: db.Sync})
	if err != nil {
		return 0, store.Stats{}, err
	}
	defer st.Close()
	var sched *scheduler.Scheduler
	ex := local.New(local.Config{
		Report: func(r executor.Report) { sched.Report(r) },
		Logs:   func(k executor.Key) io.WriteCloser { return st.TryLog(k.Run, k.TaskID, k.Try) },
	})
	cfg := scheduler.Config{Store: st, DAGs: []*dag.DAG{d}, Local: ex, Parallelism: parallelism,
		ExitWhenIdle: true, PollInterval: -1}
	for _, o := range opts {
		o(&cfg)
	}
	sched, err = scheduler.New(cfg)
	if err != nil {
		return 0, store.Stats{}, err
	}
	begin := time.Now()
	seeds := make([]store.TaskSeed, 0, len(d.Tasks()))
	for _, t := range d.Tasks() {
		seeds = append(seeds, store.TaskSeed{TaskID: t.ID(), MaxTries: 1})
	}
	ld := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	r, err := st.CreateRun(ctx, store.Run{DAGID: d.ID(), RunID: "bench", Type: task.RunManual, State: task.RunQueued,
		LogicalDate: ld, IntervalStart: ld, IntervalEnd: ld}, seeds)
	if err != nil {
		return 0, store.Stats{}, err
	}
	if err := sched.Run(ctx); err != nil {
		return 0, store.Stats{}, err
	}
	wall := time.Since(begin)
	if err := ex.Shutdown(ctx); err != nil {
		return 0, store.Stats{}, err
	}
	got, err := st.RunByID(ctx, r.ID)
	if err != nil {
		return 0, store.Stats{}, err
	}
	if got.State != task.RunSuccess {
		return 0, store.Stats{}, fmt.Errorf("bench run ended %s", got.State)
	}
	return wall, st.Stats(), nil
}

// Chain runs n no-op Go tasks one after the other and measures each hand-off:
// from the moment a task's function returned to the moment its downstream task's
// function started. Every hand-off includes the commit of the upstream's success.
func Chain(ctx context.Context, dir string, db DB, n int) (Result, error) {
	starts := make([]time.Time, n)
	ends := make([]time.Time, n)
	d := dag.New("chain", dag.MaxActiveTasks(1))
	var prev task.Task
	for i := 0; i < n; i++ {
		i := i
		t := task.Go(fmt.Sprintf("t%04d", i), func(ctx context.Context, r *task.Run) (struct{}, error) {
			starts[i] = time.Now()
			ends[i] = time.Now()
			return struct{}{}, nil
		})
		d.Add(t)
		if prev != nil {
			prev.Then(t)
		}
		prev = t
	}
	wall, stats, err := run(ctx, dir, db, d, 1)
	if err != nil {
		return Result{}, err
	}
	hand := make([]time.Duration, 0, n-1)
	for i := 1; i < n; i++ {
		hand = append(hand, starts[i].Sub(ends[i-1]))
	}
	slices.Sort(hand)
	return Result{Scenario: "chain", Tasks: n, Parallelism: 1, Wall: wall, Store: stats,
		HandoffP50: hand[len(hand)/2], HandoffP99: hand[len(hand)*99/100], HandoffMax: hand[len(hand)-1]}, nil
}

// FanOut runs n independent no-op Go tasks at the given parallelism.
func FanOut(ctx context.Context, dir string, db DB, n, parallelism int) (Result, error) {
	d := dag.New("fanout", dag.MaxActiveTasks(parallelism))
	var mu sync.Mutex
	ran := 0
	for i := 0; i < n; i++ {
		d.Add(task.Go(fmt.Sprintf("t%05d", i), func(ctx context.Context, r *task.Run) (struct{}, error) {
			mu.Lock()
			ran++
			mu.Unlock()
			return struct{}{}, nil
		}))
	}
	wall, stats, err := run(ctx, dir, db, d, parallelism)
	if err != nil {
		return Result{}, err
	}
	if ran != n {
		return Result{}, fmt.Errorf("fan-out ran %d of %d tasks", ran, n)
	}
	return Result{Scenario: "fanout", Tasks: n, Parallelism: parallelism, Wall: wall, Store: stats}, nil
}

// Mapped runs one Go task mapped over a list of n elements (n no-op mapped
// instances), between the task that returns the list and one that reads
// every instance's result, at the given parallelism.
func Mapped(ctx context.Context, dir string, db DB, n, parallelism int) (Result, error) {
	d := dag.New("mapped", dag.MaxActiveTasks(parallelism))
	src := task.Go("src", func(context.Context, *task.Run) ([]int, error) {
		xs := make([]int, n)
		for i := range xs {
			xs[i] = i
		}
		return xs, nil
	})
	each := task.Map("each", src, func(_ context.Context, _ *task.Run, x int) (int, error) { return x, nil })
	var got int
	reduce := task.Go("reduce", func(_ context.Context, r *task.Run) (int, error) {
		xs, err := task.Output(r, each)
		got = len(xs)
		return len(xs), err
	})
	each.Then(reduce)
	d.Add(src, each, reduce)
	wall, stats, err := run(ctx, dir, db, d, parallelism, func(c *scheduler.Config) { c.MaxMapLength = n })
	if err != nil {
		return Result{}, err
	}
	if got != n {
		return Result{}, fmt.Errorf("mapped: the reduce read %d of %d results", got, n)
	}
	return Result{Scenario: "mapped", Tasks: n + 2, Parallelism: parallelism, Wall: wall, Store: stats}, nil
}

// Bash runs n independent Bash tasks running `true` at the given parallelism.
func Bash(ctx context.Context, dir string, db DB, n, parallelism int) (Result, error) {
	d := dag.New("bash", dag.MaxActiveTasks(parallelism))
	for i := 0; i < n; i++ {
		d.Add(operators.BashWith(fmt.Sprintf("t%04d", i), operators.BashSpec{Command: "true", Dir: dir}))
	}
	wall, stats, err := run(ctx, dir, db, d, parallelism)
	if err != nil {
		return Result{}, err
	}
	return Result{Scenario: "bash", Tasks: n, Parallelism: parallelism, Wall: wall, Store: stats}, nil
}
