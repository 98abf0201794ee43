package scheduler

import (
	"context"
	"fmt"
	"time"

	"github.com/trellisdag/trellis/executor"
	"github.com/trellisdag/trellis/storage"
	"github.com/trellisdag/trellis/task"
)

// Sensors. A sensor's first poke is an ordinary try: scheduled, queued (it
// takes its slots), running. When a poke finds the condition not met the try
// becomes deferred: its slots are released, and its next poke time (durable,
// next_retry_at) is a timer. When the timer fires the scheduler pokes again in
// the runner, without slots and without a new try number, at most
// Config.MaxPokes at once; the poke's outcome ends the try as any try's would
// (success with the sensor's value, failure with retries, skip) or defers it
// again. A sensor that has waited its SensorTimeout fails without retry, or is
// skipped under SoftFail.

// pokeDue handles a deferred sensor's poke timer.
func (s *Scheduler) pokeDue(rs *runState, i, try int) {
	ti := &rs.tis[i]
	if ti.State != task.StateDeferred || ti.Try != try || ti.poking {
		return
	}
	if s.sensorTimedOut(rs, i, s.now()) {
		s.propagate(rs)
		s.maybeFinish(rs)
		return
	}
	ti.poking = true
	it := startItem{run: rs, task: i, poke: true}
	if s.pokes >= s.cfg.MaxPokes {
		s.pokeQueue = append(s.pokeQueue, it)
		return
	}
	s.pokes++
	s.starts = append(s.starts, it)
}

// pokeEnded frees a poke's place and lets the next waiting poke start.
func (s *Scheduler) pokeEnded(ti *tiState) {
	if !ti.poking {
		return
	}
	ti.poking = false
	s.pokes--
	for len(s.pokeQueue) > 0 && s.pokes < s.cfg.MaxPokes {
		it := s.pokeQueue[0]
		s.pokeQueue = s.pokeQueue[1:]
		if !s.current(it.run) || it.run.tis[it.task].State != task.StateDeferred {
			continue
		}
		s.pokes++
		s.starts = append(s.starts, it)
	}
}

// startPoke hands a deferred sensor's poke to the local executor; its outcome
// comes back as a report about the same try.
func (s *Scheduler) startPoke(ctx context.Context, rs *runState, i int) {
	if !s.current(rs) || rs.tis[i].State != task.StateDeferred || !rs.tis[i].poking {
		return
	}
	t := s.try(rs, i)
	if err := s.cfg.Local.Start(ctx, t); err != nil {
		s.Report(executor.Report{Key: t.Key, Status: executor.Failed, Error: "poke: " + err.Error(), At: s.now()})
	}
}

// deferSensor records that a poke found the condition not met: the sensor
// waits for its next poke, or times out.
func (s *Scheduler) deferSensor(rs *runState, i int, at time.Time, where func(*storage.TaskInstance)) {
	if s.sensorTimedOut(rs, i, at) {
		return
	}
	ti := &rs.tis[i]
	pol := task.SensorPolicyOf(rs.plan.tasks[i])
	first := ti.Started
	if first.IsZero() {
		first = at
	}
	pokes := ti.Pokes + 1
	next := at.Add(pol.NextPoke(rs.rec.DAGID, ti.TaskID, first, pokes, at.Sub(first)))
	s.set(rs, i, task.StateDeferred, func(t *storage.TaskInstance) {
		where(t)
		if t.Started.IsZero() {
			t.Started = at
		}
		t.NextRetry, t.Pokes, t.Error, t.ExitCode = next, pokes, "", nil
	})
	s.timers.add(timerItem{at: next, kind: timerPoke, run: rs, task: i, try: ti.Try})
}

// sensorTimedOut ends a deferred (or poking) sensor that has waited its
// timeout since its first poke: failed without retry, or skipped under
// SoftFail. It reports whether it did.
func (s *Scheduler) sensorTimedOut(rs *runState, i int, at time.Time) bool {
	ti := &rs.tis[i]
	pol := task.SensorPolicyOf(rs.plan.tasks[i])
	if ti.Started.IsZero() || at.Sub(ti.Started) < pol.Timeout {
		return false
	}
	msg := fmt.Sprintf("%v: waited %s, its SensorTimeout is %s (task.SensorTimeout; default %s)",
		task.ErrSensorTimeout, at.Sub(ti.Started).Round(time.Second), pol.Timeout, task.DefaultSensorTimeout)
	to := task.StateFailed
	if pol.SoftFail {
		to, msg = task.StateSkipped, msg+"; skipped (SoftFail)"
	}
	if ti.poking {
		// The poke in flight is stopped; its report is ignored.
		_ = s.cfg.Local.Kill(context.Background(), s.try(rs, i).Key, "sensor timed out")
		s.pokeEnded(ti)
	}
	s.set(rs, i, to, func(t *storage.TaskInstance) { t.Ended, t.Error, t.NextRetry = at, msg, time.Time{} })
	return true
}
