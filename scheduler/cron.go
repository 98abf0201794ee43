package scheduler

import (
	"context"
	"fmt"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/internal/runs"
	"github.com/trellisdag/trellis/storage"
	"github.com/trellisdag/trellis/task"
)

// cron is the scheduling state of one DAG with a schedule.
type cron struct {
	last    *dag.DataInterval // the latest scheduled interval, as persisted
	next    dag.DataInterval  // what NextDataInterval says comes after last
	hasNext bool
	timerAt time.Time // the end of next, once a timer is set for it
}

// maxRunsPerCommit bounds how many scheduled runs one transaction creates.
const maxRunsPerCommit = 1000

// loadCron reads every scheduled DAG's paused flag and last interval from the
// store, and what comes next.
func (s *Scheduler) loadCron(ctx context.Context) error {
	if !s.cfg.Cron {
		return nil
	}
	if err := s.registerAssetConsumers(ctx); err != nil {
		return err
	}
	recs, err := s.st.DAGs(ctx)
	if err != nil {
		return fmt.Errorf("scheduler: load DAGs: %w", err)
	}
	byID := make(map[string]storage.DAG, len(recs))
	for _, r := range recs {
		byID[r.ID] = r
	}
	now := s.cfg.Clock.Now()
	for _, p := range s.plans {
		p.paused = byID[p.dag.ID()].Paused
		if !p.dag.Scheduled() {
			continue
		}
		rec := byID[p.dag.ID()]
		c := p.cron
		if c == nil {
			c = &cron{}
			p.cron = c
		}
		c.last = nil
		if !rec.LastIntervalStart.IsZero() || !rec.LastIntervalEnd.IsZero() {
			c.last = &dag.DataInterval{Start: rec.LastIntervalStart, End: rec.LastIntervalEnd}
		}
		c.next, c.hasNext = p.dag.NextDataInterval(c.last, now)
	}
	return nil
}

// createDue creates the scheduled runs whose interval has ended, for DAGs that are
// not paused and are under their max active runs, all in one transaction (a
// thousand DAGs due at the same minute cost one commit), and sets a timer for each
// DAG's next interval end.
func (s *Scheduler) createDue(ctx context.Context) error {
	if !s.cfg.Cron {
		return nil
	}
	now := s.cfg.Clock.Now()
	for {
		var groups []storage.RunGroup
		var plans []*plan
		var nexts []dag.DataInterval
		var oks []bool
		total := 0
		for _, p := range s.plans {
			c := p.cron
			if c == nil || p.paused || !c.hasNext || c.next.End.After(now) {
				continue
			}
			room := s.maxActiveRuns(p) - s.activeRunsOf(p)
			var batch []storage.Run
			iv, ok := c.next, c.hasNext
			for ok && !iv.End.After(now) && len(batch) < room && total < maxRunsPerCommit {
				batch = append(batch, runs.Record(p.dag, p.version, runs.Spec{Type: task.RunScheduled, LogicalDate: iv.Start,
					IntervalStart: iv.Start, IntervalEnd: iv.End}, now))
				total++
				last := iv
				iv, ok = p.dag.NextDataInterval(&last, now)
			}
			if len(batch) == 0 {
				continue
			}
			groups = append(groups, storage.RunGroup{DAGID: p.dag.ID(), Runs: batch, Tasks: p.seeds(), Advance: true})
			plans, nexts, oks = append(plans, p), append(nexts, iv), append(oks, ok)
		}
		if len(groups) == 0 {
			break
		}
		created, err := s.st.CreateRuns(ctx, groups)
		if err != nil {
			return fmt.Errorf("scheduler: create scheduled runs: %w", err)
		}
		for k, p := range plans {
			last := groups[k].Runs[len(groups[k].Runs)-1]
			p.cron.last = &dag.DataInterval{Start: last.IntervalStart, End: last.IntervalEnd}
			p.cron.next, p.cron.hasNext = nexts[k], oks[k]
		}
		for _, r := range created {
			s.adopt(r, s.plans[r.DAGID])
			s.events = append(s.events, Event{At: now.UTC(), DAGID: r.DAGID, RunID: r.RunID, RunState: task.RunQueued})
		}
	}
	for _, p := range s.plans {
		c := p.cron
		if c != nil && !p.paused && c.hasNext && c.next.End.After(now) && !c.timerAt.Equal(c.next.End) {
			c.timerAt = c.next.End
			s.timers.add(timerItem{at: c.next.End, kind: timerCron})
		}
	}
	return nil
}

func (s *Scheduler) maxActiveRuns(p *plan) int {
	if s.cfg.MaxActiveRuns > 0 {
		return s.cfg.MaxActiveRuns
	}
	return p.dag.MaxActiveRunsLimit()
}

// activeRunsOf counts the DAG's runs that are queued or running.
func (s *Scheduler) activeRunsOf(p *plan) int { return p.held }

// seeds are the task instances of the DAG's new runs (computed once).
func (p *plan) seeds() []storage.TaskSeed {
	if p.seedList == nil {
		p.seedList = runs.Seeds(p.dag)
	}
	return p.seedList
}

// adopt holds a run this scheduler has just created (every task instance in state
// none) without reading it back from the store.
func (s *Scheduler) adopt(r storage.Run, p *plan) {
	params, err := p.dag.ResolveConf(r.Conf)
	if err != nil {
		params = map[string]any{}
	}
	rs := &runState{rec: r, plan: p, tis: make([]tiState, len(p.tasks)), params: params, unfinished: len(p.tasks),
		activeOf: make([]int, len(p.tasks))}
	for i, t := range p.tasks {
		rs.tis[i].TaskInstance = storage.TaskInstance{Run: r.ID, TaskID: t.ID(), State: task.StateNone, MaxTries: p.policy[i].Retries + 1}
		rs.tis[i].counts.Total = len(p.up[i])
		rs.tis[i].of, rs.tis[i].mapIndex = i, -1
	}
	s.runs[r.ID] = rs
	s.order = append(s.order, r.ID)
	p.held++
	s.addDeadlines(rs)
}
