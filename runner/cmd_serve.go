package runner

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trellisdag/trellis/internal/store"
	"github.com/trellisdag/trellis/scheduler"
	"github.com/trellisdag/trellis/web"
	"github.com/trellisdag/trellis/web/leader"
)

// serveOptions are serve's flags after parsing.
type serveOptions struct {
	db          string
	parallelism int
	untilIdle   bool
	listen      string // "" means no HTTP server
	tokens      *web.Tokens
	lease       *leader.Lease
	kube        *kubeOptions // --executor and the cluster flags
	pauseNew    bool         // --pause-new-dags
	retention   time.Duration
	http        httpLimits // the --http-* flags
	maxMap      int        // --max-map-length
}

// httpLimits bound what one HTTP client may hold of serve: the http.Server's
// timeouts and the size of an API request body.
type httpLimits struct {
	readHeader time.Duration // --http-read-header-timeout
	read       time.Duration // --http-read-timeout
	write      time.Duration // --http-write-timeout
	idle       time.Duration // --http-idle-timeout
	maxBody    int64         // --http-max-body
}

// defaultHTTPLimits are the --http-* flags' defaults.
var defaultHTTPLimits = httpLimits{readHeader: 10 * time.Second, read: 30 * time.Second,
	write: 2 * time.Minute, idle: 2 * time.Minute, maxBody: 64 << 10}

// addHTTPFlags declares the --http-* flags of serve; the returned function
// reads them after parsing, or returns a usage error naming the flag.
func addHTTPFlags(f *flags) func() (httpLimits, error) {
	d := defaultHTTPLimits
	type timeout struct {
		name string
		val  *string
		dst  *time.Duration
	}
	var l httpLimits
	timeouts := []timeout{
		{"http-read-header-timeout", f.fs.String("http-read-header-timeout", d.readHeader.String(),
			"how long a client may take to send a request's headers, then the connection is closed"), &l.readHeader},
		{"http-read-timeout", f.fs.String("http-read-timeout", d.read.String(),
			"how long a client may take to send a whole request, body included, then the connection is closed"), &l.read},
		{"http-write-timeout", f.fs.String("http-write-timeout", d.write.String(),
			"how long a response may take to be written (the event stream sets its own deadline per event)"), &l.write},
		{"http-idle-timeout", f.fs.String("http-idle-timeout", d.idle.String(),
			"how long a kept-alive connection may wait for its next request"), &l.idle},
	}
	maxBody := f.fs.Int64("http-max-body", d.maxBody, "largest API request body in bytes; a larger one is refused with 413")
	return func() (httpLimits, error) {
		for _, t := range timeouts {
			v, err := time.ParseDuration(*t.val)
			if err != nil || v <= 0 {
				return l, usagef("serve: --%s %q: want a positive duration such as 30s or 2m", t.name, *t.val)
			}
			*t.dst = v
		}
		if l.readHeader > l.read {
			return l, usagef("serve: --http-read-header-timeout %s is longer than --http-read-timeout %s, which bounds the whole request", l.readHeader, l.read)
		}
		if *maxBody <= 0 {
			return l, usagef("serve: --http-max-body %d: must be a positive number of bytes", *maxBody)
		}
		l.maxBody = *maxBody
		return l, nil
	}
}

func cmdServe(ctx context.Context, r *Runner, args []string) error {
	f := newFlags(r, "serve")
	par := f.fs.Int("parallelism", r.cfg.Parallelism, "tries in flight at once")
	untilIdle := f.fs.Bool("until-idle", false, "exit once no run is queued or running (batch jobs, tests); no HTTP server unless --listen is given")
	listen := f.fs.String("listen", "127.0.0.1:8080", "address of the web UI, API, /metrics and probes; empty: none")
	tokens := f.fs.String("tokens", r.cfg.Getenv("TRELLIS_TOKENS"), "file or directory (a mounted Secret) of access tokens, lines \"token role [name]\"; required off loopback")
	elect := f.fs.Bool("leader-elect", leader.InCluster(), "take a Kubernetes Lease before scheduling (default: on when running in a cluster)")
	leaseName := f.fs.String("lease-name", "", "name of the Lease (default trellis-<program name>)")
	leaseNS := f.fs.String("lease-namespace", "", "namespace of the Lease (default $POD_NAMESPACE, else the pod's, else default)")
	retention := f.fs.String("retention", "", "delete finished runs whose logical date is older than this (e.g. 30d, 720h), at start and every hour, as db clean does; default: keep everything")
	pauseNew := f.fs.Bool("pause-new-dags", r.pauseNewDAGs(), "DAGs this database has never seen start paused, as in Airflow (default: $TRELLIS_PAUSE_NEW_DAGS, else runner.Config.PauseNewDAGs)")
	maxMap := addMaxMapLengthFlag(f)
	kube := r.addKubeFlags(f) // its --kubeconfig and --context are also the Lease's
	httpFlags := addHTTPFlags(f)
	if _, err := f.parse(args); err != nil {
		return err
	}
	maxMapLength, err := maxMap()
	if err != nil {
		return err
	}
	hl, err := httpFlags()
	if err != nil {
		return err
	}
	if *par <= 0 {
		return usagef("serve: --parallelism %d: must be positive", *par)
	}
	listenSet := false
	f.fs.Visit(func(fl *flag.Flag) {
		if fl.Name == "listen" {
			listenSet = true
		}
	})
	o := serveOptions{db: *f.db, parallelism: *par, untilIdle: *untilIdle, listen: *listen, kube: ptr(kube()), pauseNew: *pauseNew, http: hl, maxMap: maxMapLength}
	if *retention != "" {
		d, err := parseAge(*retention)
		if err != nil {
			return usagef("serve: --retention %q: %v", *retention, err)
		}
		o.retention = d
	}
	if _, err := o.kube.check(); err != nil {
		return err // before the database is opened
	}
	if *untilIdle && !listenSet {
		o.listen = ""
	}
	if *tokens != "" {
		t, err := web.LoadTokens(*tokens)
		if err != nil {
			return &UsageError{fmt.Errorf("serve: --tokens: %w", err)}
		}
		o.tokens = t
	}
	if o.listen != "" {
		if err := web.CheckListen(o.listen, o.tokens); err != nil {
			return &UsageError{fmt.Errorf("serve: %w", err)}
		}
	}
	if *elect {
		client, _, err := r.kubeClient(*o.kube)
		if err != nil {
			return fmt.Errorf("serve: --leader-elect: %w", err)
		}
		name := *leaseName
		if name == "" {
			name = "trellis-" + dnsLabel(progName())
		}
		ns := *leaseNS
		if ns == "" {
			ns = leader.Namespace()
		}
		o.lease = &leader.Lease{Client: client, Namespace: ns, Name: name, Identity: os.Getenv("POD_NAME")}
	}
	return r.serve(ctx, o)
}

// serve runs the scheduler of the database once this process holds its
// scheduler lock (and the Lease, when configured). A process that waits for
// the lock is a standby: it serves the web UI and the API from the database
// meanwhile, with /readyz ready, so that a rolling update can go on and a
// load balancer may send requests to either replica. What the standby's API
// changes (a run triggered, cleared, marked; a DAG paused) is committed to
// the database, where the active scheduler sees it through the store's change
// notification (SQLite's data_version, PostgreSQL's LISTEN/NOTIFY), as it
// sees the CLI's. The standby's event stream carries only its own actions:
// task and run events come from the scheduler of the process that serves the
// stream. When the standby takes over, the same store and web server carry on
// with its scheduler.
func (r *Runner) serve(ctx context.Context, o serveOptions) error {
	log := newLogger(r.cfg.Stderr)
	gate := web.NewGate("starting")
	stopHTTP := func() {}
	if o.listen != "" {
		ln, err := net.Listen("tcp", o.listen)
		if err != nil {
			return fmt.Errorf("serve: %w", err)
		}
		// Bounded (the --http-* flags): headers 10 s, a whole request (body
		// included) 30 s, a response 2 min (the event stream sets its own
		// deadline per event), an idle connection 2 min.
		hl := o.http
		hs := &http.Server{Handler: gate, ReadHeaderTimeout: hl.readHeader, ReadTimeout: hl.read,
			WriteTimeout: hl.write, IdleTimeout: hl.idle,
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
		served := make(chan struct{})
		go func() {
			defer close(served)
			if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("http server", "err", err)
			}
		}()
		var once sync.Once
		stopHTTP = func() {
			once.Do(func() {
				sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				if err := hs.Shutdown(sctx); err != nil {
					log.Warn("http shutdown", "err", err)
					hs.Close()
				}
				<-served
				log.Info("http server stopped")
			})
		}
		defer stopHTTP()
		log.Info("listening", "addr", "http://"+ln.Addr().String(), "access_control", o.tokens != nil,
			"http_read_header_timeout", hl.readHeader.String(), "http_read_timeout", hl.read.String(),
			"http_write_timeout", hl.write.String(), "http_idle_timeout", hl.idle.String(), "http_max_body", hl.maxBody)
	}
	sv := &serving{o: o, log: log, gate: gate, stopHTTP: stopHTTP}
	if o.listen != "" {
		// The store and the web server are opened before the lock is taken,
		// so that a standby serves.
		st, err := r.openWrite(ctx, o.db)
		if err != nil {
			return err
		}
		defer st.Close()
		sv.st = st
		sv.ws, err = web.New(web.Config{Store: st, DAGs: r.dags, Pools: r.cfg.Pools, Tokens: o.tokens, Logger: log, MaxBodyBytes: o.http.maxBody,
			Wake: sv.wake, PodYAML: r.podYAML(o.kube, st)})
		if err != nil {
			return err
		}
		defer sv.ws.Close()
		defer stopHTTP() // before the web server and the store close
	}
	cfg := leader.Config{DB: o.db, Lease: o.lease, Logger: log, Waiting: sv.standby}
	err := leader.Run(ctx, cfg, func(lctx context.Context) error {
		return r.serveActive(lctx, sv)
	})
	if sv.ws != nil {
		sv.ws.SetReady(errors.New("shutting down"))
	}
	return err
}

// serving is what serve shares between its standby and its active phase.
type serving struct {
	o        serveOptions
	log      *slog.Logger
	gate     *web.Gate
	stopHTTP func()       // stops taking HTTP requests and finishes those in flight
	st       *store.Store // opened before the lock when serving HTTP, else nil
	ws       *web.Server  // nil without --listen

	sched       atomic.Pointer[scheduler.Scheduler] // set once this process schedules
	standbyOnce sync.Once
}

// wake wakes the scheduler once this process has one (web.Config.Wake); a
// standby's changes reach the active scheduler through the database.
func (sv *serving) wake() {
	if s := sv.sched.Load(); s != nil {
		s.Wake()
	}
}

// standby is leader.Config.Waiting: another process schedules, so this one
// serves the web UI and the API from the database (ready), or, without a web
// server, says why it is not ready.
func (sv *serving) standby(reason string) {
	sv.gate.SetReason(reason)
	if sv.ws == nil {
		return
	}
	sv.standbyOnce.Do(func() {
		sv.ws.SetReady(nil)
		sv.gate.Set(sv.ws.Handler())
		sv.log.Info("serving as a standby: the web UI and the API read and write the database; scheduling waits", "reason", reason)
	})
}

// serveActive runs the scheduler (and the web server, unless a standby already
// serves it) once this process is the active scheduler. When lctx ends
// (SIGTERM, or the lease is lost) it stops taking HTTP requests and finishes
// those in flight, then stops the scheduler, then closes the store it opened.
func (r *Runner) serveActive(lctx context.Context, sv *serving) error {
	o, log := sv.o, sv.log
	st := sv.st
	if st == nil {
		var err error
		if st, err = r.openWrite(lctx, o.db); err != nil {
			return err
		}
		defer st.Close()
	}
	if err := r.syncDAGs(lctx, st, o.pauseNew); err != nil {
		return err
	}
	if err := r.logCatchup(lctx, st, log); err != nil {
		return err
	}
	ws := sv.ws
	observe := func(ev scheduler.Event) {
		logEvent(log, ev)
		if ws != nil {
			ws.Observe(ev)
		}
	}
	e, err := r.newEngine(st, engineConfig{parallelism: o.parallelism, exitWhenIdle: o.untilIdle, observe: observe, kube: o.kube, logger: log,
		maxMapLength: o.maxMap})
	if err != nil {
		return err
	}
	sv.sched.Store(e.sched)
	if ws != nil {
		ws.SetReady(nil)
		ws.SetActive(true)
		sv.gate.Set(ws.Handler())
	}
	schedCtx, stopSched := context.WithCancel(context.Background())
	defer stopSched()
	if o.retention > 0 {
		rt := &retention{st: st, age: o.retention, now: time.Now, log: log}
		rt.clean(schedCtx) // before the first run starts (logged); then every hour beside the scheduler
		var wg sync.WaitGroup
		defer func() { stopSched(); wg.Wait() }() // the cleaner ends before the store closes
		tick := time.NewTicker(retentionInterval)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer tick.Stop()
			rt.loop(schedCtx, tick.C)
		}()
	}
	stopped := make(chan struct{})
	go func() {
		select {
		case <-lctx.Done():
			log.Info("stopping: no new requests, finishing those in flight")
			if ws != nil {
				ws.SetReady(errors.New("shutting down"))
			}
			sv.stopHTTP()
			stopSched()
		case <-stopped:
		}
	}()
	log.Info("scheduler started", "db", st.Path(), "dags", len(r.dags), "parallelism", o.parallelism, "max_map_length", cmp.Or(o.maxMap, r.cfg.MaxMapLength))
	err = e.run(schedCtx)
	close(stopped)
	log.Info("scheduler stopped")
	return err
}

// newLogger logs JSON unless w is a terminal.
func newLogger(w io.Writer) *slog.Logger {
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			return slog.New(slog.NewTextHandler(w, nil))
		}
	}
	return slog.New(slog.NewJSONHandler(w, nil))
}

var nonLabel = regexp.MustCompile(`[^a-z0-9-]+`)

// dnsLabel turns s into a DNS-1123 label (lower case, digits and '-', at most 63).
func dnsLabel(s string) string {
	s = strings.Trim(nonLabel.ReplaceAllString(strings.ToLower(s), "-"), "-")
	if len(s) > 55 {
		s = strings.Trim(s[:55], "-")
	}
	if s == "" {
		s = "trellis"
	}
	return s
}

func cmdVersion(_ context.Context, r *Runner, args []string) error {
	f := newFlags(r, "version")
	if _, err := f.parse(args); err != nil {
		return err
	}
	_, err := fmt.Fprintf(r.cfg.Stdout, "trellis %s (schema %d)\n", Version, store.SchemaVersion())
	return err
}
