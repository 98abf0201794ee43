package web

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/internal/runs"
	"github.com/trellisdag/trellis/internal/store"
	"github.com/trellisdag/trellis/task"
)

// viewDAGs adds to the test DAGs two tagged ones: nightly (scheduled daily in
// Europe/Paris, tags warehouse and nightly) and hourly (tags warehouse), and
// a sensor that waits an hour between pokes.
func viewDAGs(s *stack) []*dag.DAG {
	noop := func(context.Context, *task.Run) (int, error) { return 1, nil }
	nightly := dag.New("nightly", dag.Schedule("0 3 * * *"), dag.TimezoneName("Europe/Paris"),
		dag.StartDate(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)), dag.Catchup(false),
		dag.Tags("warehouse", "nightly"), dag.Description("loads the warehouse every night"), dag.Doc("Owner: data team.\n<b>not bold</b>"))
	nightly.Add(task.Go("load", noop))
	hourly := dag.New("hourly", dag.Tags("warehouse"), dag.Description("small refresh"))
	hourly.Add(task.Go("refresh", noop))
	waits := dag.New("waits", dag.DefaultRetries(0, 0))
	waits.Add(task.Sensor("partner_file", func(context.Context, *task.Run) (bool, error) { return false, nil },
		task.PokeInterval(time.Hour)))
	return append(testDAGs(s), nightly, hourly, waits)
}

// TestAPIDAGListFilters: the DAG list's search (id and description, any
// case), tag filters (all of them), tags, time zones and run counts; and its
// bounds.
func TestAPIDAGListFilters(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{dags: viewDAGs})
	for range 2 {
		r := s.trigger("etl", "")
		s.waitRun("etl", r.RunID, task.RunSuccess)
	}
	fl := s.trigger("flaky", "")
	s.waitRun("flaky", fl.RunID, task.RunFailed)

	var all DAGList
	s.do("GET", "/api/v1/dags", nil, &all)
	ids := func(l DAGList) string {
		var out []string
		for _, d := range l.DAGs {
			out = append(out, d.ID)
		}
		return strings.Join(out, ",")
	}
	if ids(all) != "etl,flaky,hourly,nightly,slow,waits" || all.Total != 6 || all.All != 6 ||
		strings.Join(all.Tags, ",") != "nightly,warehouse" {
		t.Errorf("dags = %s, total %d of %d, tags %v", ids(all), all.Total, all.All, all.Tags)
	}
	by := map[string]DAGSummary{}
	for _, d := range all.DAGs {
		by[d.ID] = d
	}
	if c := by["etl"].RunCounts; c != (RunCounts{Of: 2, Success: 2}) {
		t.Errorf("etl counts = %+v", c)
	}
	if c := by["flaky"].RunCounts; c != (RunCounts{Of: 1, Failed: 1}) {
		t.Errorf("flaky counts = %+v", c)
	}
	if n := by["nightly"]; n.Timezone != "Europe/Paris" || n.NextRun == nil || by["etl"].Timezone != "UTC" {
		t.Errorf("nightly = %+v, etl's zone %q", n, by["etl"].Timezone)
	}
	for q, want := range map[string]string{
		"search=ETL": "etl",
		"search=" + url.QueryEscape("extract, count"): "etl",     // in the description
		"search=warehouse":                            "nightly", // description only: tags are not searched
		"tag=warehouse":                               "hourly,nightly",
		"tag=warehouse&tag=nightly":                   "nightly",
		"tag=warehouse&search=refresh":                "hourly",
		"tag=none":                                    "",
		"search=%20%20":                               "etl,flaky,hourly,nightly,slow,waits",
	} {
		var l DAGList
		if res := s.do("GET", "/api/v1/dags?"+q, nil, &l); res.StatusCode != 200 {
			t.Errorf("%s: %d", q, res.StatusCode)
			continue
		}
		if ids(l) != want || l.Total != len(l.DAGs) || l.All != 6 || len(l.Tags) != 2 {
			t.Errorf("%s: %s (total %d of %d, tags %v), want %s", q, ids(l), l.Total, l.All, l.Tags, want)
		}
	}
	s.expectError(s.do("GET", "/api/v1/dags?search="+strings.Repeat("x", 201), nil, nil), 400, CodeBadRequest, "search")
	s.expectError(s.do("GET", "/api/v1/dags?tag="+strings.Repeat("x", 101), nil, nil), 400, CodeBadRequest, "tag")
	many := strings.Repeat("tag=a&", 21)
	eb := s.expectError(s.do("GET", "/api/v1/dags?"+many, nil, nil), 400, CodeBadRequest, "tag")
	if !strings.Contains(eb.Error.Message, "at most 20") {
		t.Errorf("21 tags: %q", eb.Error.Message)
	}
	// A pause shows at once (the list is cached, actions drop the cache).
	s.do("PATCH", "/api/v1/dags/hourly", `{"paused":true}`, nil)
	var l DAGList
	s.do("GET", "/api/v1/dags?tag=warehouse", nil, &l)
	if len(l.DAGs) != 2 || !l.DAGs[0].Paused {
		t.Errorf("after the pause: %+v", l.DAGs)
	}
}

// TestDAGListRecentRunsOfQuietDAGs: every DAG of the list has its own latest
// runs and counts, however many newer runs a busier DAG has.
func TestDAGListRecentRunsOfQuietDAGs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := store.Open(ctx, t.TempDir()+"/t.db", store.Options{Sync: store.SyncNormal})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	mk := func(id string) *dag.DAG {
		d := dag.New(id)
		d.Add(task.Go("t", noop))
		if err := d.Validate(); err != nil {
			t.Fatal(err)
		}
		return d
	}
	busy, quiet, idle := mk("busy"), mk("quiet"), mk("idle")
	day := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 3 {
		if _, err := runs.Create(ctx, st, quiet, runs.Spec{Type: task.RunManual, LogicalDate: day.Add(time.Duration(i) * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 160 {
		if _, err := runs.Create(ctx, st, busy, runs.Spec{Type: task.RunManual, LogicalDate: day.AddDate(0, 1, 0).Add(time.Duration(i) * time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	srv, err := New(Config{Store: st, DAGs: []*dag.DAG{busy, quiet, idle}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.SetReady(nil)
	w := httptest.NewRecorder()
	srv.Handler().ServeHTTP(w, httptest.NewRequest("GET", "http://127.0.0.1/api/v1/dags", nil))
	var l DAGList
	if err := json.Unmarshal(w.Body.Bytes(), &l); err != nil || w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	got := map[string]DAGSummary{}
	for _, d := range l.DAGs {
		got[d.ID] = d
	}
	if c := got["busy"].RunCounts; c != (RunCounts{Of: RecentRuns, Queued: RecentRuns}) || len(got["busy"].LatestRuns) != 10 ||
		!got["busy"].LatestRuns[0].LogicalDate.Equal(day.AddDate(0, 1, 0).Add(159*time.Minute)) {
		t.Errorf("busy: %+v, %d latest", c, len(got["busy"].LatestRuns))
	}
	if c := got["quiet"].RunCounts; c != (RunCounts{Of: 3, Queued: 3}) || len(got["quiet"].LatestRuns) != 3 ||
		!got["quiet"].LatestRuns[0].LogicalDate.Equal(day.Add(2*time.Hour)) {
		t.Errorf("quiet: %+v %+v", c, got["quiet"].LatestRuns)
	}
	if c := got["idle"].RunCounts; c != (RunCounts{}) || len(got["idle"].LatestRuns) != 0 {
		t.Errorf("idle: %+v", c)
	}
}

// TestAPICalendar: runs by day of their logical date, in the DAG's zone or
// the one asked for; planned days of a scheduled DAG; the bounds.
func TestAPICalendar(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{dags: viewDAGs})
	now := time.Now().UTC()
	// Late in the evening (UTC) two days ago: in Paris that is the next day.
	late := time.Date(now.Year(), now.Month(), now.Day(), 23, 30, 0, 0, time.UTC).AddDate(0, 0, -2)
	early := late.Add(-20 * time.Hour) // 03:30 UTC, the same day in both zones
	for _, ld := range []time.Time{late, early, early.Add(time.Minute)} {
		var r Run
		if res := s.do("POST", "/api/v1/dags/flaky/runs", `{"logicalDate":"`+ld.Format(time.RFC3339)+`"}`, &r); res.StatusCode != 201 {
			t.Fatalf("trigger: %d", res.StatusCode)
		}
		// One at a time: the first to reach boom fails, the others succeed.
		s.waitFor("run "+r.RunID+" to end", 30*time.Second, func() bool { return s.runState("flaky", r.RunID).Finished() })
	}
	var c Calendar
	if res := s.do("GET", "/api/v1/dags/flaky/calendar", nil, &c); res.StatusCode != 200 {
		t.Fatalf("calendar: %d", res.StatusCode)
	}
	lateDay, earlyDay := late.Format(time.DateOnly), early.Format(time.DateOnly)
	if lateDay != earlyDay {
		t.Fatalf("test setup: %s and %s", lateDay, earlyDay)
	}
	wantFrom := time.Date(now.Year(), now.Month()-11, 1, 0, 0, 0, 0, time.UTC).Format(time.DateOnly)
	if c.Timezone != "UTC" || c.From != wantFrom || c.Today != now.Format(time.DateOnly) || len(c.Planned) != 0 || c.Truncated ||
		len(c.Days) != 1 || c.Days[0] != (CalendarDay{Date: lateDay, Total: 3, Success: 2, Failed: 1, State: task.RunFailed}) {
		t.Errorf("calendar (UTC) = %+v, want from %s", c, wantFrom)
	}
	paris, _ := time.LoadLocation("Europe/Paris")
	s.do("GET", "/api/v1/dags/flaky/calendar?tz=Europe/Paris&months=2", nil, &c)
	if c.Timezone != "Europe/Paris" || len(c.Days) != 2 || c.Days[0].Date != early.In(paris).Format(time.DateOnly) ||
		c.Days[1].Date != late.In(paris).Format(time.DateOnly) || c.Days[0].Total != 2 || c.Days[1].Total != 1 {
		t.Errorf("calendar (Paris) = %+v", c)
	}
	// nightly is scheduled daily in Paris: its calendar is in Paris time and
	// plans the rest of the month.
	s.do("GET", "/api/v1/dags/nightly/calendar?months=1", nil, &c)
	today := time.Now().In(paris)
	left := time.Date(today.Year(), today.Month()+1, 0, 0, 0, 0, 0, paris).Day() - today.Day()
	// The first planned logical date is that of the latest interval that
	// has ended and has no run: yesterday, or the day before between
	// midnight and the schedule's hour in Paris.
	if c.Timezone != "Europe/Paris" || len(c.Planned) < left || len(c.Planned) > left+3 || !slices.IsSorted(c.Planned) {
		t.Errorf("nightly: zone %s, planned %v (want %d to %d days)", c.Timezone, c.Planned, left, left+3)
	}
	s.do("PATCH", "/api/v1/dags/nightly", `{"paused":true}`, nil)
	if s.do("GET", "/api/v1/dags/nightly/calendar", nil, &c); len(c.Planned) != 0 {
		t.Errorf("a paused DAG plans %v", c.Planned)
	}
	for _, q := range []struct{ query, field string }{
		{"months=0", "months"}, {"months=25", "months"}, {"months=x", "months"},
		{"tz=Mars/Olympus", "tz"}, {"tz=" + strings.Repeat("A", 70), "tz"}, {"tz=../../etc/passwd", "tz"},
	} {
		eb := s.expectError(s.do("GET", "/api/v1/dags/flaky/calendar?"+q.query, nil, nil), 400, CodeBadRequest, q.field)
		if !strings.Contains(eb.Error.Message, q.field) {
			t.Errorf("%s: the message %q does not name %s", q.query, eb.Error.Message, q.field)
		}
	}
	s.expectError(s.do("GET", "/api/v1/dags/nope/calendar", nil, nil), 404, CodeNotFound, "")
}

// TestAPIDurations: per task in topological order, the duration, state and
// try of its latest try in each recent run (oldest first); the bounds.
func TestAPIDurations(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{dags: viewDAGs})
	var ids []string
	for range 3 {
		r := s.trigger("etl", "")
		s.waitRun("etl", r.RunID, task.RunSuccess)
		ids = append(ids, r.RunID)
	}
	var d TaskDurations
	if res := s.do("GET", "/api/v1/dags/etl/durations?runs=2", nil, &d); res.StatusCode != 200 {
		t.Fatalf("durations: %d", res.StatusCode)
	}
	if len(d.Runs) != 2 || d.Runs[0].RunID != ids[1] || d.Runs[1].RunID != ids[2] || len(d.Tasks) != 3 {
		t.Fatalf("durations = %+v", d)
	}
	var order []string
	for _, ts := range d.Tasks {
		order = append(order, ts.TaskID)
		for i := range 2 {
			if ts.Durations[i] == nil || *ts.Durations[i] < 0 || ts.States[i] != task.StateSuccess || ts.Tries[i] != 1 {
				t.Errorf("%s in run %d: %v %s %d", ts.TaskID, i, ts.Durations[i], ts.States[i], ts.Tries[i])
			}
		}
	}
	if strings.Join(order, ",") != "extract,count,report" || d.Tasks[2].Kind != task.KindBash {
		t.Errorf("tasks %v, report's kind %s", order, d.Tasks[2].Kind)
	}
	// A run whose task has not run has no duration there.
	var q TaskDurations
	s.do("GET", "/api/v1/dags/waits/durations", nil, &q)
	if len(q.Runs) != 0 || len(q.Tasks) != 1 || len(q.Tasks[0].Durations) != 0 {
		t.Errorf("no runs: %+v", q)
	}
	for _, bad := range []string{"runs=0", "runs=101", "runs=ten"} {
		eb := s.expectError(s.do("GET", "/api/v1/dags/etl/durations?"+bad, nil, nil), 400, CodeBadRequest, "runs")
		if !strings.Contains(eb.Error.Message, "runs") {
			t.Errorf("%s: %q", bad, eb.Error.Message)
		}
	}
	s.expectError(s.do("GET", "/api/v1/dags/nope/durations", nil, nil), 404, CodeNotFound, "")
}

// TestAPIDeferredSensorSaysWhy: a sensor whose condition is not met is
// deferred; its task instance has its pokes, its next poke and why it waits.
func TestAPIDeferredSensorSaysWhy(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{dags: viewDAGs})
	r := s.trigger("waits", "")
	path := runPath("waits", r.RunID) + "/tasks/partner_file"
	var ti TaskInstance
	s.waitFor("the sensor to be deferred", 30*time.Second, func() bool {
		s.do("GET", path, nil, &ti)
		return ti.State == task.StateDeferred
	})
	if ti.Pokes != 1 || ti.NextPoke == nil || ti.NextPoke.Before(time.Now().Add(50*time.Minute)) ||
		!strings.Contains(ti.Waiting, "next poke at "+ti.NextPoke.UTC().Format(time.RFC3339)) || ti.Kind != task.KindSensor {
		t.Errorf("deferred sensor = %+v", ti)
	}
	var list TaskInstanceList
	s.do("GET", runPath("waits", r.RunID)+"/tasks", nil, &list)
	if len(list.TaskInstances) != 1 || list.TaskInstances[0].NextPoke == nil || list.TaskInstances[0].Waiting == "" {
		t.Errorf("in the list: %+v", list)
	}
}
