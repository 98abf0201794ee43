package web

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/scheduler"
	"github.com/trellisdag/trellis/storage"
	"github.com/trellisdag/trellis/task"
)

// metrics are the server's Prometheus metrics. Gauges of runs and tries by state
// are read from the store at scrape time; latencies come from scheduler events.
type metrics struct {
	reg *prometheus.Registry
	st  Store

	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	errors        *prometheus.CounterVec
	taskChanges   *prometheus.CounterVec
	runChanges    *prometheus.CounterVec
	tryQueued     *prometheus.HistogramVec
	handoff       *prometheus.HistogramVec
	runQueued     *prometheus.HistogramVec
	schedDelay    *prometheus.HistogramVec
	leader        prometheus.Gauge
	sseClients    prometheus.Gauge
	droppedEvents prometheus.Counter

	// Owned by the hub's goroutine.
	dags      map[string]*dag.DAG
	ups       map[string]map[string][]string // dag -> task -> direct upstream ids
	queuedAt  map[tryKey]time.Time
	succeeded map[string]map[string]time.Time // dag+run -> task -> success time
}

type tryKey struct {
	dag, run, task string
	try            int
}

var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}

func newMetrics(reg *prometheus.Registry, st Store, dags []*dag.DAG) (*metrics, error) {
	m := &metrics{reg: reg, st: st, dags: map[string]*dag.DAG{}, ups: map[string]map[string][]string{},
		queuedAt: map[tryKey]time.Time{}, succeeded: map[string]map[string]time.Time{}}
	for _, d := range dags {
		m.dags[d.ID()] = d
		up := map[string][]string{}
		for _, t := range d.Tasks() {
			for _, u := range task.Upstream(t) {
				up[t.ID()] = append(up[t.ID()], u.ID())
			}
		}
		m.ups[d.ID()] = up
	}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "trellis_api_requests_total",
		Help: "API requests by operation and HTTP status."}, []string{"op", "code"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "trellis_api_request_duration_seconds",
		Help: "API request duration by operation.", Buckets: latencyBuckets}, []string{"op"})
	m.errors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "trellis_api_errors_total",
		Help: "API error responses by error code."}, []string{"code"})
	// Labelled by DAG id (never by run or task id: the label set stays as small
	// as the binary's DAGs), so that alerts can name the DAG.
	m.taskChanges = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "trellis_task_state_changes_total",
		Help: "Task instance state changes committed by the scheduler, by DAG and new state."}, []string{"dag", "state"})
	m.runChanges = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "trellis_run_state_changes_total",
		Help: "Run state changes committed by the scheduler, by DAG and new state."}, []string{"dag", "state"})
	m.tryQueued = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "trellis_try_queued_to_running_seconds",
		Help: "Time from a try's queued state to its running state, by DAG.", Buckets: latencyBuckets}, []string{"dag"})
	m.handoff = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "trellis_handoff_seconds",
		Help: "Hand-off latency: from the success of a task's last upstream to the task's queued state, by DAG.", Buckets: latencyBuckets}, []string{"dag"})
	m.runQueued = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "trellis_run_queued_to_running_seconds",
		Help: "Time from a run's creation to its start, by DAG.", Buckets: latencyBuckets}, []string{"dag"})
	m.schedDelay = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "trellis_run_scheduling_delay_seconds",
		Help: "Scheduled runs that were the newest due interval when created (catchup and backfill runs are left out): " +
			"time from when the run was due (end of its data interval) to its creation, by DAG.", Buckets: latencyBuckets}, []string{"dag"})
	m.leader = prometheus.NewGauge(prometheus.GaugeOpts{Name: "trellis_scheduler_active",
		Help: "1 while this process is the active scheduler and serves the API."})
	m.sseClients = prometheus.NewGauge(prometheus.GaugeOpts{Name: "trellis_event_streams",
		Help: "Open Server-Sent Events streams."})
	m.droppedEvents = prometheus.NewCounter(prometheus.CounterOpts{Name: "trellis_events_dropped_total",
		Help: "Scheduler events dropped because the web server's buffer was full."})
	storeStats := func(f func(storage.Stats) float64) func() float64 { return func() float64 { return f(st.Stats()) } }
	cs := []prometheus.Collector{m.requests, m.duration, m.errors, m.taskChanges, m.runChanges, m.tryQueued, m.handoff,
		m.runQueued, m.schedDelay, m.leader, m.sseClients, m.droppedEvents, &stateCollector{st: st},
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "trellis_store_batches_total", Help: "Batches the store committed."},
			storeStats(func(s storage.Stats) float64 { return float64(s.Batches) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "trellis_store_changes_total", Help: "Changes in the committed batches."},
			storeStats(func(s storage.Stats) float64 { return float64(s.Changes) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "trellis_store_log_commits_total", Help: "Transactions that appended log chunks."},
			storeStats(func(s storage.Stats) float64 { return float64(s.LogCommits) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "trellis_store_commit_seconds_total",
			Help: "Time spent committing batches; divide by trellis_store_batches_total for the mean commit latency."},
			storeStats(func(s storage.Stats) float64 { return s.CommitTime.Seconds() })),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) request(op string, status int, d time.Duration) {
	if op == "" {
		op = "unknown"
	}
	m.requests.WithLabelValues(op, strconv.Itoa(status)).Inc()
	if op != "streamEvents" {
		m.duration.WithLabelValues(op).Observe(d.Seconds())
	}
}

func (m *metrics) apiError(code string) { m.errors.WithLabelValues(code).Inc() }

// observe derives latencies from a scheduler event. It runs on the hub's goroutine.
func (m *metrics) observe(e scheduler.Event) {
	runKey := e.DAGID + "\x00" + e.RunID
	if e.TaskID == "" {
		m.runChanges.WithLabelValues(e.DAGID, string(e.RunState)).Inc()
		switch {
		case e.RunState == task.RunRunning:
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			r, err := m.st.Run(ctx, e.DAGID, e.RunID)
			cancel()
			if err == nil && !r.Started.IsZero() {
				m.runQueued.WithLabelValues(e.DAGID).Observe(r.Started.Sub(r.Created).Seconds())
				if r.Type == task.RunScheduled && r.Created.After(r.IntervalEnd) && !m.catchup(r) {
					m.schedDelay.WithLabelValues(e.DAGID).Observe(r.Created.Sub(r.IntervalEnd).Seconds())
				}
			}
		case e.RunState.Finished():
			delete(m.succeeded, runKey)
			for k := range m.queuedAt {
				if k.dag == e.DAGID && k.run == e.RunID {
					delete(m.queuedAt, k)
				}
			}
		}
		return
	}
	m.taskChanges.WithLabelValues(e.DAGID, string(e.State)).Inc()
	k := tryKey{e.DAGID, e.RunID, e.TaskID, e.Try}
	switch e.State {
	case task.StateQueued:
		m.queuedAt[k] = e.At
		if ups := m.ups[e.DAGID][e.TaskID]; len(ups) > 0 {
			var last time.Time
			for _, u := range ups {
				t, ok := m.succeeded[runKey][u]
				if !ok {
					last = time.Time{}
					break
				}
				if t.After(last) {
					last = t
				}
			}
			if !last.IsZero() {
				m.handoff.WithLabelValues(e.DAGID).Observe(e.At.Sub(last).Seconds())
			}
		}
	case task.StateRunning:
		if q, ok := m.queuedAt[k]; ok {
			m.tryQueued.WithLabelValues(e.DAGID).Observe(e.At.Sub(q).Seconds())
			delete(m.queuedAt, k)
		}
	case task.StateSuccess:
		if m.succeeded[runKey] == nil {
			m.succeeded[runKey] = map[string]time.Time{}
		}
		m.succeeded[runKey][e.TaskID] = e.At
		delete(m.queuedAt, k)
	default:
		delete(m.queuedAt, k)
	}
}

// catchup reports whether a scheduled run was created after the interval that
// follows it had ended too: it was made up for (catchup after downtime or a
// start date in the past), so its delay says nothing of the scheduler's.
func (m *metrics) catchup(r storage.Run) bool {
	d := m.dags[r.DAGID]
	if d == nil {
		return false
	}
	next, ok := d.NextDataInterval(&dag.DataInterval{Start: r.IntervalStart, End: r.IntervalEnd}, r.Created)
	return ok && !next.End.After(r.Created) && next.Start.After(r.IntervalStart)
}

// stateCollector reads runs, task instances and tries by state from the store at
// scrape time (at most once a second).
type stateCollector struct {
	st   Store
	mu   sync.Mutex
	at   time.Time
	last storage.StateCounts
	// callbacks: delivered, pending and given up (the outbox).
	callbacks [3]int
}

var (
	descRuns      = prometheus.NewDesc("trellis_runs", "DAG runs by state.", []string{"state"}, nil)
	descTIs       = prometheus.NewDesc("trellis_task_instances", "Task instances by state.", []string{"state"}, nil)
	descTries     = prometheus.NewDesc("trellis_tries", "Tries by state.", []string{"state"}, nil)
	descInFlight  = prometheus.NewDesc("trellis_tries_in_flight", "Tries queued or running (pods in flight for the kubernetes executor).", nil, nil)
	descCallbacks = prometheus.NewDesc("trellis_callbacks", "Callback deliveries in the outbox by state: delivered, pending (waiting or to retry), "+
		"given_up (failed every attempt; the error is logged and kept).", []string{"state"}, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descRuns
	ch <- descTIs
	ch <- descTries
	ch <- descInFlight
	ch <- descCallbacks
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.at) > time.Second {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		counts, err := c.st.CountStates(ctx)
		if err != nil {
			cancel()
			ch <- prometheus.NewInvalidMetric(descRuns, err)
			return
		}
		d, p, g, err := c.st.OutboxStats(ctx)
		cancel()
		if err != nil {
			ch <- prometheus.NewInvalidMetric(descCallbacks, err)
			return
		}
		c.last, c.callbacks, c.at = counts, [3]int{d, p, g}, time.Now()
	}
	for _, s := range []task.RunState{task.RunQueued, task.RunRunning, task.RunSuccess, task.RunFailed} {
		ch <- prometheus.MustNewConstMetric(descRuns, prometheus.GaugeValue, float64(c.last.Runs[s]), string(s))
	}
	for _, s := range task.States {
		ch <- prometheus.MustNewConstMetric(descTIs, prometheus.GaugeValue, float64(c.last.TaskInstances[s]), string(s))
	}
	for _, s := range task.States {
		if n, ok := c.last.Tries[s]; ok || s.Active() || s.Finished() {
			ch <- prometheus.MustNewConstMetric(descTries, prometheus.GaugeValue, float64(n), string(s))
		}
	}
	inFlight := c.last.TaskInstances[task.StateQueued] + c.last.TaskInstances[task.StateRunning]
	ch <- prometheus.MustNewConstMetric(descInFlight, prometheus.GaugeValue, float64(inFlight))
	for i, s := range []string{"delivered", "pending", "given_up"} {
		ch <- prometheus.MustNewConstMetric(descCallbacks, prometheus.GaugeValue, float64(c.callbacks[i]), s)
	}
}

func (s *Server) metricsHandler() http.Handler {
	h := promhttp.HandlerFor(s.cfg.Registry, promhttp.HandlerOpts{ErrorLog: nil})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		securityHeaders(w.Header())
		h.ServeHTTP(w, r)
	})
}
