// Package leader makes sure exactly one process schedules a database's runs: an
// exclusive flock on the SQLite file (store.Lock) on one machine and, in a
// Kubernetes cluster, a Lease (client-go leaderelection) first, so that a second
// replica waits instead of double-scheduling.
package leader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/trellisdag/trellis/internal/store"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// ErrLost is returned by Run when this process lost the Lease while it led.
var ErrLost = errors.New("lost the scheduler lease")

// Lease configures the Kubernetes Lease.
type Lease struct {
	Client    kubernetes.Interface
	Namespace string
	Name      string
	// Identity names this replica in the Lease (default: the hostname, the pod's
	// name in a cluster).
	Identity string
	// LeaseDuration, RenewDeadline and RetryPeriod are client-go's (defaults 15s,
	// 10s, 2s).
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

// Config configures Run.
type Config struct {
	// DB is the database whose flock is taken.
	DB string
	// Lease, when set, is taken before the flock.
	Lease *Lease
	// Logger receives "waiting" and "leading" messages (default: discarded).
	Logger *slog.Logger
	// PollInterval is how often a waiting process tries the flock (default 250ms).
	PollInterval time.Duration
	// Waiting is called once when the process starts to wait for another holder.
	Waiting func(reason string)
}

// Run waits until this process holds the Lease (when configured) and the flock,
// then calls lead with a context that ends when ctx does or the Lease is lost. It
// returns lead's error; ErrLost if the Lease was lost while leading; nil if ctx
// ended while waiting.
func Run(ctx context.Context, cfg Config, lead func(ctx context.Context) error) error {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 250 * time.Millisecond
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
		unlock, err := store.Lock(cfg.DB)
		if err == nil {
			defer unlock()
			cfg.Logger.Info("holding the scheduler lock", "db", cfg.DB)
			return lead(ctx)
		}
		if !errors.Is(err, store.ErrLocked) {
			return err
		}
		if !waiting {
			waiting = true
			cfg.Logger.Info("another scheduler holds the lock on this database; waiting to take over", "db", cfg.DB)
			cfg.Waiting("another scheduler holds the lock on this database")
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
	dur := func(d, def time.Duration) time.Duration {
		if d <= 0 {
			return def
		}
		return d
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: l.Namespace, Name: l.Name},
		Client:     l.Client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: id},
	}
	parent := ctx
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	type result struct {
		err  error
		lost bool
	}
	done := make(chan result, 1)
	var started atomic.Bool
	el, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   dur(l.LeaseDuration, 15*time.Second),
		RenewDeadline:   dur(l.RenewDeadline, 10*time.Second),
		RetryPeriod:     dur(l.RetryPeriod, 2*time.Second),
		ReleaseOnCancel: true,
		Name:            l.Name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(lctx context.Context) {
				started.Store(true)
				cfg.Logger.Info("holding the scheduler lease", "lease", l.Namespace+"/"+l.Name, "identity", id)
				err := lead(lctx)
				// lead ended while its context was cancelled and the caller had not
				// stopped us: the elector cancelled it, so the lease was lost.
				done <- result{err, lctx.Err() != nil && parent.Err() == nil}
				cancel() // give the lease up
			},
			OnStoppedLeading: func() {},
			OnNewLeader: func(who string) {
				if who != id {
					cfg.Logger.Info("another replica holds the scheduler lease; waiting", "holder", who)
					cfg.Waiting("replica " + who + " holds the scheduler lease")
				}
			},
		},
	})
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	elDone := make(chan struct{})
	go func() {
		defer close(elDone)
		el.Run(ctx)
	}()
	var r result
	select {
	case r = <-done:
		<-elDone
	case <-elDone:
		// The elector returned: ctx ended while waiting, or the lease was lost
		// and lead (if it started) is ending now.
		if !started.Load() {
			return nil
		}
		r = <-done
	}
	if r.lost {
		return fmt.Errorf("%w %s/%s", ErrLost, l.Namespace, l.Name)
	}
	return r.err
}

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
