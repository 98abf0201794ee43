package scheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/trellisdag/trellis/storage"
	"github.com/trellisdag/trellis/task"
)

// Mapping (Airflow's dynamic task mapping). A mapped task starts as one slot
// and one row in state none, like any task. When its trigger rule passes it is
// queued for expansion, which happens at the next step, once the results it
// maps over are committed: the list is read, and one instance ("resize[3]") per
// element is created in the batch (storage.Expansion) together with the
// instances' change to scheduled, so a crash never leaves half an expansion.
// Each instance is then scheduled, run, retried and reported like a task of
// its own, with the task's settings; its downstream tasks count every
// instance as one upstream (Airflow's trigger rules over instances), and the
// task's own slot shows the summary of its instances (task.SummaryState).
// An empty list skips the task; no list (the upstream stored none) makes it
// upstream_failed; a result longer than Config.MaxMapLength fails the task
// that returned it.

// slot returns the slot of the task instance id ("load", or "resize[3]").
func (rs *runState) slot(id string) (int, bool) {
	if i, ok := rs.plan.index[id]; ok {
		if rs.tis[i].expanded {
			return 0, false
		}
		return i, true
	}
	base, k := task.ParseInstanceID(id)
	i, ok := rs.plan.index[base]
	if !ok || k < 0 || k >= len(rs.tis[i].inst) {
		return 0, false
	}
	return rs.tis[i].inst[k], true
}

// virtual reports whether slot i is an expanded mapped task's own slot, which
// has no row and no tries: its instances have.
func (rs *runState) virtual(i int) bool { return rs.tis[i].expanded }

// width is how many upstream instances task i counts for in its downstream
// tasks' trigger rules: its instances that are not removed once expanded, else 1.
func (rs *runState) width(i int) int {
	ti := &rs.tis[i]
	if !ti.expanded {
		return 1
	}
	return len(ti.inst) - ti.byState[task.StateRemoved]
}

// undecided reports whether slot i waits for its trigger rule: a task in
// state none, or an expanded mapped task with instances in state none (cleared
// since: they run again when the task's rule passes, after the list is read
// again, as Airflow's verify_integrity revises map indexes).
func (rs *runState) undecided(i int) bool {
	ti := &rs.tis[i]
	if ti.expanded {
		return ti.byState[task.StateNone] > 0
	}
	return ti.State == task.StateNone && ti.mapIndex < 0
}

// skipUndecided skips slot d (a task, or an expanded mapped task's
// instances) if it is still undecided: a branch did not choose it, or a short
// circuit skips it.
func (s *Scheduler) skipUndecided(rs *runState, d int, why string) {
	if !rs.undecided(d) {
		return
	}
	if rs.virtual(d) {
		for _, j := range rs.tis[d].inst {
			if rs.tis[j].State == task.StateNone {
				s.set(rs, j, task.StateSkipped, func(t *storage.TaskInstance) { t.Error = why })
			}
		}
		return
	}
	s.set(rs, d, task.StateSkipped, func(t *storage.TaskInstance) { t.Error = why })
}

// decideInstances gives the instances in state none of expanded mapped task i
// the state its trigger rule decided (skipped or upstream_failed).
func (s *Scheduler) decideInstances(rs *runState, i int, to task.State) {
	for _, j := range rs.tis[i].inst {
		if rs.tis[j].State == task.StateNone {
			s.set(rs, j, to, nil)
		}
	}
}

// queueExpand queues mapped task i for expansion at the next step.
func (s *Scheduler) queueExpand(rs *runState, i int) {
	if rs.tis[i].expanding {
		return
	}
	rs.tis[i].expanding = true
	s.expands = append(s.expands, startItem{run: rs, task: i})
}

// runExpands expands the mapped tasks queued before the last commit.
func (s *Scheduler) runExpands(ctx context.Context) {
	items := s.readyExpands
	s.readyExpands = nil
	for _, it := range items {
		rs, i := it.run, it.task
		if !s.current(rs) {
			continue
		}
		rs.tis[i].expanding = false
		if !rs.undecided(i) || rs.rec.State != task.RunRunning {
			continue
		}
		s.expand(ctx, rs, i)
		s.propagate(rs)
		s.maybeFinish(rs)
	}
}

// expand reads mapped task i's list and creates, restores or removes its
// instances to match it; the instances in state none are scheduled.
func (s *Scheduler) expand(ctx context.Context, rs *runState, i int) {
	p := rs.plan
	m := p.maps[i]
	if m.Over != "" {
		if u := p.index[m.Over]; !rs.tis[u].State.Finished() {
			return // its trigger rule passed before the list exists: it waits for it
		}
	}
	runPK := rs.rec.ID
	items, ok, err := m.Elements(task.InputsFunc(func(id string) ([]byte, bool, error) {
		return s.st.XCom(ctx, runPK, id)
	}), rs.params)
	var from task.State
	if m.Over != "" {
		from = rs.tis[p.index[m.Over]].State
	}
	switch {
	case err != nil:
		s.unexpand(rs, i, task.StateFailed, fmt.Sprintf("the list to map over: %v", err))
		return
	case !ok && from == task.StateSuccess:
		items = nil // it succeeded with a nil list, which is not stored: an empty list
	case !ok && from == task.StateSkipped:
		s.unexpand(rs, i, task.StateSkipped, fmt.Sprintf("%q was skipped: no list to map over", m.Over))
		return
	case !ok:
		s.unexpand(rs, i, task.StateUpstreamFailed, fmt.Sprintf("%q is %s: no list to map over", m.Over, from))
		return
	}
	switch {
	case m.Over == "" && len(items) > s.cfg.MaxMapLength:
		s.unexpand(rs, i, task.StateFailed, s.tooLong(len(items)))
		return
	case len(items) == 0:
		s.unexpand(rs, i, task.StateSkipped, "mapped over an empty list")
		return
	}
	n := len(items)
	maxTries := p.policy[i].Retries + 1
	s.batch.Expand(storage.Expansion{Run: runPK, TaskID: p.tasks[i].ID(), Count: n, MaxTries: maxTries})
	s.touched[runPK] = true
	before := rs.width(i)
	if !rs.tis[i].expanded {
		rs.tis[i].expanded = true
		rs.tis[i].byState = map[task.State]int{}
		for _, j := range rs.tis[i].inst { // removed by an earlier empty list
			rs.tis[i].byState[rs.tis[j].State]++
		}
		rs.unfinished-- // the task's own slot stands for its instances now
	}
	rs.tis = slices.Grow(rs.tis, max(n-len(rs.tis[i].inst), 0))
	for k := range n {
		if k < len(rs.tis[i].inst) {
			j := rs.tis[i].inst[k]
			if rs.tis[j].State == task.StateRemoved { // restored, as the store does
				rs.tis[j].State = task.StateNone
				rs.tis[j].MaxTries = rs.tis[j].Try + maxTries
				rs.tis[i].byState[task.StateRemoved]--
				rs.tis[i].byState[task.StateNone]++
				rs.unfinished++
			}
			continue
		}
		j := len(rs.tis)
		rs.tis = append(rs.tis, tiState{TaskInstance: storage.TaskInstance{Run: runPK,
			TaskID: task.InstanceID(p.tasks[i].ID(), k), State: task.StateNone, MaxTries: maxTries}, of: i, mapIndex: k})
		rs.tis[i].inst = append(rs.tis[i].inst, j)
		rs.tis[i].byState[task.StateNone]++
		rs.unfinished++
	}
	s.removeInstances(rs, i, n) // past the list: removed, as the store does
	rs.tis[i].items = items
	for _, d := range p.down[i] {
		rs.tis[d].counts.Total += rs.width(i) - before
	}
	for _, j := range rs.tis[i].inst[:n] {
		if rs.tis[j].State == task.StateNone {
			s.set(rs, j, task.StateScheduled, nil)
			s.ready.push(rs, j)
		}
	}
	rs.tis[i].State, _ = task.SummaryState(rs.tis[i].byState)
}

// removeInstances marks the instances of mapped task i from map index from
// on removed in memory, as the store's Expansion does: they no longer count
// in their downstream tasks' trigger rules, nor in the run's unfinished work.
func (s *Scheduler) removeInstances(rs *runState, i, from int) {
	ti := &rs.tis[i]
	for _, j := range ti.inst[min(from, len(ti.inst)):] {
		st := rs.tis[j].State
		if st == task.StateRemoved {
			continue
		}
		if st.Finished() {
			for _, d := range rs.plan.down[i] {
				uncount(&rs.tis[d].counts, st)
			}
		} else {
			rs.unfinished--
		}
		rs.tis[j].State = task.StateRemoved
		ti.byState[st]--
		ti.byState[task.StateRemoved]++
	}
}

// unexpand ends mapped task i without instances: its own row gets state to
// (skipped for an empty list, failed or upstream_failed without one). Instances
// left from an earlier expansion are removed.
func (s *Scheduler) unexpand(rs *runState, i int, to task.State, msg string) {
	p := rs.plan
	if rs.tis[i].expanded {
		s.batch.Expand(storage.Expansion{Run: rs.rec.ID, TaskID: p.tasks[i].ID(), Count: 0, MaxTries: p.policy[i].Retries + 1})
		before := rs.width(i)
		s.removeInstances(rs, i, 0)
		ti := &rs.tis[i]
		ti.expanded, ti.byState, ti.items = false, nil, nil
		ti.TaskInstance = storage.TaskInstance{Run: rs.rec.ID, TaskID: p.tasks[i].ID(), State: task.StateNone, MaxTries: p.policy[i].Retries + 1}
		rs.unfinished++
		for _, d := range p.down[i] {
			rs.tis[d].counts.Total += 1 - before
		}
	}
	s.set(rs, i, to, func(t *storage.TaskInstance) { t.Error = msg })
}

// tooLong is the error of a list longer than Config.MaxMapLength.
func (s *Scheduler) tooLong(n int) string {
	return fmt.Sprintf("a list of %d elements to map over exceeds the max map length of %d (runner.Config.MaxMapLength or serve --max-map-length; default %d)",
		n, s.cfg.MaxMapLength, task.DefaultMaxMapLength)
}

// checkMapSource returns why the result of task slot i cannot be mapped over
// by the tasks mapped over it, or "": it must be a JSON array of at most
// Config.MaxMapLength elements (Airflow fails the task that pushed it).
func (s *Scheduler) checkMapSource(rs *runState, i int, result []byte) string {
	if !rs.plan.feedsMap[rs.tis[i].of] || rs.tis[i].mapIndex >= 0 {
		return ""
	}
	items, err := task.SplitList(result)
	if err != nil {
		return fmt.Sprintf("its result is mapped over by %s: %v", rs.plan.mappers(rs.tis[i].of), err)
	}
	if len(items) > s.cfg.MaxMapLength {
		return s.tooLong(len(items))
	}
	return ""
}

// mappers names the tasks mapped over plan task i's result.
func (p *plan) mappers(i int) string {
	var ids []string
	for _, d := range p.down[i] {
		if m := p.maps[d]; m != nil && m.Over == p.tasks[i].ID() {
			ids = append(ids, fmt.Sprintf("%q", p.tasks[d].ID()))
		}
	}
	return fmt.Sprint(ids)
}

// item returns the element mapped instance slot j runs for, reading the
// list again after a reload; nil when it cannot be read (the try then reads
// the list itself and reports why).
func (s *Scheduler) item(rs *runState, j int) json.RawMessage {
	par := &rs.tis[rs.tis[j].of]
	if par.items == nil {
		m := rs.plan.maps[rs.tis[j].of]
		runPK := rs.rec.ID
		items, ok, err := m.Elements(task.InputsFunc(func(id string) ([]byte, bool, error) {
			return s.st.XCom(context.Background(), runPK, id)
		}), rs.params)
		if err != nil || !ok {
			return nil
		}
		par.items = items
	}
	if k := rs.tis[j].mapIndex; k < len(par.items) {
		return par.items[k]
	}
	return nil
}

// noteInstance keeps a mapped task's summary up to date when instance slot j
// moves from one state to another.
func (rs *runState) noteInstance(j int, from, to task.State) {
	par := &rs.tis[rs.tis[j].of]
	par.byState[from]--
	par.byState[to]++
	par.State, _ = task.SummaryState(par.byState)
}

// uncount takes back one upstream counted in state st.
func uncount(c *task.UpstreamCounts, st task.State) {
	switch st {
	case task.StateSuccess:
		c.Success--
	case task.StateFailed:
		c.Failed--
	case task.StateUpstreamFailed:
		c.UpstreamFailed--
	case task.StateSkipped:
		c.Skipped--
	}
}
