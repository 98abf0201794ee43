package leader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/trellisdag/trellis/internal/store"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ErrLost is returned by Run when this process lost the Lease while it led.
var ErrLost = errors.New("lost the scheduler lease")

// ErrLockLost is returned by Run when the scheduler lock was lost while this
// process led: the PostgreSQL connection holding it died (store.Hold).
var ErrLockLost = errors.New("lost the scheduler lock")

// Client is what the Lease election needs of the API server: the Leases of a
// namespace (coordination.k8s.io/v1). Its method returns the small interface
// LeaseClient, whose methods client-go's typed coordination/v1 client has with
// the same signatures, so that a program may pass a clientset (ClientOf adapts
// it), the fake clientset of tests, or a client of its own that links no typed
// client-go package.
type Client interface {
	// Leases returns the client of the namespace's Leases.
	Leases(namespace string) LeaseClient
}

// LeaseClient is the part of client-go's coordinationv1client.LeaseInterface
// the election calls; a LeaseInterface satisfies it.
type LeaseClient interface {
	// Get returns the named Lease.
	Get(ctx context.Context, name string, opts metav1.GetOptions) (*coordinationv1.Lease, error)
	// Create creates the Lease and returns it as the API server stored it.
	Create(ctx context.Context, lease *coordinationv1.Lease, opts metav1.CreateOptions) (*coordinationv1.Lease, error)
	// Update writes the Lease; it fails with a conflict when the Lease's
	// resourceVersion is not the stored one.
	Update(ctx context.Context, lease *coordinationv1.Lease, opts metav1.UpdateOptions) (*coordinationv1.Lease, error)
}

// ClientOf returns the Client whose Leases are leases. It adapts the method of
// a typed coordination/v1 client, whose return type is client-go's own
// interface:
//
//	leader.ClientOf(cs.CoordinationV1().Leases)
//
// for a clientset cs (kubernetes.Interface, the fake clientset) or a
// coordinationv1client.CoordinationV1Interface.
func ClientOf[L LeaseClient](leases func(namespace string) L) Client {
	return leasesFunc[L](leases)
}

// leasesFunc is the Client of ClientOf.
type leasesFunc[L LeaseClient] func(string) L

// Leases returns the Lease client of the namespace.
func (f leasesFunc[L]) Leases(namespace string) LeaseClient { return f(namespace) }

// Lease configures the Kubernetes Lease.
type Lease struct {
	Client    Client
	Namespace string
	Name      string
	// Identity names this replica in the Lease (default: the hostname, the pod's
	// name in a cluster).
	Identity string
	// LeaseDuration, RenewDeadline and RetryPeriod mean what they mean in
	// client-go's leaderelection (defaults 15s, 10s, 2s): another replica takes
	// over a Lease it has not seen change for LeaseDuration (the Lease holds
	// whole seconds: rounded up); the leader stops leading when no renewal succeeded for
	// RenewDeadline (less than LeaseDuration); it renews every RetryPeriod, and a
	// waiting replica tries every RetryPeriod, with jitter (RenewDeadline must
	// exceed 1.2 RetryPeriods).
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

// Config configures Run.
type Config struct {
	// DB is the database whose scheduler lock (store.Lock) is taken: a SQLite
	// file's flock, or a PostgreSQL DSN's session advisory lock. Messages show
	// a DSN with its password hidden.
	DB string
	// Lease, when set, is taken before the flock.
	Lease *Lease
	// Logger receives "waiting" and "leading" messages (default: discarded).
	Logger *slog.Logger
	// PollInterval is how often a waiting process tries the lock (default 250ms
	// for a SQLite file's flock; 1s for a PostgreSQL database's advisory lock,
	// each try being a new connection).
	PollInterval time.Duration
	// Waiting is called once when the process starts to wait for another holder.
	Waiting func(reason string)
}

// Run waits until this process holds the Lease (when configured) and the
// scheduler lock (store.Hold), then calls lead with a context that ends when ctx
// does or the Lease or the lock is lost. It returns lead's error; ErrLost or
// ErrLockLost if the Lease or the lock was lost while leading; nil if ctx ended
// while waiting.
func Run(ctx context.Context, cfg Config, lead func(ctx context.Context) error) error {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 250 * time.Millisecond
		if store.IsPostgres(cfg.DB) {
			cfg.PollInterval = time.Second
		}
	}
	if cfg.Waiting == nil {
		cfg.Waiting = func(string) {}
	}
	if cfg.Lease == nil {
		return withFlock(ctx, cfg, lead)
	}
	return withLease(ctx, cfg, func(ctx context.Context) error { return withFlock(ctx, cfg, lead) })
}

func withFlock(ctx context.Context, cfg Config, lead func(context.Context) error) error {
	waiting := false
	for {
		held, err := store.Hold(cfg.DB)
		if err == nil {
			defer held.Unlock()
			cfg.Logger.Info("holding the scheduler lock", "db", store.Redact(cfg.DB))
			// A lock whose connection died (PostgreSQL) may be taken by a
			// standby at once: stop leading.
			lctx, cancel := context.WithCancel(ctx)
			defer cancel()
			lostc := make(chan struct{})
			go func() {
				select {
				case <-held.Lost():
					close(lostc)
					cfg.Logger.Error("the scheduler lock was lost (its database connection died); stopping", "db", store.Redact(cfg.DB))
					cancel()
				case <-lctx.Done():
				}
			}()
			err := lead(lctx)
			select {
			case <-lostc:
				if ctx.Err() == nil {
					return fmt.Errorf("%w of %s (its database connection died)", ErrLockLost, store.Redact(cfg.DB))
				}
			default:
			}
			return err
		}
		if !errors.Is(err, store.ErrLocked) {
			return err
		}
		if !waiting {
			waiting = true
			// Waiting first: once the message is logged, the reason is set.
			cfg.Waiting("another scheduler holds the lock on this database")
			cfg.Logger.Info("another scheduler holds the lock on this database; waiting to take over", "db", store.Redact(cfg.DB))
		}
		t := time.NewTimer(cfg.PollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

func withLease(ctx context.Context, cfg Config, lead func(context.Context) error) error {
	l := cfg.Lease
	id := l.Identity
	if id == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("lease identity: %w", err)
		}
		id = h
	}
	el, err := newElector(l, id, cfg.Logger, cfg.Waiting)
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	if !el.acquire(ctx) {
		return nil // ctx ended while waiting
	}
	cfg.Logger.Info("holding the scheduler lease", "lease", el.describe(), "identity", id)
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- lead(lctx) }()
	lost, err := el.hold(lctx, done, cancel)
	// lead has returned: give the Lease up, so that the next replica need not
	// wait for it to expire.
	el.release()
	if lost && ctx.Err() == nil {
		return fmt.Errorf("%w %s", ErrLost, el.describe())
	}
	return err
}

// jitterFactor spreads the attempts of waiting replicas as client-go's does:
// each waits RetryPeriod plus up to 1.2 RetryPeriods more.
const jitterFactor = 1.2

// elector takes, keeps and gives up one replica's Lease. Its methods are called
// from one goroutine.
type elector struct {
	leases                                    LeaseClient
	ns, name, id                              string
	leaseDuration, renewDeadline, retryPeriod time.Duration
	log                                       *slog.Logger
	waiting                                   func(reason string)

	lease      *coordinationv1.Lease    // as last read or written: its resourceVersion goes with the next write
	observed   coordinationv1.LeaseSpec // the record as last seen
	observedAt time.Time                // when the record last changed, on this replica's clock
	renewedAt  time.Time                // when the last write that kept this replica the holder was sent
	reported   string                   // the other holder last reported to waiting
}

func newElector(l *Lease, id string, log *slog.Logger, waiting func(string)) (*elector, error) {
	dur := func(d, def time.Duration) time.Duration {
		if d <= 0 {
			return def
		}
		return d
	}
	e := &elector{
		ns: l.Namespace, name: l.Name, id: id, log: log, waiting: waiting,
		leaseDuration: dur(l.LeaseDuration, 15*time.Second),
		renewDeadline: dur(l.RenewDeadline, 10*time.Second),
		retryPeriod:   dur(l.RetryPeriod, 2*time.Second),
	}
	switch {
	case l.Client == nil:
		return nil, errors.New("the lease has no client")
	case id == "":
		return nil, errors.New("the lease identity is empty")
	case e.leaseDuration <= e.renewDeadline:
		return nil, errors.New("leaseDuration must be greater than renewDeadline")
	case e.renewDeadline <= time.Duration(jitterFactor*float64(e.retryPeriod)):
		return nil, errors.New("renewDeadline must be greater than retryPeriod*1.2")
	}
	e.leases = l.Client.Leases(l.Namespace)
	return e, nil
}

func (e *elector) describe() string { return e.ns + "/" + e.name }

// acquire tries to take the Lease every RetryPeriod (with jitter) until it
// holds it (true) or ctx ends (false).
func (e *elector) acquire(ctx context.Context) bool {
	for {
		if e.tryAcquireOrRenew(ctx) {
			return true
		}
		if h := holder(e.observed); h != "" && h != e.id && h != e.reported {
			e.reported = h
			e.waiting("replica " + h + " holds the scheduler lease")
			e.log.Info("another replica holds the scheduler lease; waiting", "holder", h)
		}
		wait := e.retryPeriod + time.Duration(rand.Float64()*jitterFactor*float64(e.retryPeriod))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
	}
}

// hold renews the Lease every RetryPeriod while lead runs. It returns lead's
// error once lead has returned: on its own, when ctx ends, or after hold
// cancelled it (with cancel) because the Lease was lost (lost is then true).
func (e *elector) hold(ctx context.Context, done <-chan error, cancel context.CancelFunc) (lost bool, err error) {
	t := time.NewTimer(e.retryPeriod)
	defer t.Stop()
	for {
		select {
		case err := <-done:
			return false, err
		case <-ctx.Done():
			return false, <-done
		case <-t.C:
		}
		if reason := e.renew(ctx); reason != "" {
			if ctx.Err() != nil {
				return false, <-done
			}
			e.log.Warn("lost the scheduler lease; stopping", "lease", e.describe(), "identity", e.id, "reason", reason)
			cancel()
			return true, <-done
		}
		next := e.retryPeriod
		if left := time.Until(e.renewedAt.Add(e.renewDeadline)); left < next {
			next = max(left, 0)
		}
		t.Reset(next)
	}
}

// renew tries once to renew the Lease, within what is left of RenewDeadline
// since the last renewal. It returns why the Lease is lost, or "" while it is
// not.
func (e *elector) renew(ctx context.Context) string {
	deadline := e.renewedAt.Add(e.renewDeadline)
	if !time.Now().Before(deadline) {
		return fmt.Sprintf("no renewal succeeded within %s", e.renewDeadline)
	}
	rctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	if e.tryAcquireOrRenew(rctx) {
		return ""
	}
	if h := holder(e.observed); h != "" && h != e.id {
		return "replica " + h + " holds it"
	}
	if !time.Now().Before(deadline) {
		return fmt.Sprintf("no renewal succeeded within %s", e.renewDeadline)
	}
	return ""
}

// tryAcquireOrRenew makes one attempt to take or keep the Lease, as client-go's
// LeaderElector does: the holder first writes its last-known object; when that
// fails, or the replica does not hold the Lease, it reads the Lease, takes it
// if it does not exist, was released, is its own or has expired, and writes it
// with the resourceVersion read, so that a concurrent write fails it with a
// conflict.
func (e *elector) tryAcquireOrRenew(ctx context.Context) bool {
	start := time.Now()
	now := metav1.NewMicroTime(start)
	if e.lease != nil && holder(e.observed) == e.id && e.valid(start) {
		lease := e.lease.DeepCopy()
		lease.Spec = e.record(now, true)
		if e.update(ctx, lease, start) {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		// Fall back to reading the Lease: another write came between.
	}
	cur, err := e.leases.Get(ctx, e.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		lease := &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: e.name},
			Spec:       e.record(now, false),
		}
		lease.Spec.LeaseTransitions = ptr(int32(0))
		created, err := e.leases.Create(ctx, lease, metav1.CreateOptions{})
		if err != nil {
			// AlreadyExists: another replica created it first.
			e.log.Debug("create the lease", "lease", e.describe(), "err", err)
			return false
		}
		e.wrote(created, start)
		return true
	}
	if err != nil {
		e.log.Debug("read the lease", "lease", e.describe(), "err", err)
		return false
	}
	e.lease = cur
	if !sameRecord(cur.Spec, e.observed) {
		e.observed, e.observedAt = cur.Spec, time.Now()
	}
	h := holder(cur.Spec)
	if h != "" && h != e.id && e.valid(start) {
		return false
	}
	lease := cur.DeepCopy()
	lease.Spec = e.record(now, h == e.id)
	if h != e.id {
		lease.Spec.LeaseTransitions = ptr(transitions(cur.Spec) + 1)
	}
	return e.update(ctx, lease, start)
}

// record returns the Lease record of this replica as the holder, renewed at
// now, with the transitions of the record last seen; kept also carries over
// its acquire time (this replica already holds it).
func (e *elector) record(now metav1.MicroTime, kept bool) coordinationv1.LeaseSpec {
	spec := coordinationv1.LeaseSpec{
		HolderIdentity:       ptr(e.id),
		LeaseDurationSeconds: ptr(int32((e.leaseDuration + time.Second - 1) / time.Second)),
		AcquireTime:          ptr(now),
		RenewTime:            ptr(now),
		LeaseTransitions:     ptr(transitions(e.observed)),
	}
	if kept && e.observed.AcquireTime != nil {
		spec.AcquireTime = ptr(*e.observed.AcquireTime)
	}
	return spec
}

// update writes lease (with the resourceVersion it was read with), sent at
// start, and records it on success.
func (e *elector) update(ctx context.Context, lease *coordinationv1.Lease, start time.Time) bool {
	updated, err := e.leases.Update(ctx, lease, metav1.UpdateOptions{})
	if err != nil {
		// A conflict means that another replica wrote the Lease first.
		e.log.Debug("update the lease", "lease", e.describe(), "err", err)
		return false
	}
	e.wrote(updated, start)
	return true
}

// wrote records a Lease that this replica wrote at start.
func (e *elector) wrote(lease *coordinationv1.Lease, start time.Time) {
	e.lease, e.observed, e.observedAt = lease, lease.Spec, time.Now()
	if holder(lease.Spec) == e.id {
		e.renewedAt = start
	}
}

// valid reports whether the record last seen has not expired at now: it has
// changed within its leaseDurationSeconds, on this replica's clock.
func (e *elector) valid(now time.Time) bool {
	var secs int32
	if e.observed.LeaseDurationSeconds != nil {
		secs = *e.observed.LeaseDurationSeconds
	}
	return e.observedAt.Add(time.Duration(secs) * time.Second).After(now)
}

// release gives the Lease up if this replica still holds it, as client-go's
// ReleaseOnCancel does: the holder is cleared and leaseDurationSeconds set to
// 1. It is bounded by RenewDeadline; a failure only means that the next
// replica waits for the Lease to expire.
func (e *elector) release() {
	ctx, cancel := context.WithTimeout(context.Background(), e.renewDeadline)
	defer cancel()
	cur, err := e.leases.Get(ctx, e.name, metav1.GetOptions{})
	if err != nil {
		e.log.Warn("release the scheduler lease", "lease", e.describe(), "err", err)
		return
	}
	if holder(cur.Spec) != e.id {
		return
	}
	now := metav1.NewMicroTime(time.Now())
	lease := cur.DeepCopy()
	lease.Spec = coordinationv1.LeaseSpec{
		HolderIdentity:       ptr(""),
		LeaseDurationSeconds: ptr(int32(1)),
		AcquireTime:          ptr(now),
		RenewTime:            ptr(now),
		LeaseTransitions:     ptr(transitions(cur.Spec)),
	}
	if _, err := e.leases.Update(ctx, lease, metav1.UpdateOptions{}); err != nil {
		e.log.Warn("release the scheduler lease", "lease", e.describe(), "err", err)
	}
}

func holder(s coordinationv1.LeaseSpec) string {
	if s.HolderIdentity == nil {
		return ""
	}
	return *s.HolderIdentity
}

func transitions(s coordinationv1.LeaseSpec) int32 {
	if s.LeaseTransitions == nil {
		return 0
	}
	return *s.LeaseTransitions
}

// sameRecord reports whether two Lease records are the same (a renewal changes
// renewTime, a takeover the holder).
func sameRecord(a, b coordinationv1.LeaseSpec) bool {
	return eq(a.HolderIdentity, b.HolderIdentity) && eq(a.LeaseDurationSeconds, b.LeaseDurationSeconds) &&
		eq(a.LeaseTransitions, b.LeaseTransitions) && a.AcquireTime.Equal(b.AcquireTime) &&
		a.RenewTime.Equal(b.RenewTime) && eq(a.PreferredHolder, b.PreferredHolder) && eq(a.Strategy, b.Strategy)
}

// eq reports whether two optional values are both unset or both set and equal.
func eq[T comparable](x, y *T) bool {
	return x == nil && y == nil || x != nil && y != nil && *x == *y
}

func ptr[T any](v T) *T { return &v }

// InCluster reports whether the process runs in a Kubernetes pod with a service
// account (the in-cluster configuration is present).
func InCluster() bool {
	if os.Getenv("KUBERNETES_SERVICE_HOST") == "" {
		return false
	}
	_, err := os.Stat("/var/run/secrets/kubernetes.io/serviceaccount/token")
	return err == nil
}

// Namespace returns the pod's namespace: $POD_NAMESPACE, else the service
// account's namespace file, else "default".
func Namespace() string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	if b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil {
		if ns := strings.TrimSpace(string(b)); ns != "" {
			return ns
		}
	}
	return "default"
}
