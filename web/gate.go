package web

import (
	"net/http"
	"sync/atomic"
)

// Gate is the HTTP handler of a process that is not serving yet: one starting
// up (opening its database), or one that waits to become the active scheduler
// and has nothing to serve meanwhile. It answers /healthz (alive), /readyz (503
// with the reason) and everything else with a JSON 503, until Set gives it the
// real handler: a standby's (the runner's serve sets the web server's handler
// while it waits for the scheduler lock, see runner.Main's serve), then the
// active scheduler's.
type Gate struct {
	h      atomic.Pointer[http.Handler]
	reason atomic.Pointer[string]
}

// NewGate returns a gate that is not ready for the given reason.
func NewGate(reason string) *Gate {
	g := &Gate{}
	g.SetReason(reason)
	return g
}

// SetReason changes why the gate is not ready.
func (g *Gate) SetReason(reason string) { g.reason.Store(&reason) }

// Set makes the gate pass every request to h (nil: back to not ready).
func (g *Gate) Set(h http.Handler) {
	if h == nil {
		g.h.Store(nil)
		return
	}
	g.h.Store(&h)
}

// ServeHTTP implements http.Handler.
func (g *Gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := g.h.Load(); h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	securityHeaders(w.Header())
	reason := *g.reason.Load()
	switch r.URL.Path {
	case "/healthz":
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	case "/readyz":
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": reason})
	default:
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, ErrorBody{errorf(http.StatusServiceUnavailable, CodeUnavailable, "not serving: %s", reason)})
	}
}
