package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/internal/store"
	"github.com/trellisdag/trellis/task"
)

// Defaults of Config.
const (
	DefaultTimeout     = 30 * time.Second
	DefaultMaxAttempts = 5
	DefaultBackoff     = 5 * time.Second
	MaxBackoff         = 5 * time.Minute
	DefaultLogTail     = 4 << 10
	DefaultPoll        = time.Second
	DefaultParallel    = 16
	batchSize          = 256
)

// Config configures a Worker. Its zero value, with Store and DAGs set, is
// usable.
type Config struct {
	Store *store.Store
	DAGs  []*dag.DAG
	// Logger receives failed deliveries (default: discarded).
	Logger *slog.Logger
	// Timeout bounds one call of a callback (default 30 s).
	Timeout time.Duration
	// MaxAttempts is how many times an entry is tried before it is given up
	// (default 5); the delay between tries starts at Backoff (default 5 s)
	// and doubles, up to 5 minutes.
	MaxAttempts int
	Backoff     time.Duration
	// BaseURL is the web UI's address as its users reach it (e.g.
	// https://trellis.example.com/); events then link to their try or run.
	BaseURL string
	// LogTail is how many bytes of the end of a try's log an event carries
	// (default 4 KiB).
	LogTail int
	// Poll is how often the worker looks for due entries when not woken
	// (default 1 s).
	Poll time.Duration
	// Parallel bounds the calls in flight at once (default 16).
	Parallel int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Stats counts the deliveries of a Worker since it started.
type Stats struct {
	Delivered, Retried, GivenUp int64
}

// Worker delivers outbox entries. Create it with New, run it with Run.
type Worker struct {
	cfg  Config
	dags map[string]*dag.DAG
	wake chan struct{}
	stop chan struct{}
	once sync.Once

	delivered, retried, givenUp atomic.Int64
}

// New returns a worker.
func New(cfg Config) *Worker {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.LogTail <= 0 {
		cfg.LogTail = DefaultLogTail
	}
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultPoll
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = DefaultParallel
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	w := &Worker{cfg: cfg, dags: map[string]*dag.DAG{}, wake: make(chan struct{}, 1), stop: make(chan struct{})}
	for _, d := range cfg.DAGs {
		w.dags[d.ID()] = d
	}
	return w
}

// Wake makes the worker look for due entries now (the scheduler calls it
// after a commit that wrote some). It never blocks.
func (w *Worker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Stats returns the worker's counts.
func (w *Worker) Stats() Stats {
	return Stats{Delivered: w.delivered.Load(), Retried: w.retried.Load(), GivenUp: w.givenUp.Load()}
}

// Stop makes Run return after the pass in flight, whose calls are not cut
// (a process that ends because its work is done lets them finish; one that is
// told to stop cancels Run's context instead, and what it cut is delivered by
// the next process).
func (w *Worker) Stop() { w.once.Do(func() { close(w.stop) }) }

// Run delivers due entries until ctx is done or Stop is called. It returns
// nil then, or the store's error.
func (w *Worker) Run(ctx context.Context) error {
	t := time.NewTicker(w.cfg.Poll)
	defer t.Stop()
	for {
		if _, err := w.DeliverDue(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-w.stop:
			return nil
		case <-w.wake:
		case <-t.C:
		}
	}
}

// DeliverDue delivers every entry due now (in batches) and returns how many
// it tried; entries that fail are left for their next time.
func (w *Worker) DeliverDue(ctx context.Context) (int, error) {
	total := 0
	for ctx.Err() == nil {
		due, err := w.cfg.Store.DueOutbox(ctx, w.cfg.Now(), batchSize)
		if err != nil {
			return total, err
		}
		if len(due) == 0 {
			return total, nil
		}
		sem := make(chan struct{}, w.cfg.Parallel)
		var wg sync.WaitGroup
		errs := make(chan error, len(due))
		for _, e := range due {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				if err := w.deliver(ctx, e); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			return total, err
		}
		total += len(due)
		if len(due) < batchSize {
			return total, nil
		}
	}
	return total, nil
}

// deliver calls one entry's callback and records the outcome; only the
// store's errors are returned.
func (w *Worker) deliver(ctx context.Context, e store.OutboxEntry) error {
	callErr := w.call(ctx, e)
	now := w.cfg.Now()
	if callErr == nil {
		w.delivered.Add(1)
		return w.cfg.Store.OutboxDone(context.WithoutCancel(ctx), e.ID, now, "", time.Time{}, false)
	}
	if ctx.Err() != nil {
		return nil // stopping: the entry stays due and is delivered by the next process
	}
	msg := oneLine(callErr)
	attempt := e.Attempts + 1
	// A callback this binary does not have will not appear by retrying.
	giveUp := attempt >= w.cfg.MaxAttempts || errors.Is(callErr, ErrNoCallback)
	delay := w.cfg.Backoff
	for i := 1; i < attempt && delay < MaxBackoff; i++ {
		delay *= 2
	}
	delay = min(delay, MaxBackoff)
	if giveUp {
		w.givenUp.Add(1)
		w.cfg.Logger.Error("callback failed; given up", "dag", e.DAGID, "event", e.Kind, "key", e.Key, "attempts", attempt,
			"err", msg, "knob", "outbox MaxAttempts (default "+strconv.Itoa(DefaultMaxAttempts)+")")
	} else {
		w.retried.Add(1)
		w.cfg.Logger.Warn("callback failed; retrying", "dag", e.DAGID, "event", e.Kind, "key", e.Key, "attempt", attempt,
			"retry_in", delay.String(), "err", msg)
	}
	return w.cfg.Store.OutboxDone(context.WithoutCancel(ctx), e.ID, now, msg, now.Add(delay), giveUp)
}

// ErrNoCallback is the error of an entry whose callback this binary no longer
// has (the DAG or task changed since the entry was written).
var ErrNoCallback = errors.New("no such callback in this binary")

// call finds the entry's callback and calls it, bounded by Timeout; a panic
// in the callback is its error.
func (w *Worker) call(ctx context.Context, e store.OutboxEntry) (err error) {
	var ev task.Event
	if err := json.Unmarshal(e.Event, &ev); err != nil {
		return fmt.Errorf("outbox entry %q: decode the event: %w", e.Key, err)
	}
	fn, err := w.callback(ev)
	if err != nil {
		return err
	}
	w.enrich(ctx, e, &ev)
	cctx, cancel := context.WithTimeoutCause(ctx, w.cfg.Timeout,
		fmt.Errorf("callback took longer than %s (outbox Timeout, default %s)", w.cfg.Timeout, DefaultTimeout))
	defer cancel()
	done := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- fmt.Errorf("callback panicked: %v", p)
			}
		}()
		done <- fn(cctx, ev)
	}()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("%s callback of dag %q: %w", ev.Kind, ev.DAGID, err)
		}
		return nil
	case <-cctx.Done():
		return fmt.Errorf("%s callback of dag %q: %w", ev.Kind, ev.DAGID, context.Cause(cctx))
	}
}

// callback finds the callback an event names: its key ends with the
// callback's index among those of its kind ("…#2").
func (w *Worker) callback(ev task.Event) (task.Callback, error) {
	i := strings.LastIndexByte(ev.Key, '#')
	n, err := strconv.Atoi(ev.Key[i+1:])
	if i < 0 || err != nil {
		return nil, fmt.Errorf("event %q: no callback index", ev.Key)
	}
	d, ok := w.dags[ev.DAGID]
	if !ok {
		return nil, fmt.Errorf("dag %q: %w", ev.DAGID, ErrNoCallback)
	}
	var fns []task.Callback
	switch ev.Kind {
	case task.EventTaskSuccess, task.EventTaskRetry, task.EventTaskFailure:
		t, ok := d.Task(ev.TaskID)
		if !ok {
			return nil, fmt.Errorf("dag %q task %q: %w", ev.DAGID, ev.TaskID, ErrNoCallback)
		}
		fns = task.CallbacksOf(t, ev.Kind)
	case task.EventRunSuccess, task.EventRunFailure:
		fns = d.Callbacks(ev.Kind)
	case task.EventDeadlineMissed:
		for _, dl := range d.Deadlines() {
			fns = append(fns, dl.Callback)
		}
	}
	if n < 0 || n >= len(fns) {
		return nil, fmt.Errorf("dag %q: %s callback #%d: %w", ev.DAGID, ev.Kind, n, ErrNoCallback)
	}
	return fns[n], nil
}

// enrich adds what is read at delivery: the log tail and the link to the UI.
func (w *Worker) enrich(ctx context.Context, e store.OutboxEntry, ev *task.Event) {
	if ev.TaskID != "" && ev.Try > 0 && e.Run != 0 {
		if tail, err := w.cfg.Store.LogTail(ctx, e.Run, ev.TaskID, ev.Try, w.cfg.LogTail); err == nil {
			ev.LogTail = string(tail)
		}
	}
	if w.cfg.BaseURL != "" {
		link := strings.TrimRight(w.cfg.BaseURL, "/") + "/#/dags/" + url.PathEscape(ev.DAGID) + "/runs/" + url.PathEscape(ev.RunID)
		if ev.TaskID != "" {
			link += "/tasks/" + url.PathEscape(ev.TaskID)
			if ev.Try > 0 {
				link += "/tries/" + strconv.Itoa(ev.Try)
			}
		}
		ev.URL = link
	}
}

func oneLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " …"
	}
	if len(s) > 1000 {
		s = s[:1000] + "…"
	}
	return s
}
