package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trellisdag/trellis/scheduler"
	"github.com/trellisdag/trellis/task"
)

// Event is what the event stream sends: a committed change of a task instance
// or a run, or an action taken through the API.
type Event struct {
	Seq      int64         `json:"seq"`
	At       time.Time     `json:"at"`
	Kind     string        `json:"kind"` // "task", "run" or "action"
	DAGID    string        `json:"dagId"`
	RunID    string        `json:"runId,omitempty"`
	TaskID   string        `json:"taskId,omitempty"`
	Try      int           `json:"try,omitempty"`
	State    task.State    `json:"state,omitempty"`
	RunState task.RunState `json:"runState,omitempty"`
	Action   string        `json:"action,omitempty"`
}

// hub fans events out to the event streams. Observe must not block the
// scheduler, so events pass through a buffered channel to one goroutine, which
// also feeds the metrics; a stream that cannot keep up is told to resync.
type hub struct {
	in   chan scheduler.Event
	acts chan Event
	done chan struct{}
	wg   sync.WaitGroup
	once sync.Once
	m    *metrics
	seq  atomic.Int64

	mu   sync.Mutex
	subs map[*sub]struct{}
}

type sub struct {
	ch     chan []byte
	lagged atomic.Bool
}

func newHub(m *metrics) *hub {
	h := &hub{in: make(chan scheduler.Event, 8192), acts: make(chan Event, 256), done: make(chan struct{}), m: m, subs: map[*sub]struct{}{}}
	h.wg.Add(1)
	go h.loop()
	return h
}

// Observe receives a scheduler event (scheduler.Config.Observe). It never blocks:
// when the buffer is full the event is dropped, counted, and streams resync.
func (s *Server) Observe(e scheduler.Event) {
	select {
	case s.hub.in <- e:
	default:
		s.metrics.droppedEvents.Inc()
		s.hub.lagAll()
	}
}

func (h *hub) action(action, dagID, runID, taskID string) {
	select {
	case h.acts <- Event{At: time.Now().UTC(), Kind: "action", DAGID: dagID, RunID: runID, TaskID: taskID, Action: action}:
	default:
		h.lagAll()
	}
}

func (h *hub) loop() {
	defer h.wg.Done()
	for {
		select {
		case <-h.done:
			return
		case e := <-h.in:
			h.m.observe(e)
			ev := Event{At: e.At.UTC(), DAGID: e.DAGID, RunID: e.RunID, TaskID: e.TaskID, Try: e.Try}
			if e.TaskID == "" {
				ev.Kind, ev.RunState = "run", e.RunState
			} else {
				ev.Kind, ev.State = "task", e.State
			}
			h.publish(ev)
		case ev := <-h.acts:
			h.publish(ev)
		}
	}
}

func (h *hub) publish(ev Event) {
	ev.Seq = h.seq.Add(1)
	b, err := json.Marshal(ev)
	if err != nil {
		return
	}
	msg := fmt.Appendf(nil, "id: %d\nevent: change\ndata: %s\n\n", ev.Seq, b)
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		select {
		case s.ch <- msg:
		default:
			s.lagged.Store(true)
		}
	}
}

func (h *hub) lagAll() {
	h.seq.Add(1)
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		s.lagged.Store(true)
	}
}

func (h *hub) subscribe() *sub {
	s := &sub{ch: make(chan []byte, 256)}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	n := len(h.subs)
	h.mu.Unlock()
	h.m.sseClients.Set(float64(n))
	return s
}

func (h *hub) unsubscribe(s *sub) {
	h.mu.Lock()
	delete(h.subs, s)
	n := len(h.subs)
	h.mu.Unlock()
	h.m.sseClients.Set(float64(n))
}

func (h *hub) close() {
	h.once.Do(func() { close(h.done) })
	h.wg.Wait()
}

// sseKeepAlive is how often an idle stream gets a comment, so proxies keep it.
const sseKeepAlive = 15 * time.Second

// sseWriteTimeout bounds each write of the event stream. The server's
// WriteTimeout would end a long-lived stream, so the stream sets its own
// deadline before every write instead: a client that stops reading is dropped.
const sseWriteTimeout = 30 * time.Second

func (s *Server) streamEvents(w http.ResponseWriter, r *http.Request, _ *Principal) error {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	// Errors are ignored: a ResponseWriter without deadlines (tests) just has none.
	_ = rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout))
	w.WriteHeader(http.StatusOK)
	sb := s.hub.subscribe()
	defer s.hub.unsubscribe(sb)
	if _, err := fmt.Fprintf(w, "retry: 3000\nevent: hello\ndata: {\"seq\":%d}\n\n", s.hub.seq.Load()); err != nil {
		return nil
	}
	if err := rc.Flush(); err != nil {
		return nil
	}
	tick := time.NewTicker(sseKeepAlive)
	defer tick.Stop()
	for {
		var msg []byte
		select {
		case <-r.Context().Done():
			return nil
		case <-s.hub.done:
			return nil
		case <-tick.C:
			msg = []byte(": keep-alive\n\n")
		case msg = <-sb.ch:
		}
		_ = rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout))
		if sb.lagged.Swap(false) {
			msg = append(fmt.Appendf(nil, "event: resync\ndata: {\"seq\":%d}\n\n", s.hub.seq.Load()), msg...)
		}
		if _, err := w.Write(msg); err != nil {
			return nil
		}
		if err := rc.Flush(); err != nil {
			return nil
		}
	}
}
