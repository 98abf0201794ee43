package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/internal/runs"
	"github.com/trellisdag/trellis/internal/store"
	"github.com/trellisdag/trellis/storage"
	"github.com/trellisdag/trellis/task"
)

// decode reads a JSON request body into v: the media type must be JSON (415),
// the body at most MaxBodyBytes (413), and unknown fields are a 400 naming them.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any) error {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/json" {
		return errorf(http.StatusUnsupportedMediaType, CodeUnsupportedMedia, "request body must be application/json")
	}
	body := http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		var ute *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &mbe):
			return errorf(http.StatusRequestEntityTooLarge, CodeTooLarge, "request body is larger than %d bytes", mbe.Limit)
		case errors.As(err, &ute):
			return badParam(ute.Field, "body field %q: want a %s, got a JSON %s", ute.Field, ute.Type, ute.Value)
		case errors.As(err, &se):
			return badParam("body", "request body is not valid JSON: %v", err)
		case errors.Is(err, io.EOF):
			return badParam("body", "request body is empty; want a JSON object")
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return badParam(f, "unknown body field %q", f)
		}
		var pe *time.ParseError
		if errors.As(err, &pe) {
			return badParam("logicalDate", "not an RFC 3339 date: %q", pe.Value)
		}
		return badParam("body", "request body: %v", err)
	}
	if _, err := io.Copy(io.Discard, body); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errorf(http.StatusRequestEntityTooLarge, CodeTooLarge, "request body is larger than %d bytes", mbe.Limit)
		}
	}
	return nil
}

func intQuery(r *http.Request, name string, def, lo, hi int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, badParam(name, "%s %q: not an integer", name, v)
	}
	if n < lo || n > hi {
		return 0, badParam(name, "%s %d: must be between %d and %d", name, n, lo, hi)
	}
	return n, nil
}

func dateQuery(r *http.Request, name string) (time.Time, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, v, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, badParam(name, "%s %q: not a date (want 2024-01-31 or 2024-01-31T03:00:00Z)", name, v)
}

func (s *Server) dagOf(r *http.Request) (*dag.DAG, error) {
	id := r.PathValue("dag")
	d, ok := s.dags[id]
	if !ok {
		return nil, notFound("dag %q: this binary has no such DAG", id)
	}
	return d, nil
}

func (s *Server) runOf(ctx context.Context, d *dag.DAG, runID string) (storage.Run, error) {
	run, err := s.st.Run(ctx, d.ID(), runID)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.Run{}, notFound("dag %q has no run %q", d.ID(), runID)
	}
	if err != nil {
		return storage.Run{}, fmt.Errorf("run %q of dag %q: %w", runID, d.ID(), err)
	}
	return run, nil
}

// readTarget resolves the DAG, run and task of a read-only task route, with
// its map index (see resolve): key is the id the store keeps the instance
// under. The task may be one the DAG no longer has (removed or renamed since
// a run ran it): when the run has an instance of it, its tries, logs and
// result stay readable, and t is nil.
func (s *Server) readTarget(r *http.Request) (d *dag.DAG, run storage.Run, key string, t task.Task, err error) {
	ref, err := s.resolve(r, true)
	if err != nil {
		return nil, storage.Run{}, "", nil, err
	}
	return ref.d, ref.run, ref.key, ref.t, nil
}

// kindOf is a task's kind, or "" for a task the DAG no longer has.
func kindOf(t task.Task) task.Kind {
	if t == nil {
		return ""
	}
	return task.SettingsOf(t).Kind
}

// summary is one DAG's summary, read with two queries (its record, its
// latest runs).
func (s *Server) summary(ctx context.Context, d *dag.DAG) (DAGSummary, error) {
	rec, err := s.st.DAG(ctx, d.ID())
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return DAGSummary{}, err
	}
	rs, err := s.st.Runs(ctx, storage.RunFilter{DAGID: d.ID(), Limit: RecentRuns})
	if err != nil {
		return DAGSummary{}, fmt.Errorf("latest runs of dag %q: %w", d.ID(), err)
	}
	return s.summaryOf(d, rec, rs), nil
}

// latestShown is how many of a DAG's latest runs its summary lists.
const latestShown = 10

// summaryOf builds a DAG's summary from its record (zero when the store has
// none yet) and its latest runs, newest first (at most RecentRuns are
// counted).
func (s *Server) summaryOf(d *dag.DAG, rec storage.DAG, latest []storage.Run) DAGSummary {
	out := DAGSummary{ID: d.ID(), Description: d.DescriptionText(), Tags: d.TagList(), Schedule: d.ScheduleExpr(),
		Version: d.Version(), Paused: rec.Paused, Tasks: len(d.Tasks()), Params: d.ParamDecls(), LatestRuns: []Run{},
		Timezone: d.Location().String()}
	if d.Scheduled() && !rec.Paused {
		var last *dag.DataInterval
		if !rec.LastIntervalStart.IsZero() || !rec.LastIntervalEnd.IsZero() {
			last = &dag.DataInterval{Start: rec.LastIntervalStart, End: rec.LastIntervalEnd}
		}
		now := s.now()
		if iv, ok := d.NextDataInterval(last, now); ok {
			at := iv.End
			if at.Before(now) {
				at = now
			}
			out.NextRun, out.NextRunAt = &iv.Start, &at
		}
	}
	for k, r := range latest {
		if k >= RecentRuns {
			break
		}
		if k < latestShown {
			out.LatestRuns = append(out.LatestRuns, runOf(r))
		}
		out.RunCounts.Of++
		switch r.State {
		case task.RunQueued:
			out.RunCounts.Queued++
		case task.RunRunning:
			out.RunCounts.Running++
		case task.RunSuccess:
			out.RunCounts.Success++
		case task.RunFailed:
			out.RunCounts.Failed++
		}
	}
	return out
}

// Bounds of the DAG list's filters.
const (
	maxSearchLen  = 200
	maxTagFilters = 20
	maxTagLen     = 100
)

// recentRuns returns the latest n runs of each DAG of ids, newest first, in
// one query (store.RecentRuns: each DAG's runs read from its (dag_id,
// logical_date) index, so the cost follows the runs returned, not the history).
// The DAG list is also cached (see listDAGs).
func (s *Server) recentRuns(ctx context.Context, ids []string, n int) (map[string][]storage.Run, error) {
	out, err := s.st.RecentRuns(ctx, ids, n) // one query, each DAG's runs by its index
	if err != nil {
		return nil, fmt.Errorf("latest runs: %w", err)
	}
	return out, nil
}

// dagFilter is the search and tag filters of GET /dags.
type dagFilter struct {
	search string   // lower case; matched in the id and the description
	tags   []string // a DAG must have all of them
}

func dagFilterOf(r *http.Request) (dagFilter, error) {
	q := r.URL.Query()
	f := dagFilter{search: strings.ToLower(strings.TrimSpace(q.Get("search")))}
	if n := len([]rune(f.search)); n > maxSearchLen {
		return f, badParam("search", "search: at most %d characters, got %d", maxSearchLen, n)
	}
	for _, t := range q["tag"] {
		if t = strings.TrimSpace(t); t == "" {
			continue
		}
		if len([]rune(t)) > maxTagLen {
			return f, badParam("tag", "tag %.40q…: at most %d characters", t, maxTagLen)
		}
		f.tags = append(f.tags, t)
	}
	if len(f.tags) > maxTagFilters {
		return f, badParam("tag", "tag: at most %d tags, got %d", maxTagFilters, len(f.tags))
	}
	return f, nil
}

func (f dagFilter) match(d *dag.DAG) bool {
	if f.search != "" && !strings.Contains(strings.ToLower(d.ID()), f.search) &&
		!strings.Contains(strings.ToLower(d.DescriptionText()), f.search) {
		return false
	}
	tags := d.TagList()
	for _, t := range f.tags {
		if !slices.Contains(tags, t) {
			return false
		}
	}
	return true
}

func (s *Server) listDAGs(w http.ResponseWriter, r *http.Request, _ *Principal) error {
	f, err := dagFilterOf(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	ver, err := s.st.DataVersion(ctx)
	if err != nil {
		return fmt.Errorf("data version: %w", err)
	}
	// The next runs depend on the clock too: an entry lasts a minute at most.
	key := "dags\x00" + s.now().UTC().Truncate(time.Minute).Format(time.RFC3339) + "\x00" + f.search + "\x00" + strings.Join(f.tags, "\x00")
	body, err := s.cache.get(ctx, key, ver, func() ([]byte, error) { return s.dagList(ctx, f) })
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_, err = w.Write(append(body, '\n'))
	return err
}

// dagList is the DAG list with filter f, as JSON: one query for the records
// of every DAG (paused, last interval), one per matching DAG for its latest
// runs (see recentRuns).
func (s *Server) dagList(ctx context.Context, f dagFilter) ([]byte, error) {
	out := DAGList{DAGs: []DAGSummary{}, Tags: []string{}, All: len(s.order)}
	var match []*dag.DAG
	for _, d := range s.order {
		out.Tags = append(out.Tags, d.TagList()...)
		if f.match(d) {
			match = append(match, d)
		}
	}
	slices.Sort(out.Tags)
	out.Tags = slices.Compact(out.Tags)
	recs, err := s.st.DAGs(ctx)
	if err != nil {
		return nil, fmt.Errorf("dag records: %w", err)
	}
	byID := make(map[string]storage.DAG, len(recs))
	for _, rec := range recs {
		byID[rec.ID] = rec
	}
	ids := make([]string, len(match))
	for i, d := range match {
		ids[i] = d.ID()
	}
	latest, err := s.recentRuns(ctx, ids, RecentRuns)
	if err != nil {
		return nil, err
	}
	for _, d := range match {
		out.DAGs = append(out.DAGs, s.summaryOf(d, byID[d.ID()], latest[d.ID()]))
	}
	sort.Slice(out.DAGs, func(i, j int) bool { return out.DAGs[i].ID < out.DAGs[j].ID })
	out.Total = len(out.DAGs)
	return json.Marshal(out)
}

func (s *Server) getDAG(w http.ResponseWriter, r *http.Request, _ *Principal) error {
	d, err := s.dagOf(r)
	if err != nil {
		return err
	}
	sum, err := s.summary(r.Context(), d)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, DAGDetail{DAGSummary: sum, Definition: d.Snapshot()})
	return nil
}

func (s *Server) pauseDAG(w http.ResponseWriter, r *http.Request, p *Principal) error {
	d, err := s.dagOf(r)
	if err != nil {
		return err
	}
	var req PauseRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	if req.Paused == nil {
		return badParam("paused", "paused is required (true or false)")
	}
	action := "unpause"
	if *req.Paused {
		action = "pause"
	}
	err = s.st.SetPaused(r.Context(), d.ID(), *req.Paused)
	s.audit(r, p, action, d.ID(), "", "", "", err)
	if err != nil {
		return fmt.Errorf("%s dag %q: %w", action, d.ID(), err)
	}
	s.cache.invalidate()
	s.cfg.Wake()
	s.hub.action(action, d.ID(), "", "")
	sum, err := s.summary(r.Context(), d)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sum)
	return nil
}

var runStates = []task.RunState{task.RunQueued, task.RunRunning, task.RunSuccess, task.RunFailed}

func (s *Server) listRuns(w http.ResponseWriter, r *http.Request, _ *Principal) error {
	d, err := s.dagOf(r)
	if err != nil {
		return err
	}
	f := storage.RunFilter{DAGID: d.ID()}
	if v := r.URL.Query().Get("state"); v != "" {
		for _, st := range strings.Split(v, ",") {
			rs := task.RunState(strings.TrimSpace(st))
			if !slices.Contains(runStates, rs) {
				return badParam("state", "state %q: want queued, running, success or failed", st)
			}
			f.States = append(f.States, rs)
		}
	}
	if f.Since, err = dateQuery(r, "since"); err != nil {
		return err
	}
	if f.Until, err = dateQuery(r, "until"); err != nil {
		return err
	}
	if f.Limit, err = intQuery(r, "limit", 25, 1, 1000); err != nil {
		return err
	}
	if f.Offset, err = intQuery(r, "offset", 0, 0, 1<<31-1); err != nil {
		return err
	}
	rs, err := s.st.Runs(r.Context(), f)
	if err != nil {
		return fmt.Errorf("runs of dag %q: %w", d.ID(), err)
	}
	total, err := s.st.CountRuns(r.Context(), f)
	if err != nil {
		return err
	}
	out := RunList{Runs: []Run{}, Total: total, Limit: f.Limit, Offset: f.Offset}
	for _, run := range rs {
		out.Runs = append(out.Runs, runOf(run))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// confField names the first conf key that does not fit the DAG's params, so a
// 400 can point at it.
func confField(d *dag.DAG, conf json.RawMessage) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(conf, &m) != nil || m == nil {
		return "conf"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	decl := map[string]dag.Param{}
	for _, p := range d.ParamDecls() {
		decl[p.Name] = p
	}
	for _, k := range keys {
		p, ok := decl[k]
		if !ok {
			return "conf." + k
		}
		if p.Default == nil {
			continue
		}
		if _, err := d.ResolveConf(json.RawMessage(`{` + strconv.Quote(k) + `:` + string(m[k]) + `}`)); err != nil {
			return "conf." + k
		}
	}
	return "conf"
}

func (s *Server) triggerRun(w http.ResponseWriter, r *http.Request, p *Principal) error {
	d, err := s.dagOf(r)
	if err != nil {
		return err
	}
	var req TriggerRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	if string(req.Conf) == "null" {
		req.Conf = nil
	}
	logical := s.now().UTC()
	if req.LogicalDate != nil {
		logical = req.LogicalDate.UTC()
	}
	if len(req.RunID) > 250 || strings.ContainsAny(req.RunID, "/\\?#%\x00\n\r\t") {
		return badParam("runId", "runId %.40q: at most 250 characters, without / \\ ? # %% or control characters", req.RunID)
	}
	run, err := runs.Create(r.Context(), s.st, d, runs.Spec{Type: task.RunManual, LogicalDate: logical, RunID: req.RunID, Conf: req.Conf})
	detail := ""
	if len(req.Conf) > 0 {
		detail = "conf " + compactJSON(req.Conf)
	}
	switch {
	case errors.Is(err, dag.ErrConf):
		s.audit(r, p, "trigger", d.ID(), req.RunID, "", detail, err)
		e := errorf(http.StatusBadRequest, CodeInvalidConf, "%s", strings.ReplaceAll(err.Error(), "\n", "; "))
		e.Field = confField(d, req.Conf)
		return e
	case errors.Is(err, runs.ErrExists):
		s.audit(r, p, "trigger", d.ID(), req.RunID, "", detail, err)
		return errorf(http.StatusConflict, CodeConflict, "%v; pick another logicalDate or runId", err)
	case err != nil:
		s.audit(r, p, "trigger", d.ID(), req.RunID, "", detail, err)
		return fmt.Errorf("trigger dag %q: %w", d.ID(), err)
	}
	s.audit(r, p, "trigger", d.ID(), run.RunID, "", detail, nil)
	s.cache.invalidate()
	s.cfg.Wake()
	s.hub.action("trigger", d.ID(), run.RunID, "")
	writeJSON(w, http.StatusCreated, runOf(run))
	return nil
}

func compactJSON(b []byte) string {
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return string(b)
	}
	return out.String()
}

func (s *Server) getRun(w http.ResponseWriter, r *http.Request, _ *Principal) error {
	d, err := s.dagOf(r)
	if err != nil {
		return err
	}
	run, err := s.runOf(r.Context(), d, r.PathValue("run"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, runOf(run))
	return nil
}

func (s *Server) listTaskInstances(w http.ResponseWriter, r *http.Request, _ *Principal) error {
	d, err := s.dagOf(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	// The version is read before the data: a commit in between makes the entry
	// stale at once, never wrong under a newer version.
	ver, err := s.st.DataVersion(ctx)
	if err != nil {
		return fmt.Errorf("data version: %w", err)
	}
	runID := r.PathValue("run")
	body, err := s.cache.get(ctx, "tis\x00"+d.ID()+"\x00"+runID, ver, func() ([]byte, error) {
		run, err := s.runOf(ctx, d, runID)
		if err != nil {
			return nil, err
		}
		tis, err := s.st.TaskInstances(ctx, run.ID)
		if err != nil {
			return nil, fmt.Errorf("task instances of run %q: %w", run.RunID, err)
		}
		list := s.orderTIs(d, run, tis)
		waiting, err := runs.Waiting(ctx, s.st, d, run, tis)
		if err != nil {
			return nil, err
		}
		for i := range list.TaskInstances {
			list.TaskInstances[i].Waiting = waiting[list.TaskInstances[i].TaskID]
		}
		return json.Marshal(list)
	})
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_, err = w.Write(append(body, '\n'))
	return err
}

// orderTIs lists a run's task instances in the DAG's topological order, a
// mapped task's instances as one summary entry (see mappedAgg).
func (s *Server) orderTIs(d *dag.DAG, run storage.Run, tis []storage.TaskInstance) TaskInstanceList {
	lay := layoutOf(d)
	by := make(map[string]storage.TaskInstance, len(tis))
	aggs := map[string]*mappedAgg{}
	var gone []string // ids the DAG does not have, in the order met
	for _, ti := range tis {
		base, k := task.ParseInstanceID(ti.TaskID)
		if _, ok := d.Task(base); !ok {
			if _, seen := by[base]; !seen && aggs[base] == nil {
				gone = append(gone, base)
			}
		}
		if k < 0 {
			by[base] = ti
			continue
		}
		a := aggs[base]
		if a == nil {
			a = &mappedAgg{}
			aggs[base] = a
		}
		a.add(ti)
	}
	entry := func(id string, kind task.Kind, mapped bool) (TaskInstance, bool) {
		if ti, ok := by[id]; ok {
			e := tiOf(run, kind, ti)
			e.Mapped = mapped
			return e, true
		}
		if a := aggs[id]; a != nil {
			return a.entry(run, id, kind), true
		}
		return TaskInstance{}, false
	}
	out := TaskInstanceList{TaskInstances: make([]TaskInstance, 0, len(by)+len(aggs))}
	for _, i := range lay.order {
		if e, ok := entry(lay.ids[i], lay.kind[i], lay.mapped[i]); ok {
			out.TaskInstances = append(out.TaskInstances, e)
		}
	}
	for _, id := range gone { // task instances of tasks no longer in the DAG
		if e, ok := entry(id, "", false); ok {
			e.Removed = true
			out.TaskInstances = append(out.TaskInstances, e)
		}
	}
	out.Total = len(out.TaskInstances)
	return out
}

func (s *Server) getTaskInstance(w http.ResponseWriter, r *http.Request, _ *Principal) error {
	ref, err := s.resolve(r, true)
	if err != nil {
		return err
	}
	ctx := r.Context()
	out, err := s.entryOf(ctx, ref.run, ref.key, kindOf(ref.t), ref.mapped() && ref.index < 0)
	if errors.Is(err, storage.ErrNotFound) {
		return notFound("run %q has no task instance %q", ref.run.RunID, ref.key)
	}
	if err != nil {
		return err
	}
	out.Removed = ref.t == nil
	all, err := s.st.TaskInstances(ctx, ref.run.ID) // what it waits for depends on the others
	if err != nil {
		return fmt.Errorf("task instances of run %q: %w", ref.run.RunID, err)
	}
	waiting, err := runs.Waiting(ctx, s.st, ref.d, ref.run, all)
	if err != nil {
		return err
	}
	out.Waiting = waiting[ref.key]
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) clearTasks(w http.ResponseWriter, r *http.Request, p *Principal) error {
	d, err := s.dagOf(r)
	if err != nil {
		return err
	}
	run, err := s.runOf(r.Context(), d, r.PathValue("run"))
	if err != nil {
		return err
	}
	var req ClearRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	var chosen []task.Task
	for _, id := range req.Tasks {
		if base, k := task.ParseInstanceID(id); k >= 0 {
			return badParam("tasks", "tasks: %q names one instance of a mapped task; clear it with POST .../runs/%s/tasks/%s/clear?map_index=%d", id, run.RunID, base, k)
		}
		t, ok := d.Task(id)
		if !ok {
			return badParam("tasks", "dag %q has no task %q", d.ID(), id)
		}
		chosen = append(chosen, t)
	}
	ids, err := runs.Clear(r.Context(), s.st, d, run, chosen, runs.ClearOptions{Downstream: req.Downstream, FailedOnly: req.FailedOnly})
	detail := fmt.Sprintf("tasks %v downstream=%t failedOnly=%t", req.Tasks, req.Downstream, req.FailedOnly)
	taskID := ""
	if len(req.Tasks) == 1 {
		taskID = req.Tasks[0]
	}
	s.audit(r, p, "clear", d.ID(), run.RunID, taskID, detail+fmt.Sprintf(" cleared %v", ids), err)
	if errors.Is(err, storage.ErrActive) {
		return errorf(http.StatusConflict, CodeConflict, "%v", err)
	}
	if err != nil {
		return err
	}
	if len(ids) > 0 {
		s.cache.invalidate()
		s.cfg.Wake()
		s.hub.action("clear", d.ID(), run.RunID, taskID)
	}
	writeJSON(w, http.StatusOK, ClearResult{Cleared: ids})
	return nil
}

// deleteRun deletes a finished run with everything it has (operator,
// audited); an active run is a 409.
func (s *Server) deleteRun(w http.ResponseWriter, r *http.Request, p *Principal) error {
	d, err := s.dagOf(r)
	if err != nil {
		return err
	}
	run, err := s.runOf(r.Context(), d, r.PathValue("run"))
	if err != nil {
		return err
	}
	err = runs.Delete(r.Context(), s.st, run)
	s.audit(r, p, "delete_run", d.ID(), run.RunID, "", "", err)
	switch {
	case errors.Is(err, storage.ErrRunActive):
		return errorf(http.StatusConflict, CodeConflict, "%v; wait for it to end (or mark its tasks) before deleting it", err)
	case err != nil:
		return err
	}
	s.cache.invalidate()
	s.hub.action("delete_run", d.ID(), run.RunID, "")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) markTaskInstance(w http.ResponseWriter, r *http.Request, p *Principal) error {
	ref, err := s.resolve(r, false)
	if err != nil {
		return err
	}
	d, run := ref.d, ref.run
	var req MarkRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	if req.State != task.StateSuccess && req.State != task.StateFailed {
		return badParam("state", "state %q: want success or failed", req.State)
	}
	from, err := runs.Mark(r.Context(), s.st, d, run, ref.key, req.State, "marked failed by "+p.Name)
	s.audit(r, p, "mark_"+string(req.State), d.ID(), run.RunID, ref.key, fmt.Sprintf("from %s", from), err)
	switch {
	case errors.Is(err, storage.ErrActive):
		return errorf(http.StatusConflict, CodeConflict, "%v; a try is in flight, wait for it to end", err)
	case errors.Is(err, storage.ErrConflict):
		return errorf(http.StatusConflict, CodeConflict, "%v", err)
	case errors.Is(err, storage.ErrNotFound):
		return notFound("run %q has no task instance %q", run.RunID, ref.key)
	case err != nil:
		return fmt.Errorf("mark task %q: %w", ref.key, err)
	}
	s.cache.invalidate()
	s.cfg.Wake()
	s.hub.action("mark_"+string(req.State), d.ID(), run.RunID, ref.key)
	run, err = s.runOf(r.Context(), d, run.RunID)
	if err != nil {
		return err
	}
	out, err := s.entryOf(r.Context(), run, ref.key, task.SettingsOf(ref.t).Kind, ref.mapped() && ref.index < 0)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getXCom(w http.ResponseWriter, r *http.Request, _ *Principal) error {
	_, run, id, _, err := s.readTarget(r)
	if err != nil {
		return err
	}
	v, ok, err := s.st.XCom(r.Context(), run.ID, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, XCom{Present: ok, Value: v})
	return nil
}

func (s *Server) listTries(w http.ResponseWriter, r *http.Request, _ *Principal) error {
	ref, err := s.resolve(r, true)
	if err != nil {
		return err
	}
	if err := s.needIndex(r.Context(), ref); err != nil {
		return err
	}
	run, id := ref.run, ref.key
	tries, err := s.st.Tries(r.Context(), run.ID, id)
	if err != nil {
		return err
	}
	out := TryList{Tries: []Try{}}
	for _, tr := range tries {
		out.Tries = append(out.Tries, tryOf(tr))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// tryOf resolves a try route (see readTarget: t is nil for a task the DAG no
// longer has).
func (s *Server) tryOf(r *http.Request) (*dag.DAG, storage.Run, string, task.Task, storage.Try, error) {
	ref, err := s.resolve(r, true)
	if err != nil {
		return nil, storage.Run{}, "", nil, storage.Try{}, err
	}
	if err := s.needIndex(r.Context(), ref); err != nil {
		return nil, storage.Run{}, "", nil, storage.Try{}, err
	}
	d, run, id, t := ref.d, ref.run, ref.key, ref.t
	n, err := strconv.Atoi(r.PathValue("try"))
	if err != nil || n < 1 {
		return nil, storage.Run{}, "", nil, storage.Try{}, badParam("try", "try %q: want a positive integer", r.PathValue("try"))
	}
	tries, err := s.st.Tries(r.Context(), run.ID, id)
	if err != nil {
		return nil, storage.Run{}, "", nil, storage.Try{}, err
	}
	for _, tr := range tries {
		if tr.Try == n {
			return d, run, id, t, tr, nil
		}
	}
	return nil, storage.Run{}, "", nil, storage.Try{}, notFound("task %q of run %q has no try %d", id, run.RunID, n)
}

func (s *Server) getTry(w http.ResponseWriter, r *http.Request, _ *Principal) error {
	_, _, _, _, tr, err := s.tryOf(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, tryOf(tr))
	return nil
}

func (s *Server) getLog(w http.ResponseWriter, r *http.Request, _ *Principal) error {
	_, run, id, _, tr, err := s.tryOf(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	ended := tr.State.Finished() || tr.State == task.StateUpForRetry
	if v := q.Get("before"); v != "" || q.Get("tail") != "" {
		// Backwards: the tail (tail=1), or the page before a position.
		var before int64
		if v != "" {
			if before, err = strconv.ParseInt(v, 10, 64); err != nil || before < 1 {
				return badParam("before", "before %q: want a positive integer (a page's prev)", v)
			}
		}
		data, first, last, earlier, err := s.st.LogPageBefore(r.Context(), run.ID, id, tr.Try, before, store.MaxLogPage)
		if err != nil {
			return fmt.Errorf("log of task %q try %d: %w", id, tr.Try, err)
		}
		out := LogChunk{Content: string(data), Next: last, Prev: first, Earlier: earlier}
		if before == 0 { // the tail: following it reads what comes after
			out.Finished = ended
		} else {
			out.More = true
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	}
	after := int64(0)
	if v := q.Get("after"); v != "" {
		if after, err = strconv.ParseInt(v, 10, 64); err != nil || after < 0 {
			return badParam("after", "after %q: want a non-negative integer", v)
		}
	}
	data, last, more, err := s.st.LogPage(r.Context(), run.ID, id, tr.Try, after, store.MaxLogPage)
	if err != nil {
		return fmt.Errorf("log of task %q try %d: %w", id, tr.Try, err)
	}
	writeJSON(w, http.StatusOK, LogChunk{Content: string(data), Next: last, More: more, Finished: ended && !more})
	return nil
}

// downloadLog streams a try's whole log as a text file, page by page, in
// bounded memory.
func (s *Server) downloadLog(w http.ResponseWriter, r *http.Request, _ *Principal) error {
	d, run, id, _, tr, err := s.tryOf(r)
	if err != nil {
		return err
	}
	name := fmt.Sprintf("%s__%s__%s__try%d.log", d.ID(), run.RunID, id, tr.Try)
	name = strings.Map(func(c rune) rune {
		if c == '/' || c == '\\' || c == '"' || c < ' ' {
			return '_'
		}
		return c
	}, name)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.Header().Set("Cache-Control", "no-store")
	rc := http.NewResponseController(w)
	for after, more := int64(0), true; more; {
		var data []byte
		data, after, more, err = s.st.LogPage(r.Context(), run.ID, id, tr.Try, after, store.MaxLogPage)
		if err != nil {
			return fmt.Errorf("log of task %q try %d: %w", id, tr.Try, err)
		}
		// Each page gets its own write deadline: a large log may take longer
		// than the server's write timeout in all.
		_ = rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if _, err := w.Write(data); err != nil {
			return nil // the client went away
		}
	}
	return nil
}

func (s *Server) getPod(w http.ResponseWriter, r *http.Request, _ *Principal) error {
	d, run, key, t, tr, err := s.tryOf(r)
	if err != nil {
		return err
	}
	out := PodInfo{Pod: tr.Pod}
	switch {
	case t == nil:
		out.Reason = "not available for this task: the DAG no longer has it, so its pod cannot be rendered"
	case tr.Executor != string(task.ExecutorKubernetes) && task.SettingsOf(t).Kind != task.KindPod:
		out.Reason = "not available for this task: it does not run in a pod"
	case s.cfg.PodYAML == nil:
		out.Reason = "not available for this task: this binary cannot render pods"
	default:
		ti, err := s.st.TaskInstance(r.Context(), run.ID, key)
		if err != nil {
			return fmt.Errorf("task %q of run %q: %w", key, run.RunID, err)
		}
		b, err := s.cfg.PodYAML(d, t, run, ti)
		if err != nil {
			out.Reason = "not available for this task: " + err.Error()
			break
		}
		out.Available, out.YAML = true, string(b)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getGantt(w http.ResponseWriter, r *http.Request, _ *Principal) error {
	d, err := s.dagOf(r)
	if err != nil {
		return err
	}
	run, err := s.runOf(r.Context(), d, r.PathValue("run"))
	if err != nil {
		return err
	}
	tries, err := s.st.TriesOfRun(r.Context(), run.ID)
	if err != nil {
		return err
	}
	lay := layoutOf(d)
	rank := make(map[string]int, len(lay.order))
	for pos, i := range lay.order {
		rank[lay.ids[i]] = pos
	}
	sort.SliceStable(tries, func(i, j int) bool {
		a, b := tries[i], tries[j]
		if !a.Queued.Equal(b.Queued) {
			return a.Queued.Before(b.Queued)
		}
		return rank[a.TaskID] < rank[b.TaskID]
	})
	out := Gantt{Run: runOf(run), Tries: make([]Try, 0, len(tries))}
	for _, tr := range tries {
		out.Tries = append(out.Tries, tryOf(tr))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// GridData returns the grid of a DAG: its latest n runs (oldest first) by task,
// the tasks of each group together under the group (see layout.gridTree),
// each mapped task as one row of its summary state and instance count (see
// store.GridCells, which groups instances in SQL), and each group's summary
// state per run (see groupState).
func (s *Server) GridData(ctx context.Context, d *dag.DAG, n int) (Grid, error) {
	rs, err := s.st.Runs(ctx, storage.RunFilter{DAGID: d.ID(), Limit: n})
	if err != nil {
		return Grid{}, fmt.Errorf("grid of dag %q: %w", d.ID(), err)
	}
	slices.Reverse(rs)
	keys := make([]int64, len(rs))
	col := make(map[int64]int, len(rs))
	for i, r := range rs {
		keys[i] = r.ID
		col[r.ID] = i
	}
	cells, err := s.st.GridCells(ctx, keys)
	if err != nil {
		return Grid{}, fmt.Errorf("grid of dag %q: %w", d.ID(), err)
	}
	lay := layoutOf(d)
	rows, spans := lay.gridTree()
	g := Grid{DAGID: d.ID(), Tasks: make([]GridTask, len(rows)), Runs: make([]Run, len(rs)), Cells: make([][]Cell, len(rows))}
	row := make(map[string]int, len(rows))
	for pos, i := range rows {
		g.Tasks[pos] = GridTask{ID: lay.ids[i], Level: lay.level[i], Group: lay.group[i], Setup: lay.setup[i], Teardown: lay.teardown[i], Mapped: lay.mapped[i]}
		row[lay.ids[i]] = pos
		g.Cells[pos] = make([]Cell, len(rs))
	}
	for c, r := range rs {
		g.Runs[c] = runOf(r)
	}
	// A mapped task's instances, counted by state per (row, column).
	counts := map[[2]int]map[task.State]int{}
	for _, gc := range cells {
		pos, ok := row[gc.TaskID]
		if !ok {
			continue
		}
		c := col[gc.Run]
		cell := &g.Cells[pos][c]
		if !gc.MapIndexed {
			cell.State, cell.Try = gc.State, gc.Try
			continue
		}
		k := [2]int{pos, c}
		m := counts[k]
		if m == nil {
			m = map[task.State]int{}
			counts[k] = m
		}
		m[gc.State] += gc.Count
		if gc.State != task.StateRemoved {
			cell.N += gc.Count
			cell.Try = max(cell.Try, gc.Try)
		}
	}
	for k, m := range counts {
		if st, ok := task.SummaryState(m); ok {
			g.Cells[k[0]][k[1]].State = st
		}
	}
	if len(spans) > 0 {
		g.Groups = make([]GridGroup, len(spans))
	}
	for k, sp := range spans {
		gg := GridGroup{ID: sp.id, Parent: sp.parent, Depth: sp.depth, Row: sp.first, Tasks: sp.count, States: make([]task.State, len(rs))}
		for c := range rs {
			gg.States[c] = groupState(func(yield func(task.State) bool) {
				for _, cells := range g.Cells[sp.first : sp.first+sp.count] {
					if !yield(cells[c].State) {
						return
					}
				}
			})
		}
		g.Groups[k] = gg
	}
	return g, nil
}

func (s *Server) getGrid(w http.ResponseWriter, r *http.Request, _ *Principal) error {
	d, err := s.dagOf(r)
	if err != nil {
		return err
	}
	n, err := intQuery(r, "runs", 25, 1, 100)
	if err != nil {
		return err
	}
	g, err := s.GridData(r.Context(), d, n)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, g)
	return nil
}

// calendarMaxRuns bounds the runs one calendar reads.
const calendarMaxRuns = 10000

// zoneQuery is the time zone named by query parameter name, or def when it is
// absent.
func zoneQuery(r *http.Request, name string, def *time.Location) (*time.Location, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	if len(v) > 64 || strings.ContainsAny(v, "\x00\\") || strings.Contains(v, "..") {
		return nil, badParam(name, "%s %.64q: not a time zone name (want an IANA name such as Europe/Paris, or UTC)", name, v)
	}
	loc, err := time.LoadLocation(v)
	if err != nil {
		return nil, badParam(name, "%s %q: not a time zone this server knows (want an IANA name such as Europe/Paris, or UTC)", name, v)
	}
	return loc, nil
}

func (s *Server) getCalendar(w http.ResponseWriter, r *http.Request, _ *Principal) error {
	d, err := s.dagOf(r)
	if err != nil {
		return err
	}
	months, err := intQuery(r, "months", 12, 1, 24)
	if err != nil {
		return err
	}
	loc, err := zoneQuery(r, "tz", d.Location())
	if err != nil {
		return err
	}
	ctx := r.Context()
	now := s.now().In(loc)
	y, m, _ := now.Date()
	from := time.Date(y, m-time.Month(months-1), 1, 0, 0, 0, 0, loc)
	rs, err := s.st.Runs(ctx, storage.RunFilter{DAGID: d.ID(), Since: from, Limit: calendarMaxRuns})
	if err != nil {
		return fmt.Errorf("calendar of dag %q: %w", d.ID(), err)
	}
	out := Calendar{DAGID: d.ID(), Timezone: loc.String(), From: from.Format(time.DateOnly), Today: now.Format(time.DateOnly),
		Days: []CalendarDay{}, Planned: []string{}, Truncated: len(rs) == calendarMaxRuns}
	byDay := map[string]*CalendarDay{}
	for _, run := range rs {
		day := run.LogicalDate.In(loc).Format(time.DateOnly)
		c := byDay[day]
		if c == nil {
			c = &CalendarDay{Date: day}
			byDay[day] = c
		}
		c.Total++
		switch run.State {
		case task.RunQueued:
			c.Queued++
		case task.RunRunning:
			c.Running++
		case task.RunSuccess:
			c.Success++
		case task.RunFailed:
			c.Failed++
		}
	}
	for _, c := range byDay {
		switch {
		case c.Failed > 0:
			c.State = task.RunFailed
		case c.Running > 0 || c.Queued > 0:
			c.State = task.RunRunning
		default:
			c.State = task.RunSuccess
		}
		out.Days = append(out.Days, *c)
	}
	slices.SortFunc(out.Days, func(a, b CalendarDay) int { return strings.Compare(a.Date, b.Date) })
	if d.Scheduled() {
		rec, err := s.st.DAG(ctx, d.ID())
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		if !rec.Paused {
			out.Planned = plannedDays(d, rec, s.now(), loc)
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// plannedDays are the days (in loc) of the logical dates of the runs the
// schedule plans next, to the end of the current month (at most 62 runs).
func plannedDays(d *dag.DAG, rec storage.DAG, now time.Time, loc *time.Location) []string {
	out := []string{}
	var last *dag.DataInterval
	if !rec.LastIntervalStart.IsZero() || !rec.LastIntervalEnd.IsZero() {
		last = &dag.DataInterval{Start: rec.LastIntervalStart, End: rec.LastIntervalEnd}
	}
	y, m, _ := now.In(loc).Date()
	end := time.Date(y, m+1, 1, 0, 0, 0, 0, loc)
	at := now
	for range 62 {
		iv, ok := d.NextDataInterval(last, at)
		if !ok || !iv.Start.Before(end) || (last != nil && !iv.Start.After(last.Start)) {
			break
		}
		if day := iv.Start.In(loc).Format(time.DateOnly); len(out) == 0 || out[len(out)-1] != day {
			out = append(out, day)
		}
		last, at = &iv, iv.End
	}
	return out
}

func (s *Server) getDurations(w http.ResponseWriter, r *http.Request, _ *Principal) error {
	d, err := s.dagOf(r)
	if err != nil {
		return err
	}
	n, err := intQuery(r, "runs", 25, 1, 100)
	if err != nil {
		return err
	}
	ctx := r.Context()
	rs, err := s.st.Runs(ctx, storage.RunFilter{DAGID: d.ID(), Limit: n})
	if err != nil {
		return fmt.Errorf("durations of dag %q: %w", d.ID(), err)
	}
	slices.Reverse(rs)
	keys := make([]int64, len(rs))
	for i, run := range rs {
		keys[i] = run.ID
	}
	tis, err := s.st.TaskInstancesOfRuns(ctx, keys)
	if err != nil {
		return err
	}
	lay := layoutOf(d)
	out := TaskDurations{DAGID: d.ID(), Runs: make([]Run, len(rs)), Tasks: make([]TaskDurationSeries, len(lay.order))}
	row := make(map[string]int, len(lay.order))
	for pos, i := range lay.order {
		out.Tasks[pos] = TaskDurationSeries{TaskID: lay.ids[i], Kind: lay.kind[i], Durations: make([]*float64, len(rs)),
			States: make([]task.State, len(rs)), Tries: make([]int, len(rs))}
		row[lay.ids[i]] = pos
	}
	for c, run := range rs {
		out.Runs[c] = runOf(run)
		aggs := map[string]*mappedAgg{}
		for _, ti := range tis[run.ID] {
			base, k := task.ParseInstanceID(ti.TaskID)
			if k >= 0 {
				if aggs[base] == nil {
					aggs[base] = &mappedAgg{}
				}
				aggs[base].add(ti)
				continue
			}
			if pos, ok := row[ti.TaskID]; ok {
				t := &out.Tasks[pos]
				t.Durations[c], t.States[c], t.Tries[c] = dur(ti.Started, ti.Ended), ti.State, ti.Try
			}
		}
		for id, a := range aggs { // a mapped task: from its first start to its last end
			if pos, ok := row[id]; ok {
				e := a.entry(run, id, "")
				t := &out.Tasks[pos]
				t.Durations[c], t.States[c], t.Tries[c] = e.Duration, e.State, e.Try
			}
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// maxCollapsed bounds the group ids of the graph's collapsed parameter, and
// maxCollapsedLen its length.
const (
	maxCollapsed    = 200
	maxCollapsedLen = 8192
)

// collapsedQuery reads the graph's collapsed parameter: comma-separated ids
// of d's task groups (empty items ignored; the parameter may be repeated).
func collapsedQuery(r *http.Request, d *dag.DAG) ([]string, error) {
	vs := r.URL.Query()["collapsed"]
	total := 0
	for _, v := range vs {
		total += len(v) + 1
	}
	if total > maxCollapsedLen {
		return nil, badParam("collapsed", "collapsed: at most %d characters, got %d", maxCollapsedLen, total-1)
	}
	known := map[string]bool{}
	for _, g := range layoutOf(d).groups {
		known[g.id] = true
	}
	var ids []string
	for _, v := range vs {
		for _, id := range strings.Split(v, ",") {
			if id = strings.TrimSpace(id); id == "" {
				continue
			}
			if !known[id] {
				return nil, badParam("collapsed", "collapsed: dag %q has no task group %.100q", d.ID(), id)
			}
			ids = append(ids, id)
		}
	}
	if len(ids) > maxCollapsed {
		return nil, badParam("collapsed", "collapsed: at most %d group ids, got %d", maxCollapsed, len(ids))
	}
	return ids, nil
}

func (s *Server) getGraph(w http.ResponseWriter, r *http.Request, _ *Principal) error {
	d, err := s.dagOf(r)
	if err != nil {
		return err
	}
	collapsed, err := collapsedQuery(r, d)
	if err != nil {
		return err
	}
	states := map[string]task.State{}
	instances := map[string]int{} // a mapped task's instances in the run
	lay, title := layoutOf(d), "Graph of DAG "+d.ID()
	runID := r.URL.Query().Get("run")
	if runID != "" {
		run, err := s.runOf(r.Context(), d, runID)
		if err != nil {
			return err
		}
		cells, err := s.st.GridCells(r.Context(), []int64{run.ID})
		if err != nil {
			return fmt.Errorf("graph of run %q: %w", run.RunID, err)
		}
		byState := map[string]map[task.State]int{}
		for _, gc := range cells {
			if !gc.MapIndexed {
				states[gc.TaskID] = gc.State
				continue
			}
			if byState[gc.TaskID] == nil {
				byState[gc.TaskID] = map[task.State]int{}
			}
			byState[gc.TaskID][gc.State] += gc.Count
			if gc.State != task.StateRemoved {
				instances[gc.TaskID] += gc.Count
			}
		}
		for id, m := range byState {
			states[id], _ = task.SummaryState(m)
		}
		title += ", run " + runID
		// A run made with another definition is drawn as the graph it ran
		// with, from the stored version (removed tasks included).
		if run.DAGVersion != "" && run.DAGVersion != d.Version() {
			old, err := s.versionLayout(r.Context(), d.ID(), run.DAGVersion)
			if err != nil {
				return err
			}
			if old != nil {
				lay, title = old, title+", DAG version "+run.DAGVersion+" (not this binary's)"
			}
		}
	}
	if len(collapsed) > 0 {
		// Groups the drawn version does not have are left out.
		lay = lay.collapse(collapsed)
		var drawn []string
		for _, i := range lay.order {
			if lay.members[i] != nil {
				drawn = append(drawn, lay.ids[i])
			}
		}
		if len(drawn) > 0 {
			slices.Sort(drawn)
			title += ", collapsed groups: " + strings.Join(drawn, ", ")
		}
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Cache-Control", "no-store")
	_, err = w.Write(renderGraph(d.ID(), lay, title, runID, states, instances))
	return err
}

// versionLayout is the layout of a stored version of a DAG's definition, or
// nil when that version is not stored (runs made before versions were).
func (s *Server) versionLayout(ctx context.Context, dagID, version string) (*layout, error) {
	def, err := s.st.DAGVersion(ctx, dagID, version)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var snap dag.Snapshot
	if err := json.Unmarshal(def, &snap); err != nil {
		return nil, fmt.Errorf("dag %q version %s: %w", dagID, version, err)
	}
	return layoutOfSnapshot(snap), nil
}

func (s *Server) listAudit(w http.ResponseWriter, r *http.Request, _ *Principal) error {
	f := storage.AuditFilter{DAGID: r.URL.Query().Get("dag")}
	var err error
	if f.Limit, err = intQuery(r, "limit", 50, 1, 1000); err != nil {
		return err
	}
	if f.Offset, err = intQuery(r, "offset", 0, 0, 1<<31-1); err != nil {
		return err
	}
	es, total, err := s.st.Audit(r.Context(), f)
	if err != nil {
		return err
	}
	out := AuditList{Entries: make([]AuditEntry, 0, len(es)), Total: total, Limit: f.Limit, Offset: f.Offset}
	for _, e := range es {
		out.Entries = append(out.Entries, auditOf(e))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getChanges(w http.ResponseWriter, r *http.Request, _ *Principal) error {
	writeJSON(w, http.StatusOK, Changes{Seq: s.hub.seq.Load()})
	return nil
}

// audit records an action; a failure to record it is logged, not returned, so
// that the action's own outcome reaches the caller.
func (s *Server) audit(r *http.Request, p *Principal, action, dagID, runID, taskID, detail string, err error) {
	e := storage.AuditEntry{At: s.now(), Action: action, DAGID: dagID, RunID: runID, TaskID: taskID, Detail: detail, Outcome: "ok"}
	if p != nil {
		e.Actor, e.Role = p.Name, string(p.Role)
	}
	if err != nil {
		e.Outcome = asError(err).Message
		if _, ok := err.(*Error); !ok {
			e.Outcome = strings.ReplaceAll(err.Error(), "\n", "; ")
		}
	}
	if _, aerr := s.st.AddAudit(context.WithoutCancel(r.Context()), e); aerr != nil {
		s.log.Error("audit log", "err", aerr)
	}
	s.log.Info("action", "who", e.Actor, "action", action, "dag", dagID, "run", runID, "task", taskID, "outcome", e.Outcome)
}
