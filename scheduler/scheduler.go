package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/executor"
	"github.com/trellisdag/trellis/storage"
	"github.com/trellisdag/trellis/task"
)

// Config configures a Scheduler. Store, DAGs and Local are required; every other
// field has a default.
type Config struct {
	// Store holds the state.
	Store Store
	// DAGs are the DAGs this binary knows; runs of other DAGs are left alone.
	DAGs []*dag.DAG
	// Local runs tries of tasks whose executor is local.
	Local executor.Executor
	// Kubernetes runs tries of tasks whose executor is kubernetes, and every
	// PodOperator. Nil: such tries fail with a message that says a cluster is needed.
	Kubernetes executor.Executor
	// DefaultExecutor is the executor of tasks that choose none (default local).
	DefaultExecutor task.ExecutorKind
	// Parallelism limits the tries in flight over all DAGs (default 32).
	Parallelism int
	// Pools sets the slots of named pools; a task of a pool not listed gets
	// DefaultPoolSlots. DefaultPool has DefaultPoolSlots unless listed.
	Pools map[string]int
	// Clock is the source of time (default the wall clock).
	Clock Clock
	// Logger receives the scheduler's own messages (default: discarded).
	Logger *slog.Logger
	// Observe, when set, is called from the scheduling goroutine with every change
	// once it is committed. It must return quickly.
	Observe func(Event)
	// Runs, when set, limits the scheduler to the runs it returns true for.
	Runs func(storage.Run) bool
	// ExitWhenIdle makes Run return once no run is queued or running, or with
	// a *StuckError once runs remain but none can progress.
	ExitWhenIdle bool
	// PollInterval is how often the store is checked for runs created or cleared by
	// other processes (default 1s; negative: never).
	PollInterval time.Duration
	// Cron makes the scheduler create the runs of scheduled DAGs when their data
	// interval ends, and honour paused DAGs (serve). Off, it only runs the runs it
	// is given (dags test, dags trigger --wait, dags backfill).
	Cron bool
	// MaxActiveRuns, when positive, replaces every DAG's max active runs (dags
	// backfill --max-active-runs).
	MaxActiveRuns int
	// MaxLost bounds how often a try may be lost (its process or pod gone before the
	// task's code ran) and relaunched without spending a retry (default 3).
	MaxLost int
	// MaxInterrupted bounds how many tries of a task in a row a crash of the
	// runner may interrupt (executor.Interrupted) and have relaunched without
	// spending a retry (default 2); the next such try fails the task as the
	// likely cause of the crashes.
	MaxInterrupted int
	// OutboxWritten, when set, is called after a commit that wrote outbox
	// entries (callbacks to deliver; see internal/outbox). It must not block.
	OutboxWritten func()
	// MaxPokes bounds the sensor pokes in flight at once (default
	// DefaultMaxPokes); pokes that come due past it wait their turn. Pokes hold
	// no pool or parallelism slot: only a sensor's first poke does.
	MaxPokes int
	// MaxMapLength is the longest list a task may be mapped over (default
	// task.DefaultMaxMapLength, Airflow's max_map_length): a longer result
	// fails the task that returned it, a longer literal list or param fails
	// the mapped task.
	MaxMapLength int
	// MaxResultSize is the largest result, in bytes, a try may return unless its
	// task sets task.MaxResultSize (default DefaultMaxResultSize). A larger
	// result fails the try without retry and is not stored.
	MaxResultSize int64
}

// DefaultPoolSlots is the size of a pool that Config.Pools does not list.
const DefaultPoolSlots = 128

// DefaultMaxPokes is Config.MaxPokes's default.
const DefaultMaxPokes = 256

// DefaultMaxResultSize is Config.MaxResultSize's default: 8 MiB.
const DefaultMaxResultSize = 8 << 20

// Event is one committed change: of a task instance (TaskID set) or of a run.
type Event struct {
	At       time.Time
	DAGID    string
	RunID    string
	TaskID   string // empty for a run event
	Try      int
	State    task.State    // task events
	RunState task.RunState // run events
	Error    string
	// Duration is how long the try ran, for a task that finished.
	Duration time.Duration
}

// Scheduler decides what runs when. One goroutine (Run) owns all scheduling state;
// executors report to it through Report. Every change is committed to the store
// before it is acted on: a task is started only after its queued state is durable,
// and a downstream task only after its upstream's result is.
type Scheduler struct {
	cfg   Config
	st    Store
	plans map[string]*plan
	runs  map[int64]*runState
	order []int64 // run keys in creation order, for admission

	mu     sync.Mutex
	inbox  []executor.Report
	signal chan struct{}
	wake   chan struct{}

	batch   storage.Batch
	touched map[int64]bool
	// applied are the executor reports whose effect is in batch: they are facts
	// about tries and leave only when that batch is committed. When a commit
	// fails its compare-and-swap, they are applied again to the reloaded runs.
	applied []executor.Report
	starts  []startItem
	// expands are the mapped tasks to expand at the next step, once the
	// results they map over are committed (mapping.go).
	expands, readyExpands []startItem
	// pokes counts the sensor pokes in flight; pokeQueue holds the due ones
	// waiting for Config.MaxPokes.
	pokes     int
	pokeQueue []startItem
	// outboxWritten is set when the batch holds outbox entries.
	outboxWritten bool
	// assetsWritten: the batch holds asset events; assetsDirty: events may
	// have arrived since the asset-scheduled DAGs were last looked at.
	assetsWritten, assetsDirty, assetsRegistered bool

	events    []Event
	ready     ready
	timers    timerHeap
	active    int
	poolUsed  map[string]int
	poolSizes map[string]int // set at run time (Store.SetPoolSlots), read at every reload
	dataVer   int64
}

type runState struct {
	rec storage.Run
	// waitPast lists tasks that wait for the same task of the previous run
	// (depends_on_past, wait_for_downstream).
	waitPast []int
	// prevSuccess is the data interval start of the latest earlier successful
	// run, read once (prevLoaded).
	prevSuccess time.Time
	prevLoaded  bool
	checked     int // plan.durable when waitPast was last checked
	plan        *plan
	tis         []tiState
	params      map[string]any
	unfinished  int
	done        []int // slots that finished and whose downstream tasks are not yet evaluated
	// parked are mapped instances that were ready but over their task's
	// MaxActivePerRun, by plan index; a slot of the task freed in this run
	// puts one back in the ready queue.
	parked map[int][]int
	// activeOf counts the tries in flight by plan index (MaxActivePerRun).
	activeOf []int
}

// A run's tis holds one slot per task of its plan, at the task's plan index,
// then one slot per instance of its mapped tasks once they are expanded
// (mapping.go). Functions that take a slot index read the task's plan index
// from the slot (of).

type tiState struct {
	storage.TaskInstance
	// of is the slot's task's plan index; mapIndex is its element's index for
	// a mapped instance, -1 for a task's own slot.
	of, mapIndex int
	// The slot of a mapped task that is expanded is virtual: it has no row,
	// its state is the summary of its instances' states (task.SummaryState,
	// kept from byState), and inst lists its instances' slots by map index.
	// items caches the elements (nil until read).
	expanded bool
	inst     []int
	byState  map[task.State]int
	items    []json.RawMessage
	// expanding: the mapped task is queued for expansion (queueExpand).
	expanding bool
	counts    task.UpstreamCounts
	lost      int
	// interrupted counts the task's latest tries that a crash of the runner
	// interrupted in a row (read from the store when a run is recovered).
	interrupted int
	// poking is true while a deferred sensor's poke is in flight.
	poking bool
}

type startItem struct {
	run  *runState
	task int
	poke bool // a deferred sensor's poke, not a queued try
}

// New returns a scheduler. It checks the configuration; it does not touch the store.
func New(cfg Config) (*Scheduler, error) {
	if cfg.Store == nil || cfg.Local == nil {
		return nil, errors.New("scheduler: Store and Local are required")
	}
	if cfg.Parallelism <= 0 {
		cfg.Parallelism = 32
	}
	if cfg.Clock == nil {
		cfg.Clock = RealClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.MaxLost == 0 {
		cfg.MaxLost = 3
	}
	if cfg.MaxInterrupted == 0 {
		cfg.MaxInterrupted = 2
	}
	if cfg.MaxResultSize <= 0 {
		cfg.MaxResultSize = DefaultMaxResultSize
	}
	if cfg.MaxPokes <= 0 {
		cfg.MaxPokes = DefaultMaxPokes
	}
	if cfg.MaxMapLength <= 0 {
		cfg.MaxMapLength = task.DefaultMaxMapLength
	}
	s := &Scheduler{cfg: cfg, st: cfg.Store, plans: map[string]*plan{}, runs: map[int64]*runState{},
		signal: make(chan struct{}, 1), wake: make(chan struct{}, 1), poolUsed: map[string]int{}, touched: map[int64]bool{}}
	for _, d := range cfg.DAGs {
		if _, dup := s.plans[d.ID()]; dup {
			return nil, fmt.Errorf("scheduler: dag %q given twice", d.ID())
		}
		s.plans[d.ID()] = compile(d)
	}
	return s, nil
}

// Report hands the scheduler an executor's report. It never blocks for long and is
// safe to call from any goroutine.
func (s *Scheduler) Report(r executor.Report) {
	s.mu.Lock()
	s.inbox = append(s.inbox, r)
	s.mu.Unlock()
	select {
	case s.signal <- struct{}{}:
	default:
	}
}

// Wake makes the scheduler look at the store now for runs created or cleared
// outside it (by this process's CLI or API, or another process).
func (s *Scheduler) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run schedules until ctx is done (or, with ExitWhenIdle, until no run is active,
// or a *StuckError when no remaining run can progress).
// It first recovers the runs a previous process left active. It returns an error
// only when the store fails; task failures are state, not errors.
func (s *Scheduler) Run(ctx context.Context) error {
	// Store work is not cut short by shutdown: a batch is committed whole, or not
	// at all when the process dies.
	sctx := context.WithoutCancel(ctx)
	if ctx.Err() != nil {
		return nil
	}
	if err := s.reconcile(sctx, true); err != nil {
		return err
	}
	if err := s.loadCron(sctx); err != nil {
		return err
	}
	var poll <-chan time.Time
	if s.cfg.PollInterval > 0 {
		t := time.NewTicker(s.cfg.PollInterval)
		defer t.Stop()
		poll = t.C
	}
	for {
		if err := s.step(sctx); err != nil {
			return err
		}
		if s.cfg.ExitWhenIdle && len(s.runs) == 0 && s.batch.Len() == 0 {
			return nil
		}
		if s.cfg.ExitWhenIdle {
			if err := s.stuck(); err != nil {
				return err
			}
		}
		var timerC <-chan time.Time
		var timer Timer
		if len(s.timers) > 0 {
			timer = s.cfg.Clock.NewTimer(s.timers[0].at.Sub(s.cfg.Clock.Now()))
			timerC = timer.C()
		}
		select {
		case <-ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			return nil
		case <-s.signal:
			s.handleInbox()
		case <-timerC:
			s.fireTimers()
		case <-s.wake:
			s.assetsDirty = true // the API may have posted an asset event
			if err := s.reconcile(sctx, false); err != nil {
				return err
			}
			if err := s.loadCron(sctx); err != nil {
				return err
			}
		case <-poll:
			if err := s.poll(sctx); err != nil {
				return err
			}
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

func (s *Scheduler) handleInbox() {
	s.mu.Lock()
	in := s.inbox
	s.inbox = nil
	s.mu.Unlock()
	for _, r := range in {
		s.handleReport(r)
	}
	s.applied = append(s.applied, in...)
}

// poll reloads from the store when another connection committed since last time.
func (s *Scheduler) poll(ctx context.Context) error {
	v, err := s.st.DataVersion(ctx)
	if err != nil {
		return fmt.Errorf("scheduler: %w", err)
	}
	if v == s.dataVer {
		return nil
	}
	s.dataVer = v
	s.assetsDirty = true // another process may have posted an asset event
	if err := s.reconcile(ctx, false); err != nil {
		return err
	}
	return s.loadCron(ctx)
}

// step runs stepOnce until no task waiting for its previous run can have been
// released by what the last commit made durable, and until what it decided is
// committed: after a commit conflict the reports are applied again to the
// reloaded runs, and that batch is committed here too (a few times at most;
// then at the next wake-up).
func (s *Scheduler) step(ctx context.Context) error {
	for range 8 {
		if err := s.stepOnce(ctx); err != nil {
			return err
		}
		if s.batch.Len() == 0 && !s.pastPending() && !(s.assetsDirty && s.cfg.Cron) && len(s.readyExpands) == 0 {
			return nil
		}
	}
	select {
	case s.signal <- struct{}{}:
	default:
	}
	return nil
}

// stepOnce creates due scheduled runs, re-evaluates tasks waiting for their
// previous run, admits queued runs, starts ready tasks up to the limits, commits
// the batch, and only then starts the tries and publishes the events.
func (s *Scheduler) stepOnce(ctx context.Context) error {
	if err := s.createDue(ctx); err != nil {
		return err
	}
	if err := s.createAssetRuns(ctx); err != nil {
		return err
	}
	s.recheckPast(ctx)
	s.admit()
	s.runExpands(ctx)
	s.schedule()
	if s.batch.Len() == 0 && len(s.events) == 0 && len(s.starts) == 0 {
		s.applied = s.applied[:0] // reports that changed nothing: none to apply again
		s.readyExpands, s.expands = append(s.readyExpands, s.expands...), s.expands[:0]
		return nil
	}
	if err := s.st.Apply(ctx, &s.batch); err != nil {
		var conflict *storage.ConflictError
		if !errors.As(err, &conflict) {
			return fmt.Errorf("scheduler: commit: %w", err)
		}
		// Someone else changed a row we believed we knew: reload what this batch
		// touched from the store and decide again.
		s.cfg.Logger.Warn("state changed under the scheduler; reloading and applying the executor's reports again",
			"err", err, "reports", len(s.applied))
		s.batch.Reset()
		s.outboxWritten, s.assetsWritten = false, false
		s.events, s.starts = s.events[:0], s.starts[:0]
		s.expands, s.readyExpands = s.expands[:0], nil // the reloaded runs queue theirs again
		for id := range s.touched {
			if rs := s.runs[id]; rs != nil {
				s.unload(rs)
			}
		}
		clear(s.touched)
		if err := s.reconcile(ctx, false); err != nil {
			return err
		}
		// A report about a try the reloaded run still has in flight is applied
		// again; one about a try that someone else ended or cleared meanwhile is
		// ignored by handleReport, as it would have been had it come later.
		for _, r := range s.applied {
			s.handleReport(r)
		}
		return nil // step commits the batch
	}
	s.batch.Reset()
	s.applied = s.applied[:0]
	clear(s.touched)
	// What the expansions queued in this step map over is committed now.
	s.readyExpands, s.expands = append(s.readyExpands, s.expands...), s.expands[:0]
	if s.outboxWritten && s.cfg.OutboxWritten != nil {
		s.cfg.OutboxWritten()
	}
	s.outboxWritten = false
	if s.assetsWritten {
		s.assetsWritten, s.assetsDirty = false, true
	}
	for _, p := range s.plans {
		p.durable = p.finished
	}
	if s.cfg.Observe != nil {
		for _, e := range s.events {
			s.cfg.Observe(e)
		}
	}
	s.events = s.events[:0]
	starts := s.starts
	s.starts = nil
	for _, it := range starts {
		if it.poke {
			s.startPoke(ctx, it.run, it.task)
			continue
		}
		s.start(ctx, it.run, it.task)
	}
	return nil
}

func (s *Scheduler) now() time.Time { return s.cfg.Clock.Now().UTC() }
