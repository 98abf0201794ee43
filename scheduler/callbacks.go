package scheduler

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/trellisdag/trellis/storage"
	"github.com/trellisdag/trellis/task"
)

// Callbacks. The scheduler never calls a callback and never waits on the
// network: a change that has callbacks (a task's try ended in success, a
// retry or a failure; a run ended; a run missed its deadline) writes an
// outbox entry in the same batch as the change, and Config.OutboxWritten is
// told after the commit. A delivery worker (internal/outbox) calls the
// callbacks from the outbox, at least once, so a crash between the commit and
// the call delivers it after the restart.

// taskEvent records the outbox entry of a task's change from a try's end, when
// the task has callbacks for it.
func (s *Scheduler) taskEvent(rs *runState, i int, from task.State, ti storage.TaskInstance) {
	if !from.Active() && from != task.StateDeferred {
		return // not the end of a try: a mark, a clear, a trigger rule
	}
	var kind task.EventKind
	switch ti.State {
	case task.StateSuccess:
		kind = task.EventTaskSuccess
	case task.StateUpForRetry:
		kind = task.EventTaskRetry
	case task.StateFailed:
		kind = task.EventTaskFailure
	default:
		return
	}
	n := len(task.CallbacksOf(rs.plan.tasks[rs.tis[i].of], kind))
	if n == 0 {
		return
	}
	e := s.event(rs, kind)
	e.TaskID, e.Try, e.MaxTries, e.State, e.Error = ti.TaskID, ti.Try, ti.MaxTries, string(ti.State), ti.Error
	s.putEvent(rs, e, fmt.Sprintf("task/%d/%s/%d/%s", rs.rec.ID, ti.TaskID, ti.Try, kind), n)
}

// runEvent records the outbox entry of a run's end, when its DAG has
// callbacks for it.
func (s *Scheduler) runEvent(rs *runState, to task.RunState, reason string) {
	kind := task.EventRunSuccess
	if to == task.RunFailed {
		kind = task.EventRunFailure
	}
	n := len(rs.plan.dag.Callbacks(kind))
	if n == 0 {
		return
	}
	e := s.event(rs, kind)
	e.State, e.Error = string(to), reason
	s.putEvent(rs, e, fmt.Sprintf("run/%d/%s/%d", rs.rec.ID, kind, e.At.UnixMicro()), n)
}

// deadlineDue records a deadline alert of a run that has not finished.
func (s *Scheduler) deadlineDue(rs *runState, idx int) {
	if rs.rec.State.Finished() {
		return
	}
	dls := rs.plan.dag.Deadlines()
	if idx >= len(dls) {
		return
	}
	e := s.event(rs, task.EventDeadlineMissed)
	e.State = string(rs.rec.State)
	e.Error = fmt.Sprintf("run %s of dag %s has not finished %s after %s", rs.rec.RunID, rs.rec.DAGID, dls[idx].After, dls[idx].From)
	// One entry: the key's index is the alert's, among the DAG's alerts.
	e.Key = fmt.Sprintf("run/%d/deadline#%d", rs.rec.ID, idx)
	s.putEntry(rs, e)
	s.touched[rs.rec.ID] = true
}

// addDeadlines sets the timers of a loaded run's deadline alerts.
func (s *Scheduler) addDeadlines(rs *runState) {
	for idx, dl := range rs.plan.dag.Deadlines() {
		s.timers.add(timerItem{at: dl.At(rs.rec.IntervalEnd, rs.rec.Created), kind: timerDeadline, run: rs, task: idx})
	}
}

func (s *Scheduler) event(rs *runState, kind task.EventKind) task.Event {
	return task.Event{Kind: kind, DAGID: rs.rec.DAGID, RunID: rs.rec.RunID, LogicalDate: rs.rec.LogicalDate,
		DataIntervalStart: rs.rec.IntervalStart, DataIntervalEnd: rs.rec.IntervalEnd, At: s.now()}
}

// putEvent writes one outbox entry per callback of the event, keyed
// base#index.
func (s *Scheduler) putEvent(rs *runState, e task.Event, base string, callbacks int) {
	for j := range callbacks {
		e.Key = base + "#" + strconv.Itoa(j)
		s.putEntry(rs, e)
	}
}

func (s *Scheduler) putEntry(rs *runState, e task.Event) {
	b, err := json.Marshal(e)
	if err != nil { // an Event is plain data
		s.cfg.Logger.Error("encode a callback event", "key", e.Key, "err", err)
		return
	}
	s.batch.PutOutbox(storage.OutboxEntry{Key: e.Key, DAGID: rs.rec.DAGID, Run: rs.rec.ID, Kind: string(e.Kind), Event: b,
		Created: e.At, NextAt: e.At})
	s.outboxWritten = true
}
