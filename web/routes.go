package web

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"
)

type handlerFunc func(w http.ResponseWriter, r *http.Request, p *Principal) error

// qparam is a query parameter of a route, for validation messages and OpenAPI.
type qparam struct {
	name, typ, doc string
}

// route is one API operation. The route table is the single source of the mux
// and of the OpenAPI document.
type route struct {
	method, path string
	op, summary  string
	query        []qparam
	body         any    // a value of the request body's type; nil: no body
	resp         any    // a value of the response body's type
	status       int    // success status (default 200)
	public       bool   // served without credentials
	media        string // response media type when not JSON
	h            handlerFunc
}

func (rt route) write() bool { return rt.method != http.MethodGet && rt.method != http.MethodHead }

func (s *Server) apiRoutes() []route {
	dagP := "/api/v1/dags/{dag}"
	runP := dagP + "/runs/{run}"
	taskP := runP + "/tasks/{task}"
	tryP := taskP + "/tries/{try}"
	page := []qparam{{"limit", "integer", "page size (1-1000)"}, {"offset", "integer", "entries to skip"}}
	// Every per-task route takes map_index to address one instance of a
	// mapped task (the store's "task[3]"); the path's {task} is always the
	// task's own id (an id with "[k]" is a 400 pointing here). Without it a
	// mapped task answers as a whole: its summary entry, all its results,
	// the mark of all its instances; its tries and logs need it.
	mi := qparam{"map_index", "integer", "the map index of one instance of a mapped task (0 or more; -1 or absent: the task itself); an index the run's task lacks is a 404 naming the run, task and index"}
	one := []qparam{mi}
	return []route{
		{method: "GET", path: "/api/v1/openapi.json", op: "getOpenAPI", summary: "This API's OpenAPI 3 document", public: true, resp: map[string]any{}, h: s.getOpenAPI},
		{method: "GET", path: "/api/v1/session", op: "getSession", summary: "Who the caller is, and the CSRF token of its session", resp: Session{}, h: s.getSession},
		{method: "POST", path: "/api/v1/session", op: "login", summary: "Sign in with a token; sets the session cookie", public: true, body: LoginRequest{}, resp: Session{}, h: s.login},
		{method: "DELETE", path: "/api/v1/session", op: "logout", summary: "Sign out", public: true, resp: Session{}, h: s.logout},
		{method: "GET", path: "/api/v1/dags", op: "listDAGs", summary: "The DAGs with paused state, time zone, latest runs, run counts by state over the latest 25 runs, and next run; filtered by search and tags",
			query: []qparam{{"search", "string", "only DAGs whose id or description contains this text, ignoring case (at most 200 characters)"},
				{"tag", "string", "only DAGs with this tag; repeat it for DAGs with all of several (at most 20)"}}, resp: DAGList{}, h: s.listDAGs},
		{method: "GET", path: dagP, op: "getDAG", summary: "One DAG with its definition", resp: DAGDetail{}, h: s.getDAG},
		{method: "GET", path: dagP + "/params", op: "getParams", summary: "The DAG's params as a JSON Schema (draft 2020-12) of a run's conf: types, defaults, descriptions, enum, minimum, maximum, required", resp: map[string]any{}, h: s.getParams},
		{method: "PATCH", path: dagP, op: "pauseDAG", summary: "Pause or unpause a DAG", body: PauseRequest{}, resp: DAGSummary{}, h: s.pauseDAG},
		{method: "GET", path: dagP + "/grid", op: "getGrid", summary: "Recent runs by task, for the grid view", query: []qparam{{"runs", "integer", "number of runs (1-100, default 25)"}}, resp: Grid{}, h: s.getGrid},
		{method: "GET", path: dagP + "/calendar", op: "getCalendar", summary: "The DAG's runs by day of their logical date, for the calendar view, and the days of its planned runs",
			query: []qparam{{"months", "integer", "months to cover, this one included (1-24, default 12)"}, {"tz", "string", "IANA time zone whose days these are (default the DAG's)"}}, resp: Calendar{}, h: s.getCalendar},
		{method: "GET", path: dagP + "/durations", op: "getDurations", summary: "How long each task's latest try took in the DAG's recent runs, for the task duration view",
			query: []qparam{{"runs", "integer", "number of runs (1-100, default 25)"}}, resp: TaskDurations{}, h: s.getDurations},
		{method: "GET", path: dagP + "/graph.svg", op: "getGraph", summary: "The DAG as an SVG laid out by topological level (edges routed around the tasks), each task with its kind and trigger rule, coloured by a run's task states; collapsed task groups drawn as one box each, coloured by their tasks' summary state", query: []qparam{{"run", "string", "run id whose states colour the tasks"},
			{"collapsed", "string", "comma-separated ids of task groups drawn as one box each (at most 200; an unknown group is a 400)"}}, media: "image/svg+xml", h: s.getGraph},
		{method: "GET", path: dagP + "/runs", op: "listRuns", summary: "Runs of a DAG, newest first", query: append([]qparam{{"state", "string", "comma-separated run states"}, {"since", "string", "logical date from (RFC 3339 or YYYY-MM-DD), inclusive"}, {"until", "string", "logical date until, exclusive"}}, page...), resp: RunList{}, h: s.listRuns},
		{method: "POST", path: dagP + "/runs", op: "triggerRun", summary: "Trigger a run with conf (checked against the DAG's params)", body: TriggerRequest{}, resp: Run{}, status: http.StatusCreated, h: s.checkConf(s.triggerRun)},
		{method: "GET", path: runP, op: "getRun", summary: "One run", resp: Run{}, h: s.getRun},
		{method: "DELETE", path: runP, op: "deleteRun", summary: "Delete a finished run with its task instances, tries, logs and results (operator)", status: http.StatusNoContent, h: s.deleteRun},
		{method: "GET", path: runP + "/gantt", op: "getGantt", summary: "Every try of a run, for the Gantt view", resp: Gantt{}, h: s.getGantt},
		{method: "POST", path: runP + "/clear", op: "clearTasks", summary: "Clear task instances so they run again", body: ClearRequest{}, resp: ClearResult{}, h: s.clearTasks},
		{method: "GET", path: runP + "/tasks", op: "listTaskInstances", summary: "The task instances of a run, in topological order; a mapped task is one entry with its summary state, instance count and counts by state (its instances: .../instances)", resp: TaskInstanceList{}, h: s.listTaskInstances},
		{method: "GET", path: taskP, op: "getTaskInstance", summary: "One task instance; for a mapped task without map_index, its summary entry (summary state, instance count, counts by state)", query: one, resp: TaskInstance{}, h: s.getTaskInstance},
		{method: "POST", path: taskP + "/mark", op: "markTaskInstance", summary: "Mark a task instance success or failed (a mapped task without map_index: all its instances)", query: one, body: MarkRequest{}, resp: TaskInstance{}, h: s.markTaskInstance},
		{method: "POST", path: taskP + "/clear", op: "clearTaskInstance", summary: "Clear one task (with map_index: one instance of a mapped task) so it runs again, optionally with its downstream tasks", query: one, body: ClearTaskRequest{}, resp: ClearResult{}, h: s.clearTaskInstance},
		{method: "GET", path: taskP + "/instances", op: "listInstances", summary: "A page of a mapped task's instances by map index, with its summary state and its instances counted by state",
			query: []qparam{{"limit", "integer", "page size (1-1000, default 100)"}, {"offset", "integer", "instances to skip (default 0)"}}, resp: InstanceList{}, h: s.listInstances},
		{method: "GET", path: taskP + "/xcom", op: "getXCom", summary: "The task's stored result (a mapped task without map_index: the JSON array of its instances' results by map index)", query: one, resp: XCom{}, h: s.getXCom},
		{method: "GET", path: taskP + "/tries", op: "listTries", summary: "The tries of a task instance (an expanded mapped task needs map_index)", query: one, resp: TryList{}, h: s.listTries},
		{method: "GET", path: tryP, op: "getTry", summary: "One try", query: one, resp: Try{}, h: s.getTry},
		{method: "GET", path: tryP + "/log", op: "getLog", summary: "A try's log after a position, a page of at most 1 MiB (for paging and tail-following)", query: []qparam{mi, {"after", "integer", "position returned as next by the previous call (default 0: from the start)"},
			{"tail", "boolean", "the last page instead (then follow with after=next, page back with before=prev)"},
			{"before", "integer", "the page that ends before this position (a previous answer's prev)"}}, resp: LogChunk{}, h: s.getLog},
		{method: "GET", path: tryP + "/log/download", op: "downloadLog", summary: "A try's whole log as a text file (streamed)", query: one, media: "text/plain", h: s.downloadLog},
		{method: "GET", path: tryP + "/pod", op: "getPod", summary: "The pod of a try: its name and rendered YAML when available", query: one, resp: PodInfo{}, h: s.getPod},
		{method: "GET", path: "/api/v1/assets", op: "listAssets", summary: "The assets with the tasks that update them, the DAGs scheduled on them and their event counts", resp: AssetList{}, h: s.listAssets},
		{method: "GET", path: "/api/v1/assets/events", op: "listAssetEvents", summary: "Asset events, newest first", query: append([]qparam{{"uri", "string", "only this asset's events"}}, page...), resp: AssetEventList{}, h: s.listAssetEvents},
		{method: "POST", path: "/api/v1/assets/events", op: "postAssetEvent", summary: "Record an asset event from outside (operator); DAGs scheduled on the asset run", body: AssetEventRequest{}, resp: AssetEvent{}, status: http.StatusCreated, h: s.postAssetEvent},
		{method: "GET", path: "/api/v1/pools", op: "listPools", summary: "The pools with their sizes (declared and set at run time), slots in use and tasks", resp: PoolList{}, h: s.listPools},
		{method: "PATCH", path: "/api/v1/pools/{pool}", op: "setPool", summary: "Resize a declared pool at run time, without a rebuild", body: PoolRequest{}, resp: Pool{}, h: s.setPool},
		{method: "GET", path: "/api/v1/audit", op: "listAudit", summary: "The audit log, newest first", query: append([]qparam{{"dag", "string", "only entries about this DAG"}}, page...), resp: AuditList{}, h: s.listAudit},
		{method: "GET", path: "/api/v1/events", op: "streamEvents", summary: "Server-Sent Events: every committed change and action", media: "text/event-stream", h: s.streamEvents},
		{method: "GET", path: "/api/v1/changes", op: "getChanges", summary: "A counter of changes, the polling fallback of the event stream", resp: Changes{}, h: s.getChanges},
	}
}

// buildMux registers the routes (grouped by path, so that a wrong method is a
// JSON 405), the UI, the health endpoints and /metrics.
func (s *Server) buildMux() *http.ServeMux {
	mux := http.NewServeMux()
	byPath := map[string][]route{}
	var paths []string
	for _, rt := range s.routes {
		if _, ok := byPath[rt.path]; !ok {
			paths = append(paths, rt.path)
		}
		byPath[rt.path] = append(byPath[rt.path], rt)
	}
	for _, p := range paths {
		rts := byPath[p]
		mux.Handle(p, s.dispatch(rts))
	}
	mux.Handle("/api/", s.secure(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, "", nil, notFound("no API route %s %s (see /api/v1/openapi.json)", r.Method, r.URL.Path))
	})))
	mux.Handle("GET /healthz", s.secure(http.HandlerFunc(s.healthz)))
	mux.Handle("GET /readyz", s.secure(http.HandlerFunc(s.readyz)))
	mux.Handle("GET /metrics", s.metricsHandler())
	mux.Handle("/", s.secure(s.uiHandler()))
	return mux
}

// statusWriter remembers the status of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// securityHeaders are set on every response.
func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
}

// secure adds the security headers and, when access control is off, refuses
// requests whose Host is not a loopback name (DNS rebinding).
func (s *Server) secure(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		securityHeaders(w.Header())
		if s.cfg.Tokens == nil && !loopbackHost(r.Host) {
			s.deny(w, r, nil, errorf(http.StatusForbidden, CodeForbidden,
				"host %q is not a loopback name; without access control only loopback is served", r.Host))
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (s *Server) dispatch(rts []route) http.Handler {
	return s.secure(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, rt := range rts {
			if rt.method == r.Method || (r.Method == http.MethodHead && rt.method == http.MethodGet) {
				s.serve(w, r, rt)
				return
			}
		}
		var allow []string
		for _, rt := range rts {
			allow = append(allow, rt.method)
		}
		slices.Sort(allow)
		w.Header().Set("Allow", strings.Join(allow, ", "))
		s.fail(w, r, rts[0].op, nil, errorf(http.StatusMethodNotAllowed, CodeMethodNotAllowed,
			"%s %s: method not allowed (allowed: %s)", r.Method, r.URL.Path, strings.Join(allow, ", ")))
	}))
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, rt route) {
	began := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		s.metrics.request(rt.op, status, time.Since(began))
	}()
	if err := s.readyErr(); err != nil && !rt.public && rt.op != "getSession" {
		s.fail(sw, r, rt.op, nil, errorf(http.StatusServiceUnavailable, CodeUnavailable, "not serving: %v", err))
		return
	}
	p, aerr := s.authenticate(r)
	if aerr != nil && !rt.public {
		s.deny(sw, r, nil, aerr)
		return
	}
	if rt.write() {
		if p != nil && p.Role != RoleOperator && !rt.public {
			s.deny(sw, r, p, errorf(http.StatusForbidden, CodeForbidden,
				"%s %s needs the operator role; %q has the %s role (read-only)", r.Method, r.URL.Path, p.Name, p.Role))
			return
		}
		if err := s.checkCSRF(r, p); err != nil {
			s.deny(sw, r, p, err)
			return
		}
	}
	if err := rt.h(sw, r, p); err != nil {
		s.fail(sw, r, rt.op, p, err)
	}
}

// fail writes an error response and logs server-side failures.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, op string, p *Principal, err error) {
	e := asError(err)
	if e.Status >= 500 && e.Status != http.StatusServiceUnavailable {
		s.log.Error("api request failed", "method", r.Method, "path", r.URL.Path, "op", op, "err", err)
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		e = errorf(http.StatusRequestEntityTooLarge, CodeTooLarge, "request body is larger than %d bytes", mbe.Limit)
	}
	s.metrics.apiError(e.Code)
	writeJSON(w, e.Status, ErrorBody{e})
}

// deny writes a 401 or 403 and logs it, naming who (never the token).
func (s *Server) deny(w http.ResponseWriter, r *http.Request, p *Principal, e *Error) {
	who := ""
	if p != nil {
		who = p.Name
	}
	s.log.LogAttrs(r.Context(), slog.LevelWarn, "access denied", slog.Int("status", e.Status), slog.String("code", e.Code),
		slog.String("reason", e.Message), slog.String("method", r.Method), slog.String("path", r.URL.Path),
		slog.String("remote", r.RemoteAddr), slog.String("who", who))
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="trellis"`)
	}
	s.metrics.apiError(e.Code)
	writeJSON(w, e.Status, ErrorBody{e})
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if err := s.readyErr(); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": err.Error()})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.st.Ping(ctx); err != nil {
		s.log.Error("readiness: database", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": "database does not answer"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
