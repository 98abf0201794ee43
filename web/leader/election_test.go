package leader

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

var leasesResource = coordinationv1.SchemeGroupVersion.WithResource("leases")

// apiServer is one store of objects behind any number of fake clientsets (one
// per replica, so that each can have reactors of its own), with the optimistic
// concurrency of a real API server for Leases: every write sets a new
// resourceVersion, and an update that carries another resourceVersion than the
// stored one fails with a conflict. (The fake clientset alone accepts any
// update.)
type apiServer struct {
	tracker   k8stesting.ObjectTracker
	conflicts chan string // the holder written by each update refused

	mu sync.Mutex
	rv int
}

func newAPIServer() *apiServer {
	return &apiServer{tracker: fake.NewClientset().Tracker(), conflicts: make(chan string, 64)}
}

// client returns a new clientset on the server's objects.
func (s *apiServer) client() *fake.Clientset {
	cs := &fake.Clientset{}
	cs.AddReactor("create", "leases", s.create)
	cs.AddReactor("update", "leases", s.update)
	cs.AddReactor("*", "*", k8stesting.ObjectReaction(s.tracker))
	return cs
}

func (s *apiServer) create(a k8stesting.Action) (bool, runtime.Object, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := a.(k8stesting.CreateAction).GetObject().(*coordinationv1.Lease).DeepCopy()
	s.rv++
	l.ResourceVersion = strconv.Itoa(s.rv)
	if err := s.tracker.Create(leasesResource, l, a.GetNamespace()); err != nil {
		return true, nil, err
	}
	return true, l, nil
}

func (s *apiServer) update(a k8stesting.Action) (bool, runtime.Object, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := a.(k8stesting.UpdateAction).GetObject().(*coordinationv1.Lease).DeepCopy()
	cur, err := s.tracker.Get(leasesResource, a.GetNamespace(), l.Name)
	if err != nil {
		return true, nil, err
	}
	if cur.(*coordinationv1.Lease).ResourceVersion != l.ResourceVersion {
		select {
		case s.conflicts <- holder(l.Spec):
		default:
		}
		return true, nil, apierrors.NewConflict(coordinationv1.Resource("leases"), l.Name,
			errors.New("the object has been modified; please apply your changes to the latest version and try again"))
	}
	s.rv++
	l.ResourceVersion = strconv.Itoa(s.rv)
	if err := s.tracker.Update(leasesResource, l, a.GetNamespace()); err != nil {
		return true, nil, err
	}
	return true, l, nil
}

// lease reads the Lease ns/team.
func (s *apiServer) lease(t *testing.T) *coordinationv1.Lease {
	t.Helper()
	obj, err := s.tracker.Get(leasesResource, "ns", "team")
	if err != nil {
		t.Fatalf("get the lease: %v", err)
	}
	return obj.(*coordinationv1.Lease)
}

// candidate is one replica running Run.
type candidate struct {
	cancel  context.CancelFunc
	leading chan struct{} // closed when lead starts
	stopped chan struct{} // closed when lead's context ends
	waiting chan string
	ended   chan struct{} // closed when Run has returned err
	err     error
}

// wait returns Run's error once it has returned.
func (c *candidate) wait(t *testing.T, who string) error {
	t.Helper()
	within(t, who+" to return", c.ended)
	return c.err
}

// fastLease is a Lease of the team on cs with short periods: it expires 1s
// after its last change, and the leader stops if no renewal succeeds for
// 500ms.
func fastLease(cs *fake.Clientset, id string) *Lease {
	return &Lease{Client: ClientOf(cs.CoordinationV1().Leases), Namespace: "ns", Name: "team", Identity: id,
		LeaseDuration: time.Second, RenewDeadline: 500 * time.Millisecond, RetryPeriod: 50 * time.Millisecond}
}

// start runs a replica whose lead waits for its context to end.
func start(t *testing.T, l *Lease) *candidate {
	t.Helper()
	c := &candidate{leading: make(chan struct{}), stopped: make(chan struct{}), waiting: make(chan string, 64), ended: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	cfg := Config{DB: filepath.Join(t.TempDir(), l.Identity+".db"), Lease: l, Waiting: func(r string) {
		select {
		case c.waiting <- r:
		default:
		}
	}}
	go func() {
		defer close(c.ended)
		c.err = Run(ctx, cfg, func(ctx context.Context) error {
			close(c.leading)
			<-ctx.Done()
			close(c.stopped)
			return nil
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-c.ended
	})
	return c
}

// within waits for a value from ch, failing the test after a bound.
func within[T any](t *testing.T, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(20 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// notYet fails the test if ch is ready (closed) now.
func notYet(t *testing.T, what string, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
		t.Fatal(what)
	default:
	}
}

// TestLeaseTakeoverAfterExpiry: a replica that died holding the Lease never
// releases it; another takes it over once the record has not changed for its
// leaseDurationSeconds, measured on the taker's clock from when it first saw
// the record (the record's renewTime, an hour old here, is not compared with
// the taker's clock), and counts a transition.
func TestLeaseTakeoverAfterExpiry(t *testing.T) {
	t.Parallel()
	s := newAPIServer()
	client := s.client()
	old := metav1.NewMicroTime(time.Now().Add(-time.Hour))
	_, err := client.CoordinationV1().Leases("ns").Create(context.Background(), &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "team"},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr("dead"), LeaseDurationSeconds: ptr(int32(2)),
			AcquireTime: &old, RenewTime: &old, LeaseTransitions: ptr(int32(3))},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	b := start(t, fastLease(client, "b"))
	if r := within(t, "b to wait", b.waiting); r != "replica dead holds the scheduler lease" {
		t.Errorf("b waits because %q", r)
	}
	notYet(t, "b leads while the dead replica's lease is fresh", b.leading)
	within(t, "b to take over", b.leading)
	if took := time.Since(began); took < 2*time.Second {
		t.Errorf("b took the lease over after %s, before its 2s had passed since b first saw it", took)
	}
	l := s.lease(t)
	if holder(l.Spec) != "b" || transitions(l.Spec) != 4 || *l.Spec.LeaseDurationSeconds != 1 {
		t.Errorf("lease after the takeover = %+v", l.Spec)
	}
	b.cancel()
	if err := b.wait(t, "b"); err != nil {
		t.Errorf("b: %v", err)
	}
	// A clean stop releases the Lease as client-go's ReleaseOnCancel does.
	l = s.lease(t)
	if holder(l.Spec) != "" || *l.Spec.LeaseDurationSeconds != 1 || transitions(l.Spec) != 4 {
		t.Errorf("lease after b stopped = %+v", l.Spec)
	}
}

// TestLeaseConflictOneLeader: replica b read the Lease free just before a took
// it (b's first read is stale); b's update then carries an old
// resourceVersion and fails with a conflict, and b waits instead of leading.
func TestLeaseConflictOneLeader(t *testing.T) {
	t.Parallel()
	s := newAPIServer()
	ca := s.client()
	now := metav1.NewMicroTime(time.Now())
	free, err := ca.CoordinationV1().Leases("ns").Create(context.Background(), &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "team"},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr(""), LeaseDurationSeconds: ptr(int32(1)),
			AcquireTime: &now, RenewTime: &now, LeaseTransitions: ptr(int32(0))},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a := start(t, fastLease(ca, "a"))
	within(t, "a to lead", a.leading)

	cb := s.client()
	var stale atomic.Bool
	stale.Store(true)
	cb.PrependReactor("get", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
		if stale.CompareAndSwap(true, false) {
			return true, free.DeepCopy(), nil
		}
		return false, nil, nil
	})
	b := start(t, fastLease(cb, "b"))
	if who := within(t, "b's update to conflict", s.conflicts); who != "b" {
		t.Errorf("the conflicting update wrote holder %q", who)
	}
	if r := within(t, "b to wait", b.waiting); r != "replica a holds the scheduler lease" {
		t.Errorf("b waits because %q", r)
	}
	notYet(t, "b leads with a", b.leading)
	notYet(t, "a stopped leading", a.stopped)
	if l := s.lease(t); holder(l.Spec) != "a" || transitions(l.Spec) != 1 {
		t.Errorf("lease = %+v", l.Spec)
	}
	b.cancel()
	if err := b.wait(t, "b"); err != nil {
		t.Errorf("b: %v", err)
	}
	notYet(t, "b led", b.leading)
	a.cancel()
	if err := a.wait(t, "a"); err != nil {
		t.Errorf("a: %v", err)
	}
}

// TestLeaseLostWhenRenewFails: when no renewal succeeds within RenewDeadline
// (the API server is down for this replica), lead's context is cancelled and
// Run returns ErrLost.
func TestLeaseLostWhenRenewFails(t *testing.T) {
	t.Parallel()
	client := fake.NewClientset()
	var down atomic.Bool
	client.PrependReactor("*", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
		if down.Load() {
			return true, nil, apierrors.NewServiceUnavailable("the test's API server is down")
		}
		return false, nil, nil
	})
	a := start(t, fastLease(client, "a"))
	within(t, "a to lead", a.leading)
	down.Store(true)
	within(t, "a's lead context to end", a.stopped)
	err := a.wait(t, "a")
	if !errors.Is(err, ErrLost) || err.Error() != "lost the scheduler lease ns/team" {
		t.Errorf("a: %v, want ErrLost", err)
	}
}

// TestLeaseLostToAnotherHolder: a leader whose renewal meets another holder
// in the Lease (its update conflicts, and the Lease names the other) stops at
// once, and does not release the other's Lease.
func TestLeaseLostToAnotherHolder(t *testing.T) {
	t.Parallel()
	s := newAPIServer()
	a := start(t, fastLease(s.client(), "a"))
	within(t, "a to lead", a.leading)
	// Replica c writes itself into the Lease, retrying while a's renewals
	// come between its read and its write.
	thief := s.client().CoordinationV1().Leases("ns")
	for attempt := 0; ; attempt++ {
		l := s.lease(t).DeepCopy()
		l.Spec.HolderIdentity = ptr("c")
		_, err := thief.Update(context.Background(), l, metav1.UpdateOptions{})
		if err == nil {
			break
		}
		if !apierrors.IsConflict(err) || attempt == 100 {
			t.Fatal(err)
		}
	}
	err := a.wait(t, "a")
	if !errors.Is(err, ErrLost) {
		t.Errorf("a: %v, want ErrLost", err)
	}
	select {
	case <-a.stopped:
	default:
		t.Error("a's lead context is still live after Run returned")
	}
	if l := s.lease(t); holder(l.Spec) != "c" {
		t.Errorf("lease after a lost it = %+v", l.Spec)
	}
}
