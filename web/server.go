package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/storage"
	"github.com/trellisdag/trellis/task"
)

// Config configures a Server. Store and DAGs are required.
type Config struct {
	// Store is the open database the scheduler uses.
	Store Store
	// DAGs are the DAGs of this binary.
	DAGs []*dag.DAG
	// Pools are the pools the binary declares, with their sizes
	// (runner.Config.Pools); the default pool always exists.
	Pools map[string]int
	// Wake is called after every action that changes runs, so the scheduler looks
	// at the store at once (scheduler.Scheduler.Wake). Nil: nothing is woken.
	Wake func()
	// Tokens enables access control; nil turns it off, which CheckListen allows
	// only on loopback.
	Tokens *Tokens
	// Logger receives the server's messages (default: discarded).
	Logger *slog.Logger
	// Registerer receives the metrics (default: a new registry of the server's own,
	// served at /metrics).
	Registry *prometheus.Registry
	// PodYAML renders the pod of a try of a pod task (nil: "not available").
	PodYAML func(d *dag.DAG, t task.Task, run storage.Run, ti storage.TaskInstance) ([]byte, error)
	// MaxBodyBytes limits request bodies (default 64 KiB); larger ones are 413.
	MaxBodyBytes int64
	// SessionTTL is how long a UI session lasts (default 12h).
	SessionTTL time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Server serves the API, the UI, metrics and health. Create it with New.
type Server struct {
	cfg     Config
	st      Store
	dags    map[string]*dag.DAG
	order   []*dag.DAG
	log     *slog.Logger
	mux     *http.ServeMux
	routes  []route
	metrics *metrics
	hub     *hub
	cache   *respCache

	ready    atomic.Pointer[error] // nil value: ready
	sessMu   sync.Mutex
	sessions map[string]*session

	openAPIOnce sync.Once
	openAPIDoc  []byte
	openAPIErr  error
}

// New returns a server. Call Close when done, and Observe with every scheduler
// event.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("web: Config.Store is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 64 << 10
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Wake == nil {
		cfg.Wake = func() {}
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	s := &Server{cfg: cfg, st: cfg.Store, dags: map[string]*dag.DAG{}, log: cfg.Logger, sessions: map[string]*session{}}
	for _, d := range cfg.DAGs {
		if _, dup := s.dags[d.ID()]; dup {
			return nil, fmt.Errorf("web: dag %q given twice", d.ID())
		}
		s.dags[d.ID()] = d
		s.order = append(s.order, d)
	}
	m, err := newMetrics(cfg.Registry, cfg.Store, cfg.DAGs)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	s.hub = newHub(m)
	s.cache = newRespCache()
	notReady := errors.New("starting")
	s.ready.Store(&notReady)
	s.routes = s.apiRoutes()
	s.mux = s.buildMux()
	return s, nil
}

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.mux }

// SetReady sets what /readyz reports: nil when the server is ready to serve,
// else why not (shutting down). The API answers 503 while not ready. A
// standby is ready: it serves the UI and the API while it waits to schedule.
func (s *Server) SetReady(err error) {
	s.ready.Store(&err)
	if err != nil {
		s.SetActive(false)
	}
}

// SetActive sets whether this process is the active scheduler
// (trellis_scheduler_active on /metrics: 1 for the active replica, 0 for a
// standby).
func (s *Server) SetActive(active bool) {
	if active {
		s.metrics.leader.Set(1)
	} else {
		s.metrics.leader.Set(0)
	}
}

func (s *Server) readyErr() error {
	if p := s.ready.Load(); p != nil {
		return *p
	}
	return nil
}

// Close ends the event streams (so that http.Server.Shutdown does not wait for
// them) and stops the event goroutine.
func (s *Server) Close() { s.hub.close() }

// Registry returns the registry the metrics are in.
func (s *Server) Registry() *prometheus.Registry { return s.cfg.Registry }

// IsLoopback reports whether addr (host:port) listens on loopback only.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// CheckListen refuses to serve on a non-loopback address without tokens.
func CheckListen(addr string, tokens *Tokens) error {
	if tokens == nil && !IsLoopback(addr) {
		return fmt.Errorf("listen %s: access control is required off loopback; give --tokens FILE|DIR (lines: token role [name])", addr)
	}
	return nil
}

func (s *Server) now() time.Time { return s.cfg.Now() }

// Shutdown marks the server not ready; call it before http.Server.Shutdown.
func (s *Server) Shutdown(context.Context) { s.SetReady(errors.New("shutting down")) }
