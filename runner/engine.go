package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/executor"
	kubeexec "github.com/trellisdag/trellis/executor/kubernetes"
	"github.com/trellisdag/trellis/executor/local"
	"github.com/trellisdag/trellis/internal/outbox"
	"github.com/trellisdag/trellis/internal/runs"
	"github.com/trellisdag/trellis/internal/store"
	"github.com/trellisdag/trellis/k8s"
	"github.com/trellisdag/trellis/scheduler"
	"github.com/trellisdag/trellis/task"
)

// openRead opens the database for reading; a missing database reads as empty
// (nil store, nil error).
func openRead(ctx context.Context, path string) (*store.Store, error) {
	st, err := store.Open(ctx, path, store.Options{ReadOnly: true})
	if errors.Is(err, store.ErrNoDatabase) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return st, nil
}

func (r *Runner) openWrite(ctx context.Context, path string) (*store.Store, error) {
	sync, err := r.cfg.Sync.storeSync()
	if err != nil {
		return nil, err
	}
	return store.Open(ctx, path, store.Options{Sync: sync, MaxLogBytes: r.cfg.MaxLogBytes})
}

// openSynced opens the database for writing and records the definition of every
// DAG of this binary in it.
func (r *Runner) openSynced(ctx context.Context, path string) (*store.Store, error) {
	st, err := r.openWrite(ctx, path)
	if err != nil {
		return nil, err
	}
	if err := r.syncDAGs(ctx, st, r.pauseNewDAGs()); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

// syncDAGs records the definition of every DAG of this binary; a DAG the
// database has never seen starts paused when pauseNew is set.
func (r *Runner) syncDAGs(ctx context.Context, st *store.Store, pauseNew bool) error {
	for _, d := range r.dags {
		b, err := json.Marshal(d.Snapshot())
		if err != nil {
			return fmt.Errorf("dag %q: %w", d.ID(), err)
		}
		if err := st.PutDAG(ctx, d.ID(), b, pauseNew); err != nil {
			return err
		}
		if err := st.PutDAGVersion(ctx, d.ID(), d.Version(), b); err != nil {
			return err
		}
		// A DAG scheduled on assets consumes the events that come after it
		// is first seen; registered before anything is served, so that an
		// event posted at once is not taken for an older one.
		if uris, _ := d.AssetSchedule(); len(uris) > 0 {
			if err := st.RegisterAssetConsumer(ctx, d.ID(), uris); err != nil {
				return err
			}
		}
	}
	return nil
}

// engine is a scheduler wired to a store and executors.
type engine struct {
	st     *store.Store
	sched  *scheduler.Scheduler
	local  *local.Executor
	kube   *kubeexec.Executor
	outbox *outbox.Worker
}

type engineConfig struct {
	parallelism  int
	observe      func(scheduler.Event)
	runs         func(store.Run) bool
	exitWhenIdle bool
	pollInterval time.Duration
	kube         *kubeOptions // --executor and cluster flags; nil: kubeDefaults
	// noCron: run only the runs given (dags test, trigger --wait, backfill); the
	// default (serve) creates scheduled runs and honours paused DAGs.
	noCron bool
	// maxActiveRuns overrides every DAG's max active runs when positive.
	maxActiveRuns int
	// maxMapLength is the longest list a task may be mapped over (default
	// Config.MaxMapLength).
	maxMapLength int
	// logger receives the scheduler's messages (default: warnings and errors
	// as text on the runner's stderr).
	logger *slog.Logger
}

func (r *Runner) newEngine(st *store.Store, ec engineConfig) (*engine, error) {
	e := &engine{st: st}
	// The executors report to the scheduler, which needs the executors to be
	// built: a report that comes before the scheduler exists waits in reports.
	reports := &reportSink{}
	ko := r.kubeDefaults()
	if ec.kube != nil {
		ko = *ec.kube
	}
	e.local = local.New(local.Config{
		// Tries that call the API server from the runner (sensors) reach the
		// cluster the runner's flags chose.
		Values: k8s.WithCluster(context.Background(), k8s.Cluster{Kubeconfig: ko.kubeconfig, Context: ko.context, Namespace: ko.namespace}),
		// Processes are marked with the database, not the binary: the next
		// deploy's binary (another name, perhaps) finds a crashed one's.
		Instance:     "db-" + dbHash(st.Path()),
		AbandonAfter: r.cfg.AbandonAfter,
		Child:        localChild,
		Isolate:      r.isolate,
		CrashReport:  crashReport(st.Path(), r.cfg.Stderr),
		Report:       reports.Report,
		Logs: func(k executor.Key) io.WriteCloser {
			return st.TryLog(k.Run, k.TaskID, k.Try)
		},
	})
	if ec.parallelism <= 0 {
		ec.parallelism = r.cfg.Parallelism
	}
	if ec.maxMapLength <= 0 {
		ec.maxMapLength = r.cfg.MaxMapLength
	}
	kube, defaultExec, err := r.kubeExecutor(st, ec.kube, reports.Report)
	if err != nil {
		return nil, err
	}
	e.kube = kube
	if ec.logger == nil {
		ec.logger = slog.New(slog.NewTextHandler(r.cfg.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	e.outbox = outbox.New(outbox.Config{Store: st, DAGs: r.dags, Logger: ec.logger, BaseURL: r.baseURL(),
		Timeout: r.cfg.CallbackTimeout, MaxAttempts: r.cfg.CallbackAttempts})
	sched, err := scheduler.New(scheduler.Config{
		Logger: ec.logger, OutboxWritten: e.outbox.Wake,
		Store: st, DAGs: r.dags, Local: e.local, Kubernetes: asExecutor(kube), DefaultExecutor: defaultExec,
		Parallelism: ec.parallelism, Pools: r.cfg.Pools, MaxResultSize: r.cfg.MaxResultSize,
		Observe: ec.observe, Runs: ec.runs, ExitWhenIdle: ec.exitWhenIdle, PollInterval: ec.pollInterval,
		Cron: !ec.noCron, MaxActiveRuns: ec.maxActiveRuns, MaxMapLength: ec.maxMapLength,
	})
	if err != nil {
		return nil, err
	}
	e.sched = sched
	reports.to(sched.Report)
	return e, nil
}

// run schedules until ctx is done (or idle), delivering callbacks meanwhile,
// then stops the local tries. Callbacks due when the scheduler ends (a run
// that ended last) are delivered before it returns, within a bound; what is
// not delivered then is delivered by the next process on this database.
func (e *engine) run(ctx context.Context) error {
	octx, stopOutbox := context.WithCancel(ctx)
	outboxDone := make(chan error, 1)
	go func() { outboxDone <- e.outbox.Run(octx) }()
	err := e.sched.Run(ctx)
	if ctx.Err() == nil {
		e.outbox.Stop() // the work is done: the calls in flight finish (each bounded by its timeout)
	} else {
		stopOutbox()
	}
	oerr := <-outboxDone
	stopOutbox()
	if oerr != nil && err == nil {
		err = fmt.Errorf("deliver callbacks: %w", oerr)
	}
	if ctx.Err() == nil {
		dctx, cancelD := context.WithTimeout(context.Background(), outbox.DefaultTimeout)
		if _, derr := e.outbox.DeliverDue(dctx); derr != nil && err == nil {
			err = fmt.Errorf("deliver callbacks: %w", derr)
		}
		cancelD()
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if serr := e.local.Shutdown(shutdown); serr != nil && err == nil {
		err = fmt.Errorf("stop running tries: %w", serr)
	}
	if kerr := shutdownKube(shutdown, e.kube); kerr != nil && err == nil {
		err = kerr
	}
	return err
}

// createRun creates a queued run with a task instance per task.
func createRun(ctx context.Context, st *store.Store, d *dag.DAG, typ task.RunType, id string, logical time.Time, conf json.RawMessage) (store.Run, error) {
	return runs.Create(ctx, st, d, runs.Spec{Type: typ, RunID: id, LogicalDate: logical, Conf: conf})
}

// baseURL is the UI's address for callback links: $TRELLIS_BASE_URL when
// set, else Config.BaseURL.
func (r *Runner) baseURL() string {
	if v := r.cfg.Getenv("TRELLIS_BASE_URL"); v != "" {
		return v
	}
	return r.cfg.BaseURL
}

// pauseNewDAGs is whether DAGs new to the database start paused:
// $TRELLIS_PAUSE_NEW_DAGS (true or false) when set, else Config.PauseNewDAGs.
func (r *Runner) pauseNewDAGs() bool {
	if v, err := strconv.ParseBool(r.cfg.Getenv("TRELLIS_PAUSE_NEW_DAGS")); err == nil {
		return v
	}
	return r.cfg.PauseNewDAGs
}

// reportSink hands executor reports to the scheduler once it exists, and
// keeps those that come before.
type reportSink struct {
	mu      sync.Mutex
	sched   executor.ReportFunc // the scheduler's Report; nil until set
	pending []executor.Report
}

// Report forwards r, or keeps it until the scheduler is set.
func (k *reportSink) Report(r executor.Report) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.sched == nil {
		k.pending = append(k.pending, r)
		return
	}
	k.sched(r)
}

// to sets the scheduler and hands it the reports kept so far, in order and
// before any later one (Scheduler.Report does not block).
func (k *reportSink) to(s executor.ReportFunc) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, r := range k.pending {
		s(r)
	}
	k.sched, k.pending = s, nil
}
