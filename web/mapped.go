package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/internal/runs"
	"github.com/trellisdag/trellis/storage"
	"github.com/trellisdag/trellis/task"
)

// Mapped tasks in the API. A mapped task is one entry in a run's task list,
// with its summary state and its instances counted by state; its instances
// are paged at .../tasks/{task}/instances. Every per-task route takes the
// query parameter map_index to address one instance: .../tasks/resize?map_index=3
// is the instance the store keeps as "resize[3]". The task id in the path is
// always the task's own id; an id with a map index ("resize[3]") is a 400
// that says to use map_index. Without map_index, a mapped task's routes
// answer for the task as a whole: its summary entry, the array of its
// instances' results, the mark of every instance; tries and logs need an
// instance (400 once the task is expanded).

// Bounds of the instance pages.
const (
	defaultInstancePage = 100
	maxInstancePage     = 1000
)

// mapIndexQuery reads the map_index query parameter: -1 when it is absent or
// -1 (the task itself, as Airflow's map_index -1).
func mapIndexQuery(r *http.Request) (int, error) {
	v := r.URL.Query().Get("map_index")
	if v == "" {
		return -1, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < -1 {
		return 0, badParam("map_index", "map_index %.40q: want a map index, 0 or more (or -1 for the task itself)", v)
	}
	return n, nil
}

// taskRef is the task instance a per-task route addresses.
type taskRef struct {
	d   *dag.DAG
	run storage.Run
	// id is the task's id, index its map index (-1: none), and key the id
	// the store keeps the instance under (id, or id[index]).
	id    string
	index int
	key   string
	// t is the task; nil for one the DAG no longer has (read routes only).
	t task.Task
}

// mapped reports whether the task is mapped as far as the DAG knows.
func (ref taskRef) mapped() bool { return ref.t != nil && task.SettingsOf(ref.t).Mapped }

// resolve reads the DAG, run, task and map index of a per-task route. With
// removedOK, the task may be one the DAG no longer has, as long as the run
// has an instance of it (its tries, logs and result stay readable).
func (s *Server) resolve(r *http.Request, removedOK bool) (taskRef, error) {
	d, err := s.dagOf(r)
	if err != nil {
		return taskRef{}, err
	}
	ref := taskRef{d: d, id: r.PathValue("task"), index: -1}
	if base, k := task.ParseInstanceID(ref.id); k >= 0 {
		return taskRef{}, badParam("task", "task %q: the path names a task by its own id; give the map index as a query parameter: .../tasks/%s?map_index=%d", ref.id, base, k)
	}
	if ref.index, err = mapIndexQuery(r); err != nil {
		return taskRef{}, err
	}
	ref.key = task.InstanceID(ref.id, ref.index)
	t, known := d.Task(ref.id)
	if !known && !removedOK {
		return taskRef{}, notFound("dag %q has no task %q", d.ID(), ref.id)
	}
	ref.t = t
	if ref.run, err = s.runOf(r.Context(), d, r.PathValue("run")); err != nil {
		if !known {
			return taskRef{}, notFound("dag %q has no task %q", d.ID(), ref.id)
		}
		return taskRef{}, err
	}
	ctx := r.Context()
	if known && ref.index >= 0 && !task.SettingsOf(t).Mapped {
		return taskRef{}, badParam("map_index", "task %q of dag %q is not mapped: map_index %d does not apply", ref.id, d.ID(), ref.index)
	}
	if ref.index >= 0 {
		if err := s.checkIndex(ctx, ref); err != nil {
			return taskRef{}, err
		}
		return ref, nil
	}
	if !known {
		_, err := s.st.TaskInstance(ctx, ref.run.ID, ref.id)
		if errors.Is(err, storage.ErrNotFound) {
			counts, cerr := s.st.InstanceCounts(ctx, ref.run.ID, ref.id)
			if cerr != nil {
				return taskRef{}, fmt.Errorf("task %q of run %q: %w", ref.id, ref.run.RunID, cerr)
			}
			if len(counts) == 0 {
				return taskRef{}, notFound("dag %q has no task %q, and run %q never had it", d.ID(), ref.id, ref.run.RunID)
			}
		} else if err != nil {
			return taskRef{}, fmt.Errorf("task %q of run %q: %w", ref.id, ref.run.RunID, err)
		}
	}
	return ref, nil
}

// checkIndex is a 404 naming the run, the task and the index when the run
// has no instance ref.index of the task.
func (s *Server) checkIndex(ctx context.Context, ref taskRef) error {
	_, err := s.st.TaskInstance(ctx, ref.run.ID, ref.key)
	if err == nil {
		return nil
	}
	if !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("task %q map index %d of run %q: %w", ref.id, ref.index, ref.run.RunID, err)
	}
	counts, err := s.st.InstanceCounts(ctx, ref.run.ID, ref.id)
	if err != nil {
		return fmt.Errorf("task %q of run %q: %w", ref.id, ref.run.RunID, err)
	}
	n := 0
	for _, c := range counts {
		n += c
	}
	have := "it has no instances in this run (not expanded yet, or its list was empty)"
	if n > 0 {
		have = fmt.Sprintf("it has %d, map indexes 0 to %d", n, n-1)
	}
	return notFound("run %q of dag %q: task %q has no map index %d (%s)", ref.run.RunID, ref.d.ID(), ref.id, ref.index, have)
}

// needIndex is a 400 when a route about one instance's tries and logs names
// an expanded mapped task without a map index.
func (s *Server) needIndex(ctx context.Context, ref taskRef) error {
	if ref.index >= 0 {
		return nil
	}
	if ref.t != nil && !ref.mapped() {
		return nil
	}
	if _, err := s.st.TaskInstance(ctx, ref.run.ID, ref.id); err == nil {
		return nil // not expanded: the task's own instance
	} else if !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("task %q of run %q: %w", ref.id, ref.run.RunID, err)
	}
	counts, err := s.st.InstanceCounts(ctx, ref.run.ID, ref.id)
	if err != nil {
		return fmt.Errorf("task %q of run %q: %w", ref.id, ref.run.RunID, err)
	}
	n := 0
	for _, c := range counts {
		n += c
	}
	if n == 0 {
		return nil
	}
	return badParam("map_index", "task %q of run %q is mapped (%d instances): give map_index (0 to %d) for an instance's tries and logs", ref.id, ref.run.RunID, n, n-1)
}

// mappedAgg sums up a mapped task's instances in one run.
type mappedAgg struct {
	counts         map[task.State]int
	n              int // instances, removed ones not counted
	try, maxTries  int
	started, ended time.Time
	unended        bool // an instance has not ended
	executor       string
}

func (a *mappedAgg) add(ti storage.TaskInstance) {
	if a.counts == nil {
		a.counts = map[task.State]int{}
	}
	a.counts[ti.State]++
	if ti.State == task.StateRemoved {
		return
	}
	a.n++
	a.try, a.maxTries = max(a.try, ti.Try), max(a.maxTries, ti.MaxTries)
	if !ti.Started.IsZero() && (a.started.IsZero() || ti.Started.Before(a.started)) {
		a.started = ti.Started
	}
	if ti.Ended.IsZero() {
		a.unended = true
	} else if ti.Ended.After(a.ended) {
		a.ended = ti.Ended
	}
	if a.executor == "" {
		a.executor = ti.Executor
	}
}

// state is the summary state of the instances (task.SummaryState).
func (a *mappedAgg) state() task.State {
	st, _ := task.SummaryState(a.counts)
	return st
}

// entry is the task's summary entry in a run's task list.
func (a *mappedAgg) entry(run storage.Run, id string, kind task.Kind) TaskInstance {
	out := TaskInstance{DAGID: run.DAGID, RunID: run.RunID, TaskID: id, Kind: kind, State: a.state(), Try: a.try, MaxTries: a.maxTries,
		Started: tp(a.started), Executor: a.executor, Mapped: true, MapCount: a.n, StateCounts: a.counts}
	if !a.unended && a.n > 0 && a.state().Finished() {
		out.Ended = tp(a.ended)
		out.Duration = dur(a.started, a.ended)
	}
	return out
}

// entryOf is a task's entry in run: its own instance, or for an expanded
// mapped task the summary of its instances. The error wraps
// storage.ErrNotFound when the run has neither.
func (s *Server) entryOf(ctx context.Context, run storage.Run, id string, kind task.Kind, mapped bool) (TaskInstance, error) {
	ti, err := s.st.TaskInstance(ctx, run.ID, id)
	if err == nil {
		out := tiOf(run, kind, ti)
		out.Mapped = mapped
		return out, nil
	}
	if !errors.Is(err, storage.ErrNotFound) {
		return TaskInstance{}, fmt.Errorf("task %q of run %q: %w", id, run.RunID, err)
	}
	tis, err := s.st.Instances(ctx, run.ID, id)
	if err != nil {
		return TaskInstance{}, fmt.Errorf("task %q of run %q: %w", id, run.RunID, err)
	}
	if len(tis) == 0 {
		return TaskInstance{}, fmt.Errorf("run %q has no task instance %q: %w", run.RunID, id, storage.ErrNotFound)
	}
	var a mappedAgg
	for _, ti := range tis {
		a.add(ti)
	}
	return a.entry(run, id, kind), nil
}

// listInstances is GET .../tasks/{task}/instances: a page of a mapped task's
// instances by map index, with the counts of all of them by state.
func (s *Server) listInstances(w http.ResponseWriter, r *http.Request, _ *Principal) error {
	ref, err := s.resolve(r, true)
	if err != nil {
		return err
	}
	if ref.index >= 0 {
		return badParam("map_index", "map_index does not apply to the list of a task's instances; use limit and offset")
	}
	if ref.t != nil && !ref.mapped() {
		return badParam("task", "task %q of dag %q is not mapped: it has no instances to list", ref.id, ref.d.ID())
	}
	limit, err := intQuery(r, "limit", defaultInstancePage, 1, maxInstancePage)
	if err != nil {
		return err
	}
	offset, err := intQuery(r, "offset", 0, 0, 1<<31-1)
	if err != nil {
		return err
	}
	ctx := r.Context()
	counts, err := s.st.InstanceCounts(ctx, ref.run.ID, ref.id)
	if err != nil {
		return fmt.Errorf("instances of task %q in run %q: %w", ref.id, ref.run.RunID, err)
	}
	tis, err := s.st.InstancesPage(ctx, ref.run.ID, ref.id, offset, limit)
	if err != nil {
		return fmt.Errorf("instances of task %q in run %q: %w", ref.id, ref.run.RunID, err)
	}
	out := InstanceList{DAGID: ref.d.ID(), RunID: ref.run.RunID, TaskID: ref.id, StateCounts: counts,
		Instances: make([]TaskInstance, 0, len(tis)), Limit: limit, Offset: offset}
	for _, n := range counts {
		out.Total += n
	}
	if st, ok := task.SummaryState(counts); ok {
		out.State = st
	} else {
		// Not expanded yet (or an empty list): the task's own state.
		ti, err := s.st.TaskInstance(ctx, ref.run.ID, ref.id)
		switch {
		case err == nil:
			out.State = ti.State
		case !errors.Is(err, storage.ErrNotFound):
			return fmt.Errorf("task %q of run %q: %w", ref.id, ref.run.RunID, err)
		}
	}
	kind := kindOf(ref.t)
	for _, ti := range tis {
		out.Instances = append(out.Instances, tiOf(ref.run, kind, ti))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// clearTaskInstance is POST .../tasks/{task}/clear: clear one task, or with
// map_index one instance of a mapped task (runs.Clear with MapIndexes).
func (s *Server) clearTaskInstance(w http.ResponseWriter, r *http.Request, p *Principal) error {
	ref, err := s.resolve(r, false)
	if err != nil {
		return err
	}
	var req ClearTaskRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	o := runs.ClearOptions{Downstream: req.Downstream, FailedOnly: req.FailedOnly}
	if ref.index >= 0 {
		o.MapIndexes = []int{ref.index}
	}
	ids, err := runs.Clear(r.Context(), s.st, ref.d, ref.run, []task.Task{ref.t}, o)
	s.audit(r, p, "clear", ref.d.ID(), ref.run.RunID, ref.key,
		fmt.Sprintf("task %s downstream=%t failedOnly=%t cleared %v", ref.key, req.Downstream, req.FailedOnly, ids), err)
	switch {
	case errors.Is(err, storage.ErrActive):
		return errorf(http.StatusConflict, CodeConflict, "%v", err)
	case errors.Is(err, storage.ErrNotFound):
		return notFound("%v", err)
	case err != nil:
		return fmt.Errorf("clear task %q of run %q: %w", ref.key, ref.run.RunID, err)
	}
	if len(ids) > 0 {
		s.cache.invalidate()
		s.cfg.Wake()
		s.hub.action("clear", ref.d.ID(), ref.run.RunID, ref.key)
	}
	writeJSON(w, http.StatusOK, ClearResult{Cleared: ids})
	return nil
}
