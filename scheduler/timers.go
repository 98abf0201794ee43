package scheduler

import (
	"container/heap"
	"context"
	"fmt"
	"time"

	"github.com/trellisdag/trellis/storage"
	"github.com/trellisdag/trellis/task"
)

type timerKind int

const (
	timerRetry timerKind = iota
	timerRunTimeout
	timerCron     // the end of a scheduled DAG's next interval
	timerPoke     // a deferred sensor's next poke
	timerDeadline // a run's deadline alert (task is the alert's index)
)

type timerItem struct {
	at   time.Time
	kind timerKind
	run  *runState
	task int
	try  int
}

type timerHeap []timerItem

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(timerItem)) }
func (h *timerHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

func (h *timerHeap) add(it timerItem) { heap.Push(h, it) }

// fireTimers handles every timer that is due: retries become scheduled; runs past
// their timeout fail.
func (s *Scheduler) fireTimers() {
	now := s.cfg.Clock.Now()
	for len(s.timers) > 0 && !s.timers[0].at.After(now) {
		it := heap.Pop(&s.timers).(timerItem)
		rs := it.run
		if it.kind == timerCron {
			continue // createDue runs at every step
		}
		if !s.current(rs) {
			continue
		}
		switch it.kind {
		case timerRetry:
			if rs.tis[it.task].State == task.StateUpForRetry && rs.tis[it.task].Try == it.try {
				s.set(rs, it.task, task.StateScheduled, nil)
				s.ready.push(rs, it.task)
			}
		case timerRunTimeout:
			if rs.rec.State == task.RunRunning {
				s.timeoutRun(rs)
			}
		case timerPoke:
			s.pokeDue(rs, it.task, it.try)
		case timerDeadline:
			s.deadlineDue(rs, it.task)
		}
	}
}

// timeoutRun fails a run that exceeded its run timeout: tries in flight are
// stopped and every unfinished task is skipped (Airflow's dagrun_timeout).
func (s *Scheduler) timeoutRun(rs *runState) {
	reason := fmt.Sprintf("run timed out after %s", rs.plan.dag.RunTimeoutLimit())
	for i := range rs.tis {
		ti := &rs.tis[i]
		if ti.State.Finished() || rs.virtual(i) {
			continue
		}
		if ti.State.Active() || ti.poking {
			t := s.try(rs, i)
			if ex := s.executorFor(task.ExecutorKind(ti.Executor)); ex != nil {
				// The kill is safe before the commit: the try's report is ignored either way.
				_ = ex.Kill(context.Background(), t.Key, reason)
			}
			s.pokeEnded(ti)
		}
		s.set(rs, i, task.StateSkipped, func(t *storage.TaskInstance) {
			t.Error = reason
			if !t.Started.IsZero() && t.Ended.IsZero() {
				t.Ended = s.now()
			}
		})
	}
	rs.done = rs.done[:0]
	s.endRun(rs, task.RunFailed, reason)
}
