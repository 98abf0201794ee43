package web

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestRespCache(t *testing.T) {
	t.Parallel()
	c := newRespCache()
	now := time.Unix(1000, 0)
	c.now = func() time.Time { return now }
	ctx := context.Background()
	var calls atomic.Int32
	fn := func(v string) func() ([]byte, error) {
		return func() ([]byte, error) { calls.Add(1); return []byte(v), nil }
	}
	get := func(ver int64, v string) string {
		b, err := c.get(ctx, "k", ver, fn(v))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := get(1, "a"); got != "a" {
		t.Fatalf("first = %q", got)
	}
	now = now.Add(time.Hour)
	if got := get(1, "b"); got != "a" {
		t.Errorf("same data version, an hour later = %q; want the cached a", got)
	}
	// A commit happened: the entry is stale; computed an hour ago, it is past maxStale.
	if got := get(2, "c"); got != "c" {
		t.Errorf("after a commit = %q, want c", got)
	}
	// Another commit within maxStale of the computation: still served.
	now = now.Add(maxStale / 2)
	if got := get(3, "d"); got != "c" {
		t.Errorf("within maxStale = %q, want c", got)
	}
	now = now.Add(maxStale)
	if got := get(3, "e"); got != "e" {
		t.Errorf("past maxStale = %q, want e", got)
	}
	c.invalidate()
	if got := get(3, "f"); got != "f" {
		t.Errorf("after invalidate = %q, want f", got)
	}
	// Concurrent misses compute once.
	c.invalidate()
	calls.Store(0)
	release := make(chan struct{})
	var wg sync.WaitGroup
	results := make([]string, 8)
	started := make(chan struct{})
	go func() {
		b, _ := c.get(ctx, "k", 4, func() ([]byte, error) { close(started); <-release; calls.Add(1); return []byte("g"), nil })
		results[0] = string(b)
	}()
	<-started
	for i := 1; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, _ := c.get(ctx, "k", 4, fn("h"))
			results[i] = string(b)
		}()
	}
	close(release)
	wg.Wait()
	for i := 1; i < 8; i++ {
		if results[i] != "g" {
			t.Errorf("waiter %d = %q, want g", i, results[i])
		}
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("computed %d times, want 1", n)
	}
}
