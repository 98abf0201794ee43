package scheduler

import (
	"context"
	"errors"
	"time"

	"github.com/trellisdag/trellis/storage"

	"github.com/trellisdag/trellis/task"
)

// pastOK reports whether task i of rs may run as far as depends_on_past and
// wait_for_downstream go: the same task of the previous run (by logical date)
// succeeded or was skipped, and, for wait_for_downstream, so did that task's
// direct downstream tasks there. A task with no previous run, or whose previous
// run did not have it (added since, or removed there), may run.
func (s *Scheduler) pastOK(ctx context.Context, rs *runState, i int) bool {
	set := rs.plan.settings[i]
	if !set.DependsOnPast {
		return true
	}
	ids := []string{rs.plan.tasks[i].ID()}
	if set.WaitForDownstream {
		for _, d := range rs.plan.down[i] {
			ids = append(ids, rs.plan.tasks[d].ID())
		}
	}
	done := func(st task.State) bool { return st == task.StateSuccess || st == task.StateSkipped }
	// The previous run in memory (active), if it is the latest earlier one.
	var prev *runState
	for _, id := range s.order {
		o := s.runs[id]
		if o.plan == rs.plan && o.rec.LogicalDate.Before(rs.rec.LogicalDate) &&
			(prev == nil || o.rec.LogicalDate.After(prev.rec.LogicalDate)) {
			prev = o
		}
	}
	stored, found, err := s.st.PreviousRun(ctx, rs.rec.DAGID, rs.rec.LogicalDate, "")
	if err != nil {
		s.cfg.Logger.Warn("depends_on_past: read the previous run", "dag", rs.rec.DAGID, "err", err)
		return false
	}
	if prev != nil && (!found || !stored.LogicalDate.After(prev.rec.LogicalDate)) {
		for _, id := range ids {
			if !done(prev.tis[prev.plan.index[id]].State) {
				return false
			}
		}
		return true
	}
	if !found {
		return true
	}
	for _, id := range ids {
		ti, err := s.st.TaskInstance(ctx, stored.ID, id)
		if errors.Is(err, storage.ErrNotFound) {
			// An expanded mapped task has no row of its own: its state
			// is its instances' summary.
			ti.State, err = s.mappedState(ctx, stored.ID, id)
		}
		if errors.Is(err, storage.ErrNotFound) || (err == nil && ti.State == task.StateRemoved) {
			continue // the previous run did not have the task: nothing to wait for
		}
		if err != nil {
			s.cfg.Logger.Warn("depends_on_past: read the previous task instance", "dag", rs.rec.DAGID, "task", id, "err", err)
			return false
		}
		if !done(ti.State) {
			return false
		}
	}
	return true
}

// recheckPast evaluates again the tasks that wait for their previous run, in DAGs
// where a task's end was committed since the last check (pastOK reads the store,
// so only committed ends can release a waiting task).
func (s *Scheduler) recheckPast(ctx context.Context) {
	for _, id := range s.order {
		rs := s.runs[id]
		if len(rs.waitPast) == 0 || rs.rec.State != task.RunRunning || rs.checked == rs.plan.durable {
			continue
		}
		rs.checked = rs.plan.durable
		waiting := rs.waitPast
		rs.waitPast = nil
		for _, i := range waiting {
			if rs.undecided(i) {
				s.evaluate(rs, i)
			}
		}
		s.propagate(rs)
		s.maybeFinish(rs)
	}
}

// prevSuccess returns the data interval start of the latest earlier successful
// run. The DAG's latest success is cached: for a run after it (the usual case) it
// is the answer; for an older run (a backfill) the store is asked.
func (s *Scheduler) prevSuccess(rs *runState) time.Time {
	if rs.prevLoaded {
		return rs.prevSuccess
	}
	p := rs.plan
	if !p.lastOK.loaded {
		r, ok, err := s.st.PreviousRun(context.Background(), p.dag.ID(), time.Unix(1<<40, 0), task.RunSuccess)
		if err != nil {
			return time.Time{}
		}
		p.lastOK.loaded = true
		if ok {
			p.lastOK.logical, p.lastOK.start, p.lastOK.found = r.LogicalDate, r.IntervalStart, true
		}
	}
	switch {
	case !p.lastOK.found:
		rs.prevLoaded = true
	case p.lastOK.logical.Before(rs.rec.LogicalDate):
		rs.prevSuccess, rs.prevLoaded = p.lastOK.start, true
	default:
		r, ok, err := s.st.PreviousRun(context.Background(), rs.rec.DAGID, rs.rec.LogicalDate, task.RunSuccess)
		if err != nil {
			return time.Time{}
		}
		rs.prevLoaded = true
		if ok {
			rs.prevSuccess = r.IntervalStart
		}
	}
	return rs.prevSuccess
}

// noteSuccess updates the DAG's cached latest success.
func (p *plan) noteSuccess(r storage.Run) {
	if p.lastOK.loaded && (!p.lastOK.found || r.LogicalDate.After(p.lastOK.logical)) {
		p.lastOK.logical, p.lastOK.start, p.lastOK.found = r.LogicalDate, r.IntervalStart, true
	}
}

// pastPending reports whether a task waits for its previous run in a DAG where a
// task finished since the last check.
func (s *Scheduler) pastPending() bool {
	for _, id := range s.order {
		rs := s.runs[id]
		if len(rs.waitPast) > 0 && rs.rec.State == task.RunRunning && rs.checked != rs.plan.durable {
			return true
		}
	}
	return false
}

// mappedState is the summary state of mapped task id's instances in a stored
// run, or ErrNotFound when it has none.
func (s *Scheduler) mappedState(ctx context.Context, run int64, id string) (task.State, error) {
	counts, err := s.st.InstanceCounts(ctx, run, id)
	if err != nil {
		return "", err
	}
	if st, ok := task.SummaryState(counts); ok {
		return st, nil
	}
	return "", storage.ErrNotFound
}
