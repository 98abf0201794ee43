package scheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/trellisdag/trellis/executor"
	"github.com/trellisdag/trellis/storage"
	"github.com/trellisdag/trellis/task"
)

// evaluate applies a task's trigger rule to its upstream counts, and the setup
// constraint (see decide); the task must be in state none.
func (s *Scheduler) evaluate(rs *runState, i int) {
	mapped := rs.plan.maps[i] != nil
	switch rs.plan.decide(rs, i) {
	case task.DecideRun:
		if !s.pastOK(context.Background(), rs, i) {
			rs.waitPast = append(rs.waitPast, i)
			return
		}
		if mapped {
			s.queueExpand(rs, i)
			return
		}
		s.set(rs, i, task.StateScheduled, nil)
		s.ready.push(rs, i)
	case task.DecideSkip:
		if rs.virtual(i) {
			s.decideInstances(rs, i, task.StateSkipped)
			return
		}
		s.set(rs, i, task.StateSkipped, nil)
	case task.DecideUpstreamFailed:
		if rs.virtual(i) {
			s.decideInstances(rs, i, task.StateUpstreamFailed)
			return
		}
		s.set(rs, i, task.StateUpstreamFailed, nil)
	}
}

// propagate counts every newly finished task in its downstream tasks and evaluates
// those still undecided; decisions that finish a task (skip, upstream_failed)
// propagate in turn. It touches only the direct downstream tasks of what changed.
func (s *Scheduler) propagate(rs *runState) {
	for len(rs.done) > 0 {
		i := rs.done[len(rs.done)-1]
		rs.done = rs.done[:len(rs.done)-1]
		st := rs.tis[i].State
		if st == task.StateRemoved {
			continue // removed instances count for no one
		}
		for _, d := range rs.plan.down[rs.tis[i].of] {
			rs.tis[d].counts.Add(st)
			if rs.undecided(d) {
				s.evaluate(rs, d)
			}
		}
		// A setup also decides the tasks of its scope that are not directly
		// downstream of it (Airflow's setup constraint).
		if rs.plan.watchers != nil && rs.tis[i].mapIndex < 0 {
			for _, d := range rs.plan.watchers[i] {
				if rs.undecided(d) {
					s.evaluate(rs, d)
				}
			}
		}
	}
}

// maybeFinish ends a running run whose tasks have all finished: failed if a leaf
// task failed or is upstream_failed, else success (Airflow's rule). Teardowns
// are not leaves unless they fail the run (plan.leaf), so a run whose work
// failed stays failed although its cleanup succeeded.
func (s *Scheduler) maybeFinish(rs *runState) {
	if rs.unfinished > 0 || rs.rec.State != task.RunRunning {
		return
	}
	to := task.RunSuccess
	for i, leaf := range rs.plan.leaf {
		// An expanded mapped task's state is its instances' summary: failed
		// or upstream_failed when one of them is (every instance of a mapped
		// leaf is a leaf, as in Airflow).
		if st := rs.tis[i].State; leaf && (st == task.StateFailed || st == task.StateUpstreamFailed) {
			to = task.RunFailed
		}
	}
	s.endRun(rs, to, "")
}

func (s *Scheduler) endRun(rs *runState, to task.RunState, reason string) {
	now := s.now()
	s.batch.SetRun(storage.RunChange{Run: rs.rec.ID, From: rs.rec.State, To: to, At: now})
	s.touched[rs.rec.ID] = true
	s.runEvent(rs, to, reason)
	s.events = append(s.events, Event{At: now, DAGID: rs.rec.DAGID, RunID: rs.rec.RunID, RunState: to, Error: reason})
	if to == task.RunSuccess {
		rs.plan.noteSuccess(rs.rec)
	}
	s.unload(rs)
	rs.rec.State = to
}

// handleReport applies an executor's report to its task instance. Reports about a
// try that is no longer current (a run that timed out, a stale try) are ignored.
func (s *Scheduler) handleReport(r executor.Report) {
	rs := s.runs[r.Run]
	if rs == nil {
		return
	}
	i, ok := rs.slot(r.TaskID)
	if !ok {
		return
	}
	ti := &rs.tis[i]
	t := ti.of
	poke := ti.State == task.StateDeferred && ti.poking
	if ti.Try != r.Try || !(ti.State.Active() || poke) {
		return
	}
	if poke && r.Status == executor.Started {
		return // a deferred sensor stays deferred while it pokes
	}
	if poke {
		s.pokeEnded(ti)
	}
	at := r.At.UTC()
	if at.IsZero() {
		at = s.now()
	}
	where := func(t *storage.TaskInstance) {
		if r.Host != "" {
			t.Host = r.Host
		}
		if r.Pod != "" {
			t.Pod = r.Pod
		}
	}
	end := func(t *storage.TaskInstance) {
		where(t)
		if t.Started.IsZero() {
			t.Started = at
		}
		t.Ended, t.ExitCode, t.Error = at, r.ExitCode, r.Error
	}
	if r.Status == executor.Succeeded {
		if msg := s.checkMapSource(rs, i, r.Result); msg != "" {
			r.Status, r.NoRetry, r.Error = executor.Failed, true, msg
		}
	}
	switch r.Status {
	case executor.Deferred:
		if rs.plan.settings[t].Kind != task.KindSensor {
			s.set(rs, i, task.StateFailed, func(t *storage.TaskInstance) {
				end(t)
				t.Error = "the task returned task.ErrNotDone, which only sensors may return"
			})
			break
		}
		// The next poke is timed by the scheduler's clock, as its timers are.
		s.deferSensor(rs, i, s.now(), where)
	case executor.Started:
		if ti.State == task.StateQueued {
			s.set(rs, i, task.StateRunning, func(t *storage.TaskInstance) { where(t); t.Started = at })
		}
		return
	case executor.Succeeded:
		if limit := s.resultLimit(rs.plan, t); int64(len(r.Result)) > limit {
			s.set(rs, i, task.StateFailed, func(t *storage.TaskInstance) {
				end(t)
				t.Error = fmt.Sprintf("result of %d bytes exceeds the limit of %d bytes (set task.MaxResultSize on the task, "+
					"or runner.Config.MaxResultSize, default %d); it was not stored", len(r.Result), limit, DefaultMaxResultSize)
			})
			break
		}
		if len(r.Result) > 0 && string(r.Result) != "null" {
			s.batch.PutXCom(rs.rec.ID, r.TaskID, r.Result)
		}
		s.succeeded(rs, i, r.Result, end)
		if rs.tis[i].State == task.StateSuccess {
			s.recordAssets(rs, i, r.Try)
		}
	case executor.Skipped:
		s.set(rs, i, task.StateSkipped, end)
	case executor.Failed:
		if !r.NoRetry && ti.Try < ti.MaxTries {
			next := at.Add(rs.plan.policy[t].Delay(ti.Try + 1))
			s.set(rs, i, task.StateUpForRetry, func(t *storage.TaskInstance) { end(t); t.NextRetry = next })
			s.timers.add(timerItem{at: next, kind: timerRetry, run: rs, task: i, try: ti.Try})
		} else {
			s.set(rs, i, task.StateFailed, end)
		}
	case executor.Interrupted:
		// The try may have run: it ends here and its number stays used.
		if ti.interrupted >= s.cfg.MaxInterrupted {
			s.set(rs, i, task.StateFailed, func(t *storage.TaskInstance) {
				end(t)
				t.Error = fmt.Sprintf("%sthe runner died while this task ran, %d tries in a row: the task is the likely cause (%s)",
					executor.InterruptedPrefix, ti.interrupted+1, strings.TrimPrefix(r.Error, executor.InterruptedPrefix))
			})
			break
		}
		ti.interrupted++
		s.set(rs, i, task.StateUpForRetry, func(t *storage.TaskInstance) { end(t); t.MaxTries++; t.NextRetry = at })
		s.timers.add(timerItem{at: at, kind: timerRetry, run: rs, task: i, try: ti.Try})
	case executor.Lost:
		ti.lost++
		if ti.lost > s.cfg.MaxLost {
			s.set(rs, i, task.StateFailed, func(t *storage.TaskInstance) {
				end(t)
				t.Error = fmt.Sprintf("lost %d times before it could run: %s", ti.lost, r.Error)
			})
			break
		}
		s.set(rs, i, task.StateScheduled, func(t *storage.TaskInstance) {
			t.Try--
			t.Started, t.Host, t.Pod, t.Error = time.Time{}, "", "", ""
		})
		s.ready.push(rs, i)
	}
	s.propagate(rs)
	s.maybeFinish(rs)
}

// resultLimit is the largest result task i of p may store.
func (s *Scheduler) resultLimit(p *plan, i int) int64 {
	if n := p.settings[i].MaxResultSize; n > 0 {
		return n
	}
	return s.cfg.MaxResultSize
}

// succeeded records a success and applies branch and short-circuit results before
// the downstream tasks are evaluated.
func (s *Scheduler) succeeded(rs *runState, i int, result []byte, end func(*storage.TaskInstance)) {
	p := rs.plan
	if rs.tis[i].mapIndex >= 0 {
		s.set(rs, i, task.StateSuccess, end) // branches and short-circuits are never mapped
		return
	}
	switch p.settings[i].Kind {
	case task.KindBranch:
		var chosen []string
		if err := json.Unmarshal(result, &chosen); err != nil {
			s.set(rs, i, task.StateFailed, func(t *storage.TaskInstance) { end(t); t.Error = "branch result: " + err.Error() })
			return
		}
		// Follow the chosen tasks; skip every other direct downstream task, except
		// one that is also downstream of a chosen task (Airflow's skip_all_except).
		keep := map[int]bool{}
		var mark func(int)
		mark = func(j int) {
			for _, d := range p.down[j] {
				if !keep[d] {
					keep[d] = true
					mark(d)
				}
			}
		}
		for _, id := range chosen {
			if j, ok := p.index[id]; ok {
				keep[j] = true
				mark(j)
			}
		}
		for _, d := range p.down[i] {
			if !keep[d] {
				s.skipUndecided(rs, d, "not chosen by branch "+p.tasks[i].ID())
			}
		}
	case task.KindShortCircuit:
		var ok bool
		if err := json.Unmarshal(result, &ok); err == nil && !ok {
			seen := map[int]bool{}
			var skip func(int)
			skip = func(j int) {
				for _, d := range p.down[j] {
					if seen[d] {
						continue
					}
					seen[d] = true
					// A teardown still runs (Airflow's ShortCircuitOperator
					// leaves teardowns to their trigger rule).
					if !p.settings[d].Teardown {
						s.skipUndecided(rs, d, "short-circuited by "+p.tasks[i].ID())
					}
					skip(d)
				}
			}
			skip(i)
		}
	}
	s.set(rs, i, task.StateSuccess, end)
}
