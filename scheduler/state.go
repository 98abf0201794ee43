package scheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/trellisdag/trellis/executor"
	"github.com/trellisdag/trellis/storage"
	"github.com/trellisdag/trellis/task"
)

// reconcile loads the active runs of the store that the scheduler does not hold, or
// holds in an older version. At start-up (recovering) the tries the store says are
// in flight are handed to their executors' Recover.
func (s *Scheduler) reconcile(ctx context.Context, recovering bool) error {
	sizes, err := s.st.PoolSlots(ctx)
	if err != nil {
		return fmt.Errorf("scheduler: load pool sizes: %w", err)
	}
	s.poolSizes = sizes
	runs, err := s.st.ActiveRuns(ctx)
	if err != nil {
		return fmt.Errorf("scheduler: load active runs: %w", err)
	}
	seen := make(map[int64]bool, len(runs))
	recover := map[task.ExecutorKind][]executor.Try{}
	for _, r := range runs {
		if s.cfg.Runs != nil && !s.cfg.Runs(r) {
			continue
		}
		p := s.plans[r.DAGID]
		if p == nil {
			continue // a DAG this binary does not have
		}
		seen[r.ID] = true
		old := s.runs[r.ID]
		if old != nil && old.rec.Version == r.Version {
			continue
		}
		if old != nil {
			s.unload(old)
		}
		rs, inflight, err := s.load(ctx, r, p)
		if err != nil {
			// One run that cannot be loaded must not stop the others: it is
			// left as it is (parked), with the reason logged, and tried again at
			// the next reload.
			s.cfg.Logger.Error("run parked: cannot load it", "dag", r.DAGID, "run", r.RunID, "err", err)
			continue
		}
		if old != nil {
			s.stopEnded(ctx, old, rs)
		}
		if recovering {
			for _, i := range inflight {
				n, err := s.st.InterruptedStreak(ctx, r.ID, rs.tis[i].TaskID, executor.InterruptedPrefix)
				if err != nil {
					return fmt.Errorf("scheduler: recover run %q: %w", r.RunID, err)
				}
				rs.tis[i].interrupted = n
				kind := task.ExecutorKind(rs.tis[i].Executor)
				recover[kind] = append(recover[kind], s.try(rs, i))
			}
		}
	}
	for id, rs := range s.runs {
		if !seen[id] && s.inflight(rs) == 0 {
			s.unload(rs) // finished or removed elsewhere
		}
	}
	for kind, tries := range recover {
		ex := s.executorFor(kind)
		if ex == nil {
			for _, t := range tries {
				s.Report(executor.Report{Key: t.Key, Status: executor.Failed, NoRetry: true, At: s.now(),
					Error: fmt.Sprintf("no %s executor to recover the try", kind)})
			}
			continue
		}
		if err := ex.Recover(ctx, tries); err != nil {
			return fmt.Errorf("scheduler: recover %s tries: %w", kind, err)
		}
	}
	return nil
}

func (s *Scheduler) inflight(rs *runState) int {
	n := 0
	for i := range rs.tis {
		if rs.tis[i].State.Active() && !rs.virtual(i) {
			n++
		}
	}
	return n
}

// load builds a run's state from the store and returns the tasks in flight.
func (s *Scheduler) load(ctx context.Context, r storage.Run, p *plan) (*runState, []int, error) {
	tis, err := s.st.TaskInstances(ctx, r.ID)
	if err != nil {
		return nil, nil, fmt.Errorf("scheduler: run %q of dag %q: %w", r.RunID, r.DAGID, err)
	}
	params, err := p.dag.ResolveConf(r.Conf)
	if err != nil {
		params = map[string]any{} // conf was checked at trigger time; the DAG may have changed since
	}
	rs := &runState{rec: r, plan: p, tis: make([]tiState, len(p.tasks)), params: params, activeOf: make([]int, len(p.tasks))}
	for i, t := range p.tasks {
		rs.tis[i].TaskInstance = storage.TaskInstance{Run: r.ID, TaskID: t.ID(), State: task.StateNone,
			MaxTries: p.policy[i].Retries + 1}
		rs.tis[i].of, rs.tis[i].mapIndex = i, -1
	}
	var rc storage.Reconcile
	have := make([]bool, len(p.tasks))
	own := make([]bool, len(p.tasks)) // the task's own row exists
	inst := map[int][]storage.TaskInstance{}
	for _, ti := range tis {
		i, ok := p.index[ti.TaskID]
		if base, k := task.ParseInstanceID(ti.TaskID); !ok && k >= 0 {
			// A mapped instance: kept while its task is still mapped.
			if j, found := p.index[base]; found && p.maps[j] != nil {
				have[j] = true
				inst[j] = append(inst[j], ti)
				continue
			}
		}
		switch {
		case !ok && ti.State != task.StateRemoved:
			rc.Remove = append(rc.Remove, ti.TaskID)
		case ok && ti.State == task.StateRemoved:
			rc.Restore = append(rc.Restore, storage.TaskSeed{TaskID: ti.TaskID, MaxTries: rs.tis[i].MaxTries})
			have[i], own[i] = true, true
		case ok:
			rs.tis[i].TaskInstance = ti
			have[i], own[i] = true, true
		}
	}
	for i, ok := range have {
		if !ok {
			rc.Add = append(rc.Add, storage.TaskSeed{TaskID: p.tasks[i].ID(), MaxTries: rs.tis[i].MaxTries})
		}
	}
	for i, list := range inst {
		// An expanded mapped task: its instances get slots after the plan's,
		// by map index; its own slot (without a row) shows their summary.
		slices.SortFunc(list, func(a, b storage.TaskInstance) int {
			_, x := task.ParseInstanceID(a.TaskID)
			_, y := task.ParseInstanceID(b.TaskID)
			return x - y
		})
		ti := &rs.tis[i]
		ti.byState = map[task.State]int{}
		for k, row := range list {
			ti.inst = append(ti.inst, len(rs.tis))
			rs.tis = append(rs.tis, tiState{TaskInstance: row, of: i, mapIndex: k})
			ti = &rs.tis[i]
			ti.byState[row.State]++
		}
		if !own[i] {
			ti.expanded = true
			ti.State, _ = task.SummaryState(ti.byState)
		}
	}
	if len(rc.Add)+len(rc.Remove)+len(rc.Restore) > 0 || r.DAGVersion != p.version {
		// The run meets another definition of its DAG (a redeploy), and is
		// reconciled as Airflow's verify_integrity does: tasks the DAG gained
		// get instances, instances of tasks it lost become removed (kept with
		// their tries, logs and results, ignored by scheduling and by the run's
		// state), removed tasks that are back are restored, and the run
		// records the version it now runs with. Its edges are the current
		// definition's. A try of a removed task still recorded in flight is
		// ended: its pod is deleted as an orphan by the Kubernetes executor,
		// and a local process died with the runner that started it.
		rc.DAGVersion = p.version
		if _, err := s.st.ReconcileRun(ctx, r.ID, rc); err != nil {
			return nil, nil, fmt.Errorf("scheduler: run %q of dag %q: %w", r.RunID, r.DAGID, err)
		}
		cur, err := s.st.RunByID(ctx, r.ID)
		if err != nil {
			return nil, nil, fmt.Errorf("scheduler: run %q of dag %q: %w", r.RunID, r.DAGID, err)
		}
		if cur.DAGVersion != p.version {
			return nil, nil, fmt.Errorf("scheduler: run %q of dag %q: version %q after reconciling to %q", r.RunID, r.DAGID, cur.DAGVersion, p.version)
		}
		s.cfg.Logger.Info("run reconciled to the current definition of its DAG",
			"dag", r.DAGID, "run", r.RunID, "from", r.DAGVersion, "to", p.version,
			"tasks_added", len(rc.Add), "tasks_removed", len(rc.Remove), "tasks_restored", len(rc.Restore))
		return s.load(ctx, cur, p)
	}
	s.runs[r.ID] = rs
	s.order = append(s.order, r.ID)
	s.addDeadlines(rs)
	p.held++
	if r.State == task.RunRunning {
		p.activeRuns++
	}
	var inflight []int
	for i := range rs.tis {
		ti := &rs.tis[i]
		if rs.virtual(i) {
			continue
		}
		if !ti.State.Finished() {
			rs.unfinished++
		}
		if ti.State.Finished() && ti.State != task.StateRemoved {
			for _, d := range p.down[ti.of] {
				rs.tis[d].counts.Add(ti.State)
			}
		}
		if ti.State.Active() {
			s.acquire(rs, i)
			inflight = append(inflight, i)
		}
	}
	for i := range p.tasks {
		for _, u := range p.up[i] {
			rs.tis[i].counts.Total += rs.width(u)
		}
	}
	for i := range rs.tis {
		if rs.virtual(i) {
			continue
		}
		switch rs.tis[i].State {
		case task.StateScheduled:
			s.ready.push(rs, i)
		case task.StateUpForRetry:
			s.timers.add(timerItem{at: rs.tis[i].NextRetry, kind: timerRetry, run: rs, task: i, try: rs.tis[i].Try})
		case task.StateDeferred:
			s.timers.add(timerItem{at: rs.tis[i].NextRetry, kind: timerPoke, run: rs, task: i, try: rs.tis[i].Try})
		}
	}
	if r.State == task.RunRunning {
		s.startRun(rs)
	}
	return rs, inflight, nil
}

// stopEnded kills the tries that were in flight in old but that the store, as
// reloaded in cur, no longer has in flight: a person marked the task while it ran
// (Airflow stops such a task too). Their reports are ignored.
func (s *Scheduler) stopEnded(ctx context.Context, old, cur *runState) {
	for i := range old.tis {
		was := old.tis[i]
		if !was.State.Active() || old.virtual(i) {
			continue
		}
		if j, ok := cur.slot(was.TaskID); ok && cur.tis[j].State.Active() && cur.tis[j].Try == was.Try {
			continue
		}
		now := task.StateNone
		if j, ok := cur.slot(was.TaskID); ok {
			now = cur.tis[j].State
		}
		if ex := s.executorFor(task.ExecutorKind(was.Executor)); ex != nil {
			key := executor.Key{Run: old.rec.ID, DAGID: old.rec.DAGID, RunID: old.rec.RunID, TaskID: was.TaskID, Try: was.Try}
			if err := ex.Kill(ctx, key, fmt.Sprintf("task marked %s while it ran", now)); err != nil {
				s.cfg.Logger.Warn("stop a try marked while it ran", "dag", old.rec.DAGID, "task", was.TaskID, "err", err)
			}
		}
	}
}

// unload forgets a run; ready items and timers that point at it are ignored later.
func (s *Scheduler) unload(rs *runState) {
	for i := range rs.tis {
		if rs.tis[i].State.Active() && !rs.virtual(i) {
			s.release(rs, i)
		}
		s.pokeEnded(&rs.tis[i]) // its report, if any, is ignored
	}
	if rs.rec.State == task.RunRunning {
		rs.plan.activeRuns--
	}
	delete(s.runs, rs.rec.ID)
	rs.plan.held--
	if i := slices.Index(s.order, rs.rec.ID); i >= 0 {
		s.order = slices.Delete(s.order, i, i+1)
	}
}

func (s *Scheduler) current(rs *runState) bool { return s.runs[rs.rec.ID] == rs }

// admit moves queued runs to running while their DAG is under max active runs,
// oldest first, and sets a run timeout timer.
func (s *Scheduler) admit() {
	for _, id := range s.order {
		rs := s.runs[id]
		if rs.rec.State != task.RunQueued || rs.plan.paused || rs.plan.activeRuns >= s.maxActiveRuns(rs.plan) {
			continue
		}
		now := s.now()
		s.batch.SetRun(storage.RunChange{Run: id, From: task.RunQueued, To: task.RunRunning, At: now})
		s.touched[id] = true
		rs.rec.State = task.RunRunning
		if rs.rec.Started.IsZero() {
			rs.rec.Started = now
		}
		rs.plan.activeRuns++
		s.events = append(s.events, Event{At: now, DAGID: rs.rec.DAGID, RunID: rs.rec.RunID, RunState: task.RunRunning})
		s.startRun(rs)
	}
}

// startRun evaluates the tasks of a running run that wait for nothing, and sets
// its timeout.
func (s *Scheduler) startRun(rs *runState) {
	if t := rs.plan.dag.RunTimeoutLimit(); t > 0 {
		s.timers.add(timerItem{at: rs.rec.Started.Add(t), kind: timerRunTimeout, run: rs})
	}
	for i := range rs.plan.tasks {
		if rs.undecided(i) {
			s.evaluate(rs, i)
		}
	}
	s.propagate(rs)
	s.maybeFinish(rs)
}

func (s *Scheduler) executorFor(kind task.ExecutorKind) executor.Executor {
	switch kind {
	case task.ExecutorLocal:
		return s.cfg.Local
	case task.ExecutorKubernetes:
		if s.cfg.Kubernetes == nil {
			return nil
		}
		return s.cfg.Kubernetes
	}
	return nil
}

func (s *Scheduler) executorKind(rs *runState, i int) task.ExecutorKind {
	return rs.plan.settings[rs.tis[i].of].ExecutorFor(s.cfg.DefaultExecutor)
}

// poolLimit is a pool's size: set at run time (pools set), else declared
// (Config.Pools), else DefaultPoolSlots.
func (s *Scheduler) poolLimit(name string) int {
	if n, ok := s.poolSizes[name]; ok {
		return n
	}
	if n, ok := s.cfg.Pools[name]; ok {
		return n
	}
	return DefaultPoolSlots
}

func (s *Scheduler) acquire(rs *runState, i int) {
	p, t := rs.plan, rs.tis[i].of
	s.active++
	s.poolUsed[p.pool[t]] += p.settings[t].PoolSlots
	p.activeTasks++
	p.activeOf[t]++
	rs.activeOf[t]++
}

func (s *Scheduler) release(rs *runState, i int) {
	p, t := rs.plan, rs.tis[i].of
	s.active--
	s.poolUsed[p.pool[t]] -= p.settings[t].PoolSlots
	p.activeTasks--
	p.activeOf[t]--
	rs.activeOf[t]--
	// A slot of a task with a limit freed: one parked instance of this run,
	// and one of the DAG's, go back to the ready queue.
	if q := rs.parked[t]; len(q) > 0 {
		rs.parked[t] = q[1:]
		s.ready.push(rs, q[0])
	}
	if q := p.parked[t]; len(q) > 0 {
		p.parked[t] = q[1:]
		if s.current(q[0].run) {
			s.ready.push(q[0].run, q[0].task)
		}
	}
}

// overLimit parks ready slot i when its task has its MaxActivePerRun tries
// in flight in the run, or its MaxActivePerDAG over the DAG's runs; release
// puts it back.
func (s *Scheduler) overLimit(rs *runState, i int) bool {
	p, t := rs.plan, rs.tis[i].of
	set := p.settings[t]
	switch {
	case set.MaxActivePerRun > 0 && rs.activeOf[t] >= set.MaxActivePerRun:
		if rs.parked == nil {
			rs.parked = map[int][]int{}
		}
		rs.parked[t] = append(rs.parked[t], i)
		return true
	case set.MaxActivePerDAG > 0 && p.activeOf[t] >= set.MaxActivePerDAG:
		if p.parked == nil {
			p.parked = map[int][]readyItem{}
		}
		p.parked[t] = append(p.parked[t], readyItem{run: rs, task: i})
		return true
	}
	return false
}

// schedule moves ready tasks to queued while slots are free: parallelism, the
// task's pool, and its DAG's max active tasks.
func (s *Scheduler) schedule() {
	// The next task of a bucket starts when its DAG is not paused and has a
	// free active-task slot, and its pool has the slots the task takes.
	canStart := func(k bucketKey, next readyItem) bool {
		slots := k.plan.settings[next.run.tis[next.task].of].PoolSlots
		return !k.plan.paused && s.poolUsed[k.pool]+slots <= s.poolLimit(k.pool) && k.plan.activeTasks < k.plan.dag.MaxActiveTasksLimit()
	}
	for s.active < s.cfg.Parallelism {
		it, ok := s.ready.pop(canStart)
		if !ok {
			return
		}
		rs, i := it.run, it.task
		if !s.current(rs) || rs.tis[i].State != task.StateScheduled {
			continue // stale
		}
		if s.overLimit(rs, i) {
			continue
		}
		kind := s.executorKind(rs, i)
		s.set(rs, i, task.StateQueued, func(ti *storage.TaskInstance) {
			ti.Try++
			ti.Started, ti.Ended, ti.NextRetry, ti.ExitCode, ti.Error, ti.Pokes = time.Time{}, time.Time{}, time.Time{}, nil, "", 0
			ti.Executor, ti.Host, ti.Pod = string(kind), "", ""
		})
		s.acquire(rs, i)
		s.starts = append(s.starts, startItem{run: rs, task: i})
	}
}

// try builds the executor's view of a task instance's current try.
func (s *Scheduler) try(rs *runState, i int) executor.Try {
	ti := rs.tis[i]
	p := rs.plan
	t := p.tasks[ti.of]
	runPK := rs.rec.ID
	st := s.st
	var in task.Inputs = task.InputsFunc(func(id string) ([]byte, bool, error) {
		return st.XCom(context.Background(), runPK, id)
	})
	if ti.mapIndex >= 0 {
		if item := s.item(rs, i); item != nil {
			in = task.WithItem(in, item)
		}
	}
	return executor.Try{
		Key:  executor.Key{Run: runPK, DAGID: rs.rec.DAGID, RunID: rs.rec.RunID, TaskID: ti.TaskID, Try: ti.Try},
		Task: t,
		Info: task.Info{DAGID: rs.rec.DAGID, TaskID: t.ID(), RunID: rs.rec.RunID, RunType: rs.rec.Type,
			Try: ti.Try, MaxTries: ti.MaxTries, LogicalDate: rs.rec.LogicalDate,
			DataIntervalStart: rs.rec.IntervalStart, DataIntervalEnd: rs.rec.IntervalEnd, Location: p.dag.Location(),
			PrevDataIntervalStartSuccess: s.prevSuccess(rs), MapIndex: ti.mapIndex},
		Params:  rs.params,
		Conf:    json.RawMessage(rs.rec.Conf),
		Inputs:  in,
		Timeout: p.policy[ti.of].Timeout,
		State:   ti.State,
		Host:    ti.Host,
		Pod:     ti.Pod,
		Lookup:  lookup{s},
	}
}

// start hands a committed queued try to its executor.
func (s *Scheduler) start(ctx context.Context, rs *runState, i int) {
	if !s.current(rs) || rs.tis[i].State != task.StateQueued {
		return
	}
	t := s.try(rs, i)
	kind := task.ExecutorKind(rs.tis[i].Executor)
	ex := s.executorFor(kind)
	var err error
	if ex == nil {
		err = fmt.Errorf("task %q needs the %s executor, and this runner has none (run with --executor kubernetes and a reachable cluster)", t.TaskID, kind)
	} else {
		err = ex.Start(ctx, t)
	}
	if err != nil {
		s.Report(executor.Report{Key: t.Key, Status: executor.Failed, Error: err.Error(), At: s.now()})
	}
}

// set changes a task instance's state in memory and adds the change to the batch.
func (s *Scheduler) set(rs *runState, i int, to task.State, mutate func(*storage.TaskInstance)) {
	ti := &rs.tis[i]
	from := ti.State
	if ti.mapIndex >= 0 && rs.tis[ti.of].expanded {
		rs.noteInstance(i, from, to)
	}
	next := ti.TaskInstance
	next.State = to
	if mutate != nil {
		mutate(&next)
	}
	now := s.now()
	s.batch.SetTI(storage.TIChange{From: from, TI: next, At: now})
	s.touched[rs.rec.ID] = true
	ti.TaskInstance = next
	s.taskEvent(rs, i, from, next)
	e := Event{At: now, DAGID: rs.rec.DAGID, RunID: rs.rec.RunID, TaskID: next.TaskID, Try: next.Try, State: to, Error: next.Error}
	if to.Finished() && !next.Started.IsZero() && !next.Ended.IsZero() {
		e.Duration = next.Ended.Sub(next.Started)
	}
	s.events = append(s.events, e)
	if from.Active() && !to.Active() {
		s.release(rs, i)
	}
	if to.Finished() && !from.Finished() {
		rs.plan.finished++
		rs.unfinished--
		rs.done = append(rs.done, i)
	}
}
