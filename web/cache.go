package web

import (
	"context"
	"sync"
	"time"
)

// respCache keeps encoded responses of expensive listings. An entry is valid
// while the store's data version (which changes with every commit of any
// connection or process) is the one it was computed at, and, after a commit, for
// at most maxStale more: a run that executes commits many times a second, and
// recomputing a 1,000-task listing on every commit would cost more than the
// commits. Actions taken through this server drop the cache (read your writes),
// and the UI refreshes at least refreshDelay after an event, later than
// maxStale, so it never shows data older than the event it reacts to.
// Concurrent misses for one key compute it once.
type respCache struct {
	mu      sync.Mutex
	entries map[string]cacheEntry
	flights map[string]*flight
	now     func() time.Time
}

type cacheEntry struct {
	ver int64
	at  time.Time
	val []byte
}

// maxStale bounds how long after a commit a cached listing may still be served.
const maxStale = 200 * time.Millisecond

type flight struct {
	done chan struct{}
	val  []byte
	err  error
}

const maxCacheEntries = 256

func newRespCache() *respCache {
	return &respCache{entries: map[string]cacheEntry{}, flights: map[string]*flight{}, now: time.Now}
}

// invalidate drops every entry.
func (c *respCache) invalidate() {
	c.mu.Lock()
	clear(c.entries)
	clear(c.flights)
	c.mu.Unlock()
}

// get returns the response for key at data version ver, computing it with fn
// when it is not cached at that version.
func (c *respCache) get(ctx context.Context, key string, ver int64, fn func() ([]byte, error)) ([]byte, error) {
	c.mu.Lock()
	if e, ok := c.entries[key]; ok && (e.ver == ver || c.now().Sub(e.at) < maxStale) {
		c.mu.Unlock()
		return e.val, nil
	}
	if f, ok := c.flights[key]; ok {
		c.mu.Unlock()
		select {
		case <-f.done:
			return f.val, f.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f := &flight{done: make(chan struct{})}
	c.flights[key] = f
	at := c.now()
	c.mu.Unlock()

	f.val, f.err = fn()
	close(f.done)

	c.mu.Lock()
	if c.flights[key] == f { // not dropped by invalidate meanwhile
		delete(c.flights, key)
		if f.err == nil {
			if len(c.entries) >= maxCacheEntries {
				clear(c.entries)
			}
			c.entries[key] = cacheEntry{ver: ver, at: at, val: f.val}
		}
	}
	c.mu.Unlock()
	return f.val, f.err
}
