package leader

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/trellisdag/trellis/internal/store/storetest"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// TestLeaseOneLeader runs two candidates against one (fake) API server: one
// leads, the other waits; when the first stops, the second takes over.
func TestLeaseOneLeader(t *testing.T) {
	t.Parallel()
	client := fake.NewClientset()
	lease := func(id string) *Lease {
		return &Lease{Client: ClientOf(client.CoordinationV1().Leases), Namespace: "ns", Name: "team", Identity: id,
			LeaseDuration: 2 * time.Second, RenewDeadline: time.Second, RetryPeriod: 50 * time.Millisecond}
	}
	dir := t.TempDir()
	type cand struct {
		cancel  context.CancelFunc
		leading chan struct{}
		waiting chan string
		done    chan error
	}
	start := func(id string) *cand {
		c := &cand{leading: make(chan struct{}), waiting: make(chan string, 8), done: make(chan error, 1)}
		ctx, cancel := context.WithCancel(context.Background())
		c.cancel = cancel
		cfg := Config{DB: filepath.Join(dir, id+".db"), Lease: lease(id), Waiting: func(r string) { c.waiting <- r }}
		go func() {
			c.done <- Run(ctx, cfg, func(ctx context.Context) error {
				close(c.leading)
				<-ctx.Done()
				return nil
			})
		}()
		return c
	}
	within := func(what string, ch <-chan struct{}) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(20 * time.Second):
			t.Fatalf("timed out waiting for %s", what)
		}
	}
	a := start("a")
	within("a to lead", a.leading)
	b := start("b")
	select {
	case r := <-b.waiting:
		if r != "replica a holds the scheduler lease" {
			t.Errorf("b waits because %q", r)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("b never reported waiting")
	}
	select {
	case <-b.leading:
		t.Fatal("b leads while a holds the lease")
	default:
	}
	a.cancel()
	if err := <-a.done; err != nil {
		t.Errorf("a: %v", err)
	}
	within("b to take over", b.leading)
	l, err := client.CoordinationV1().Leases("ns").Get(context.Background(), "team", metav1.GetOptions{})
	if err != nil || l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != "b" {
		t.Errorf("lease = %+v, %v", l, err)
	}
	b.cancel()
	if err := <-b.done; err != nil {
		t.Errorf("b: %v", err)
	}
}

// TestFlockWaits: with no lease, a second holder of the same database waits
// until the first lets go; on SQLite (a flock) and PostgreSQL (an advisory
// lock).
func TestFlockWaits(t *testing.T) {
	t.Parallel()
	storetest.Run(t, testLockWaits)
}

func testLockWaits(t *testing.T, be storetest.Backend) {
	db := be.NewDB(t)
	release := make(chan struct{})
	firstIn := make(chan struct{})
	firstDone := make(chan error, 1)
	go func() {
		firstDone <- Run(context.Background(), Config{DB: db}, func(context.Context) error {
			close(firstIn)
			<-release
			return errors.New("first done")
		})
	}()
	<-firstIn
	waiting := make(chan string, 1)
	secondIn := make(chan struct{})
	secondDone := make(chan error, 1)
	go func() {
		secondDone <- Run(context.Background(), Config{DB: db, PollInterval: 10 * time.Millisecond, Waiting: func(r string) { waiting <- r }},
			func(context.Context) error { close(secondIn); return nil })
	}()
	select {
	case <-waiting:
	case <-time.After(20 * time.Second):
		t.Fatal("the second never waited")
	}
	select {
	case <-secondIn:
		t.Fatal("the second holds the lock with the first")
	default:
	}
	close(release)
	if err := <-firstDone; err == nil || err.Error() != "first done" {
		t.Errorf("first: %v", err)
	}
	select {
	case <-secondIn:
	case <-time.After(20 * time.Second):
		t.Fatal("the second never took over")
	}
	if err := <-secondDone; err != nil {
		t.Errorf("second: %v", err)
	}
	// A waiting process stops when its context ends.
	unlockCtx, cancel := context.WithCancel(context.Background())
	hold := make(chan struct{})
	held := make(chan struct{})
	go Run(context.Background(), Config{DB: db}, func(context.Context) error { close(held); <-hold; return nil })
	<-held
	done := make(chan error, 1)
	go func() {
		done <- Run(unlockCtx, Config{DB: db, PollInterval: 10 * time.Millisecond}, func(context.Context) error { return errors.New("must not lead") })
	}()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("cancelled waiter: %v", err)
	}
	close(hold)
}
