package task_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the Local* template fields are tested in a named zone

	"github.com/trellisdag/trellis/task"
)

// legal is the lifecycle of a task instance, written out edge by edge.
var legal = map[[2]task.State]string{
	{task.StateNone, task.StateScheduled}:           "trigger rule met",
	{task.StateNone, task.StateSkipped}:             "trigger rule skips",
	{task.StateNone, task.StateUpstreamFailed}:      "trigger rule fails",
	{task.StateNone, task.StateSuccess}:             "mark",
	{task.StateNone, task.StateFailed}:              "mark",
	{task.StateScheduled, task.StateQueued}:         "handed to an executor",
	{task.StateScheduled, task.StateNone}:           "clear",
	{task.StateScheduled, task.StateSkipped}:        "run timeout",
	{task.StateScheduled, task.StateUpstreamFailed}: "upstream failed meanwhile",
	{task.StateScheduled, task.StateSuccess}:        "mark",
	{task.StateScheduled, task.StateFailed}:         "mark",
	{task.StateQueued, task.StateRunning}:           "try started",
	{task.StateQueued, task.StateScheduled}:         "executor lost it before it ran",
	{task.StateQueued, task.StateSuccess}:           "finished before its start was recorded",
	{task.StateQueued, task.StateFailed}:            "finished before its start was recorded",
	{task.StateQueued, task.StateUpForRetry}:        "finished before its start was recorded",
	{task.StateQueued, task.StateSkipped}:           "run timeout",
	{task.StateRunning, task.StateSuccess}:          "try ended",
	{task.StateRunning, task.StateFailed}:           "try ended",
	{task.StateRunning, task.StateUpForRetry}:       "try ended",
	{task.StateRunning, task.StateSkipped}:          "skipped itself, or run timeout",
	{task.StateUpForRetry, task.StateScheduled}:     "retry due",
	{task.StateUpForRetry, task.StateNone}:          "clear",
	{task.StateUpForRetry, task.StateSkipped}:       "run timeout",
	{task.StateUpForRetry, task.StateSuccess}:       "mark",
	{task.StateUpForRetry, task.StateFailed}:        "mark",
	{task.StateSuccess, task.StateNone}:             "clear",
	{task.StateSuccess, task.StateFailed}:           "mark",
	{task.StateFailed, task.StateNone}:              "clear",
	{task.StateFailed, task.StateSuccess}:           "mark",
	{task.StateUpstreamFailed, task.StateNone}:      "clear",
	{task.StateUpstreamFailed, task.StateSuccess}:   "mark",
	{task.StateUpstreamFailed, task.StateFailed}:    "mark",
	{task.StateSkipped, task.StateNone}:             "clear",
	{task.StateSkipped, task.StateSuccess}:          "mark",
	{task.StateSkipped, task.StateFailed}:           "mark",
	// A redeploy removes the task from the DAG, whatever its state; it comes
	// back as none when a later definition has it again.
	{task.StateNone, task.StateRemoved}:           "task removed",
	{task.StateScheduled, task.StateRemoved}:      "task removed",
	{task.StateQueued, task.StateRemoved}:         "task removed",
	{task.StateRunning, task.StateRemoved}:        "task removed",
	{task.StateUpForRetry, task.StateRemoved}:     "task removed",
	{task.StateSuccess, task.StateRemoved}:        "task removed",
	{task.StateFailed, task.StateRemoved}:         "task removed",
	{task.StateUpstreamFailed, task.StateRemoved}: "task removed",
	{task.StateSkipped, task.StateRemoved}:        "task removed",
	{task.StateRemoved, task.StateNone}:           "task restored",
	// A sensor defers between pokes; a poke, a mark, a clear or a timeout ends the wait.
	{task.StateRunning, task.StateDeferred}:    "poke not met",
	{task.StateQueued, task.StateDeferred}:     "poke not met before its start was recorded",
	{task.StateDeferred, task.StateDeferred}:   "next poke",
	{task.StateDeferred, task.StateSuccess}:    "poke met, or mark",
	{task.StateDeferred, task.StateFailed}:     "poke failed, sensor timeout, or mark",
	{task.StateDeferred, task.StateUpForRetry}: "poke failed",
	{task.StateDeferred, task.StateSkipped}:    "soft fail, or run timeout",
	{task.StateDeferred, task.StateNone}:       "clear",
	{task.StateDeferred, task.StateRemoved}:    "task removed",
}

func TestCheckTransitionLegal(t *testing.T) {
	t.Parallel()
	for e, why := range legal {
		if err := task.CheckTransition(e[0], e[1]); err != nil {
			t.Errorf("%s -> %s (%s) refused: %v", e[0], e[1], why, err)
		}
	}
}

func TestCheckTransitionIllegal(t *testing.T) {
	t.Parallel()
	samples := [][2]task.State{
		{task.StateNone, task.StateQueued},       // must be scheduled first
		{task.StateNone, task.StateRunning},      // must be queued first
		{task.StateNone, task.StateUpForRetry},   // never ran
		{task.StateScheduled, task.StateRunning}, // must be queued first
		{task.StateQueued, task.StateNone},       // clear refuses a try in flight
		{task.StateQueued, task.StateUpstreamFailed},
		{task.StateRunning, task.StateNone},      // clear refuses a try in flight
		{task.StateRunning, task.StateQueued},    // a started try is not put back
		{task.StateRunning, task.StateScheduled}, // ditto
		{task.StateRunning, task.StateUpstreamFailed},
		{task.StateUpForRetry, task.StateQueued},  // via scheduled
		{task.StateUpForRetry, task.StateRunning}, // via scheduled and queued
		{task.StateSuccess, task.StateRunning},    // finished stays finished
		{task.StateSuccess, task.StateSkipped},    // mark is success/failed only
		{task.StateFailed, task.StateUpForRetry},  // no retries left
		{task.StateSkipped, task.StateScheduled},  // only by clear
		{task.StateUpstreamFailed, task.StateSkipped},
		{task.StateSuccess, task.StateSuccess}, // no self edges
		{task.StateRunning, task.StateRunning},
		{task.StateNone, task.StateNone},
		{"bogus", task.StateNone}, // unknown states
		{task.StateNone, "bogus"},
	}
	for _, e := range samples {
		err := task.CheckTransition(e[0], e[1])
		if !errors.Is(err, task.ErrIllegalTransition) {
			t.Errorf("CheckTransition(%s, %s) = %v, want ErrIllegalTransition", e[0], e[1], err)
			continue
		}
		if want := fmt.Sprintf("%s -> %s", e[0], e[1]); !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name the edge %q", err, want)
		}
	}
	// Everything not in the lifecycle above is refused.
	for _, from := range task.States {
		for _, to := range task.States {
			_, ok := legal[[2]task.State{from, to}]
			if err := task.CheckTransition(from, to); ok != (err == nil) {
				t.Errorf("CheckTransition(%s, %s) = %v; legal: %v", from, to, err, ok)
			}
		}
	}
}

func TestStates(t *testing.T) {
	t.Parallel()
	finished := map[task.State]bool{task.StateSuccess: true, task.StateFailed: true, task.StateUpstreamFailed: true, task.StateSkipped: true, task.StateRemoved: true}
	active := map[task.State]bool{task.StateQueued: true, task.StateRunning: true}
	if len(task.States) != 11 {
		t.Fatalf("len(States) = %d, want 11", len(task.States))
	}
	for _, s := range task.States {
		if s.Finished() != finished[s] {
			t.Errorf("%s.Finished() = %v", s, s.Finished())
		}
		if s.Active() != active[s] {
			t.Errorf("%s.Active() = %v", s, s.Active())
		}
		if !s.Valid() {
			t.Errorf("%s.Valid() = false", s)
		}
	}
	if task.State("bogus").Valid() {
		t.Error(`State("bogus").Valid() = true`)
	}
	for s, want := range map[task.RunState]bool{task.RunQueued: false, task.RunRunning: false, task.RunSuccess: true, task.RunFailed: true} {
		if s.Finished() != want {
			t.Errorf("RunState %s Finished() = %v", s, !want)
		}
	}
}

func TestPolicyDelay(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		p    task.Policy
		next int
		want time.Duration
	}{
		{"fixed, first retry", task.Policy{RetryDelay: 5 * time.Minute}, 2, 5 * time.Minute},
		{"fixed, tenth retry", task.Policy{RetryDelay: 5 * time.Minute}, 11, 5 * time.Minute},
		{"fixed, zero", task.Policy{}, 3, 0},
		{"fixed delay is not capped (Airflow caps only backoff)", task.Policy{RetryDelay: 30 * time.Hour}, 2, 30 * time.Hour},
		{"max retry delay applies only under backoff, as in Airflow", task.Policy{RetryDelay: time.Hour, MaxRetryDelay: 10 * time.Minute}, 2, time.Hour},
		{"exponential, first retry is the base", task.Policy{RetryDelay: time.Minute, ExponentialBackoff: true}, 2, time.Minute},
		{"exponential, second retry doubles", task.Policy{RetryDelay: time.Minute, ExponentialBackoff: true}, 3, 2 * time.Minute},
		{"exponential, third retry", task.Policy{RetryDelay: time.Minute, ExponentialBackoff: true}, 4, 4 * time.Minute},
		{"exponential, sixth retry", task.Policy{RetryDelay: time.Minute, ExponentialBackoff: true}, 7, 32 * time.Minute},
		{"exponential, capped", task.Policy{RetryDelay: time.Minute, ExponentialBackoff: true, MaxRetryDelay: 5 * time.Minute}, 5, 5 * time.Minute},
		{"exponential, below the cap", task.Policy{RetryDelay: time.Minute, ExponentialBackoff: true, MaxRetryDelay: 5 * time.Minute}, 4, 4 * time.Minute},
		{"exponential, capped long after", task.Policy{RetryDelay: time.Minute, ExponentialBackoff: true, MaxRetryDelay: 5 * time.Minute}, 500, 5 * time.Minute},
		{"exponential, default cap 24h", task.Policy{RetryDelay: time.Hour, ExponentialBackoff: true}, 10, 24 * time.Hour},
		{"exponential, default cap, no overflow", task.Policy{RetryDelay: time.Hour, ExponentialBackoff: true}, 10000, 24 * time.Hour},
		{"exponential, zero base", task.Policy{ExponentialBackoff: true}, 50, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if got := c.p.Delay(c.next); got != c.want {
				t.Errorf("%+v.Delay(%d) = %s, want %s", c.p, c.next, got, c.want)
			}
		})
	}
}

func TestPolicyDelayCapAbove24h(t *testing.T) {
	t.Parallel()
	p := task.Policy{RetryDelay: time.Hour, ExponentialBackoff: true, MaxRetryDelay: 48 * time.Hour}
	if got := p.Delay(8); got != 48*time.Hour {
		t.Fatalf("Delay(8) = %s, want the 48h cap (1h * 2^6 = 64h, capped)", got)
	}
}

func TestValidID(t *testing.T) {
	t.Parallel()
	ok := []string{"a", "Z", "0", "extract", "load_2024", "a.b-c_d", "A1", strings.Repeat("x", 63)}
	bad := map[string]string{
		"":                      "empty",
		strings.Repeat("x", 64): "64 characters",
		"a b":                   "space",
		" a":                    "leading space",
		"-a":                    "starts with '-'",
		"a-":                    "ends with '-'",
		"_a":                    "starts with '_'",
		"a.":                    "ends with '.'",
		"a/b":                   "slash",
		"a:b":                   "colon",
		"café":                  "non-ASCII",
		"a\nb":                  "newline",
	}
	for _, id := range ok {
		if err := task.ValidID(id); err != nil {
			t.Errorf("ValidID(%q) = %v, want nil", id, err)
		}
	}
	for id, why := range bad {
		err := task.ValidID(id)
		if err == nil {
			t.Errorf("ValidID(%q) accepted an id with %s", id, why)
			continue
		}
		if id != "" && !strings.Contains(err.Error(), fmt.Sprintf("%q", id)) {
			t.Errorf("ValidID(%q) = %q; want the error to quote the id", id, err)
		}
	}
	if err := task.ValidID(strings.Repeat("x", 64)); err == nil || !strings.Contains(err.Error(), "64") {
		t.Errorf("ValidID(64 chars) = %v; want it to give the length", err)
	}
}

type point struct {
	X, Y int
}

// results is an Inputs over a map of stored results.
type results map[string]string

func (m results) Result(id string) ([]byte, bool, error) {
	v, ok := m[id]
	return []byte(v), ok, nil
}

func noop[T any](context.Context, *task.Run) (T, error) {
	var v T
	return v, nil
}

func TestOutput(t *testing.T) {
	t.Parallel()
	pt := task.Go("point", noop[point])
	names := task.Go("names", noop[[]string])
	far := task.Go("far", noop[int])        // upstream of pt, not of reader
	other := task.Go("other", noop[string]) // not linked at all
	reader := task.Go("reader", noop[int])
	down := task.Go("down", noop[int]) // downstream of reader
	far.Then(pt)
	pt.Then(reader)
	names.Then(reader)
	reader.Then(down)

	inputs := results{"point": `{"X":1,"Y":2}`, "far": `7`, "other": `"x"`, "down": `1`}
	r := task.NewRun(reader, task.Info{TaskID: "reader"}, nil, nil, inputs, nil)

	p, err := task.Output(r, pt)
	if err != nil || p != (point{1, 2}) {
		t.Fatalf("Output(point) = %+v, %v; want {1 2}", p, err)
	}

	_, err = task.Output(r, names)
	if !errors.Is(err, task.ErrNoResult) {
		t.Errorf("Output of an upstream with no stored result = %v, want ErrNoResult", err)
	}

	for _, c := range []struct {
		name string
		call func() error
	}{
		{"indirect upstream", func() error { _, err := task.Output(r, far); return err }},
		{"unlinked task", func() error { _, err := task.Output(r, other); return err }},
		{"downstream task", func() error { _, err := task.Output(r, down); return err }},
		{"itself", func() error { _, err := task.Output(r, reader); return err }},
	} {
		err := c.call()
		if !errors.Is(err, task.ErrNotUpstream) {
			t.Errorf("%s: Output = %v, want ErrNotUpstream", c.name, err)
		} else if !strings.Contains(err.Error(), `"reader"`) {
			t.Errorf("%s: error %q does not name the reading task", c.name, err)
		}
	}

	// A stored result that does not decode as T is an error naming both tasks.
	bad := task.NewRun(reader, task.Info{}, nil, nil, results{"point": `"not a point"`}, nil)
	if _, err := task.Output(bad, pt); err == nil || errors.Is(err, task.ErrNoResult) ||
		!strings.Contains(err.Error(), `"reader"`) || !strings.Contains(err.Error(), `"point"`) {
		t.Errorf("Output of an undecodable result = %v; want a decode error naming both tasks", err)
	}

	// An error of the inputs is passed on.
	boom := errors.New("database gone")
	failing := task.NewRun(reader, task.Info{}, nil, nil,
		task.InputsFunc(func(string) ([]byte, bool, error) { return nil, false, boom }), nil)
	if _, err := task.Output(failing, pt); !errors.Is(err, boom) {
		t.Errorf("Output with failing inputs = %v, want it to wrap %v", err, boom)
	}

	// Without inputs, NewRun gives none.
	empty := task.NewRun(reader, task.Info{}, nil, nil, nil, nil)
	if _, err := task.Output(empty, pt); !errors.Is(err, task.ErrNoResult) {
		t.Errorf("Output with nil inputs = %v, want ErrNoResult", err)
	}
}

func TestGoTaskExecute(t *testing.T) {
	t.Parallel()
	ok := task.Go("ok", func(context.Context, *task.Run) (map[string]int, error) { return map[string]int{"n": 3}, nil })
	r := task.NewRun(ok, task.Info{}, nil, nil, nil, nil)
	got, err := ok.Execute(context.Background(), r)
	if err != nil || string(got) != `{"n":3}` {
		t.Errorf("Execute = %s, %v; want {\"n\":3}", got, err)
	}

	boom := errors.New("boom")
	failing := task.Go("failing", func(context.Context, *task.Run) (int, error) { return 0, boom })
	if _, err := failing.Execute(context.Background(), task.NewRun(failing, task.Info{}, nil, nil, nil, nil)); !errors.Is(err, boom) {
		t.Errorf("Execute of a failing function = %v, want %v", err, boom)
	}

	unencodable := task.Go("chan", func(context.Context, *task.Run) (chan int, error) { return make(chan int), nil })
	if _, err := unencodable.Execute(context.Background(), task.NewRun(unencodable, task.Info{}, nil, nil, nil, nil)); err == nil {
		t.Error("Execute of a result that is not JSON-encodable succeeded")
	}

	nilFn := task.Go[int]("nil", nil)
	if errs := task.Problems(nilFn, ""); len(errs) != 1 || !strings.Contains(errs[0].Error(), "nil function") {
		t.Errorf("Problems of Go with a nil function = %v", errs)
	}

	sc := task.ShortCircuit("sc", func(context.Context, *task.Run) (bool, error) { return false, nil })
	if got, err := sc.Execute(context.Background(), task.NewRun(sc, task.Info{}, nil, nil, nil, nil)); err != nil || string(got) != "false" {
		t.Errorf("ShortCircuit Execute = %s, %v; want false", got, err)
	}
	if s := task.SettingsOf(sc); s.Kind != task.KindShortCircuit || s.TriggerRule != task.AllSuccess || s.Priority != 1 {
		t.Errorf("ShortCircuit settings = %+v", s)
	}
}

func TestBranch(t *testing.T) {
	t.Parallel()
	left := task.Go("left", noop[int])
	right := task.Go("right", noop[int])
	stranger := task.Go("stranger", noop[int])
	cases := []struct {
		name    string
		choose  []task.Task
		want    string
		wantErr string
	}{
		{"one branch", []task.Task{right}, `["right"]`, ""},
		{"both branches", []task.Task{left, right}, `["left","right"]`, ""},
		{"no branch", nil, `[]`, ""},
		{"not downstream", []task.Task{left, stranger}, "", `"stranger", which is not a direct downstream task`},
		{"nil", []task.Task{nil}, "", `"<nil>", which is not a direct downstream task`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			br := task.Branch("br", func(context.Context, *task.Run) ([]task.Task, error) { return c.choose, nil })
			br.Then(left, right)
			got, err := br.Execute(context.Background(), task.NewRun(br, task.Info{}, nil, nil, nil, nil))
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("Execute = %s, %v; want an error containing %q", got, err, c.wantErr)
				}
				return
			}
			if err != nil || string(got) != c.want {
				t.Fatalf("Execute = %s, %v; want %s", got, err, c.want)
			}
		})
	}
	if task.SettingsOf(task.Branch("b", nil)).Kind != task.KindBranch {
		t.Error("Branch kind is not branch")
	}
}

func TestTemplate(t *testing.T) {
	t.Parallel()
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	ld := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := []struct {
		name string
		info task.Info
		want task.TemplateData
	}{
		{"UTC", task.Info{LogicalDate: ld.Truncate(24 * time.Hour)}, task.TemplateData{
			DS: "2024-01-02", DSNodash: "20240102", TS: "2024-01-02T00:00:00+00:00", TSNodash: "20240102T000000",
			LocalDS: "2024-01-02", LocalTS: "2024-01-02T00:00:00+00:00"}},
		{"New York: local date is the day before", task.Info{LogicalDate: ld, Location: ny}, task.TemplateData{
			DS: "2024-01-02", DSNodash: "20240102", TS: "2024-01-02T03:04:05+00:00", TSNodash: "20240102T030405",
			LocalDS: "2024-01-01", LocalTS: "2024-01-01T22:04:05-05:00"}},
		{"logical date given in Tokyo time is rendered in UTC", task.Info{LogicalDate: ld.In(tokyo), Location: tokyo}, task.TemplateData{
			DS: "2024-01-02", DSNodash: "20240102", TS: "2024-01-02T03:04:05+00:00", TSNodash: "20240102T030405",
			LocalDS: "2024-01-02", LocalTS: "2024-01-02T12:04:05+09:00"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			tk := task.Go("t", noop[int])
			got := task.NewRun(tk, c.info, nil, nil, nil, nil).Template()
			for _, f := range []struct{ name, got, want string }{
				{"DS", got.DS, c.want.DS}, {"DSNodash", got.DSNodash, c.want.DSNodash},
				{"TS", got.TS, c.want.TS}, {"TSNodash", got.TSNodash, c.want.TSNodash},
				{"LocalDS", got.LocalDS, c.want.LocalDS}, {"LocalTS", got.LocalTS, c.want.LocalTS},
			} {
				if f.got != f.want {
					t.Errorf("%s = %q, want %q", f.name, f.got, f.want)
				}
			}
			if got.LogicalDate.Location() != time.UTC || !got.LogicalDate.Equal(c.info.LogicalDate) {
				t.Errorf("LogicalDate = %v, want %v in UTC", got.LogicalDate, c.info.LogicalDate)
			}
		})
	}

	// The rest of the context, and rendering through ParseTemplate.
	start, end := time.Date(2024, 1, 1, 0, 0, 0, 0, ny), time.Date(2024, 1, 2, 0, 0, 0, 0, ny)
	tk := task.Go("load", noop[int])
	info := task.Info{DAGID: "etl", TaskID: "load", RunID: "manual__1", Try: 3, LogicalDate: start,
		DataIntervalStart: start, DataIntervalEnd: end, Location: ny}
	r := task.NewRun(tk, info, map[string]any{"table": "users"}, json.RawMessage(`{"table":"users","n":2}`), nil, nil)
	td := r.Template()
	if td.DAGID != "etl" || td.TaskID != "load" || td.RunID != "manual__1" || td.TryNumber != 3 {
		t.Errorf("identity fields = %q %q %q %d", td.DAGID, td.TaskID, td.RunID, td.TryNumber)
	}
	if td.DataIntervalStart.Location() != time.UTC || !td.DataIntervalStart.Equal(start) || !td.DataIntervalEnd.Equal(end) {
		t.Errorf("data interval = %v - %v, want %v - %v in UTC", td.DataIntervalStart, td.DataIntervalEnd, start, end)
	}
	if td.Conf["n"] != float64(2) || td.Params["table"] != "users" {
		t.Errorf("Conf = %v, Params = %v", td.Conf, td.Params)
	}
	tmpl, err := task.ParseTemplate("cmd", "{{ .DS }} {{ .LocalDS }} {{ .Params.table }} {{ .Conf.n }} {{ .RunID }} {{ .TryNumber }}")
	if err != nil {
		t.Fatal(err)
	}
	if s, err := r.Render(tmpl); err != nil || s != "2024-01-01 2024-01-01 users 2 manual__1 3" {
		t.Errorf("Render = %q, %v", s, err)
	}
	missing, err := task.ParseTemplate("cmd", "{{ .Params.nope }}")
	if err != nil {
		t.Fatal(err)
	}
	if s, err := r.Render(missing); err == nil || !strings.Contains(err.Error(), "nope") || !strings.Contains(err.Error(), `"load"`) {
		t.Errorf("Render of a missing key = %q, %v; want an error naming the key and the task", s, err)
	}
	if _, err := task.ParseTemplate("cmd", "{{ .DS "); err == nil {
		t.Error("ParseTemplate accepted an unclosed action")
	}

	// No conf: an empty map, so templates can test keys.
	if c := task.NewRun(tk, info, nil, nil, nil, nil).Template().Conf; c == nil || len(c) != 0 {
		t.Errorf("Conf without conf = %#v, want an empty map", c)
	}
}

func TestRunAccessors(t *testing.T) {
	t.Parallel()
	tk := task.Go("t", noop[int])
	start, end := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC), time.Date(2024, 5, 2, 0, 0, 0, 0, time.UTC)
	var log strings.Builder
	r := task.NewRun(tk, task.Info{TaskID: "t", LogicalDate: start, DataIntervalStart: start, DataIntervalEnd: end},
		map[string]any{"a": 1}, json.RawMessage(`{"a":1}`), nil, &log)
	if s, e := r.DataInterval(); !s.Equal(start) || !e.Equal(end) || !r.LogicalDate().Equal(start) {
		t.Errorf("DataInterval = %v, %v", s, e)
	}
	if r.Params()["a"] != 1 || string(r.Conf()) != `{"a":1}` || r.Info().TaskID != "t" {
		t.Errorf("Params/Conf/Info = %v %s %+v", r.Params(), r.Conf(), r.Info())
	}
	r.Log().Info("hello", "k", "v")
	fmt.Fprint(r.Output(), "raw\n")
	if got := log.String(); !strings.Contains(got, "msg=hello k=v") || !strings.HasSuffix(got, "raw\n") {
		t.Errorf("log = %q", got)
	}
}

func TestSkip(t *testing.T) {
	t.Parallel()
	err := task.Skip("no new files")
	if !errors.Is(err, task.ErrSkip) {
		t.Fatalf("Skip = %v, does not wrap ErrSkip", err)
	}
	if !strings.Contains(err.Error(), "no new files") {
		t.Errorf("Skip = %q, does not carry the reason", err)
	}
	if wrapped := fmt.Errorf("step 2: %w", err); !errors.Is(wrapped, task.ErrSkip) {
		t.Error("a wrapped Skip no longer matches ErrSkip")
	}
	if errors.Is(err, task.ErrFailNow) {
		t.Error("Skip matches ErrFailNow")
	}
}

func TestOptionsAndPolicy(t *testing.T) {
	t.Parallel()
	defaults := task.Policy{Retries: 2, RetryDelay: time.Minute, Timeout: time.Hour}
	plain := task.Go("plain", noop[int])
	if got := task.PolicyOf(plain, defaults); got != defaults {
		t.Errorf("PolicyOf(no options) = %+v, want the defaults %+v", got, defaults)
	}
	own := task.Go("own", noop[int], task.Retries(0), task.RetryDelay(time.Second), task.ExponentialBackoff(true),
		task.MaxRetryDelay(time.Minute), task.Timeout(0))
	want := task.Policy{Retries: 0, RetryDelay: time.Second, ExponentialBackoff: true, MaxRetryDelay: time.Minute, Timeout: 0}
	if got := task.PolicyOf(own, defaults); got != want {
		t.Errorf("PolicyOf(own zero values) = %+v, want %+v (options set to zero win over defaults)", got, want)
	}

	bad := task.Go("bad", noop[int], task.Retries(-1), task.RetryDelay(-time.Second), task.MaxRetryDelay(-time.Second),
		task.Timeout(-time.Second), task.Trigger("sometimes"), task.Pool(""),
		task.Executor(task.ExecutorConfig{Executor: "celery"}))
	errs := task.Problems(bad, "")
	for _, want := range []string{"retries -1 is negative", "retry delay -1s is negative", "max retry delay -1s is negative",
		"execution timeout -1s is negative", `unknown trigger rule "sometimes"`, "empty pool name", `unknown executor "celery"`} {
		found := false
		for _, e := range errs {
			found = found || strings.Contains(e.Error(), want)
		}
		if !found {
			t.Errorf("Problems = %v; missing %q", errs, want)
		}
	}
	if len(errs) != 7 {
		t.Errorf("Problems = %d errors, want 7: %v", len(errs), errs)
	}

	s := task.SettingsOf(task.Go("s", noop[int], task.Trigger(task.OneFailed), task.Priority(5), task.Pool("db"),
		task.WaitForDownstream(true), task.Doc("docs")))
	if s.TriggerRule != task.OneFailed || s.Priority != 5 || s.Pool != "db" || !s.WaitForDownstream || !s.DependsOnPast || s.Doc != "docs" || s.Kind != task.KindGo {
		t.Errorf("Settings = %+v", s)
	}
}

func TestEdges(t *testing.T) {
	t.Parallel()
	a, b, c, d := task.Go("a", noop[int]), task.Go("b", noop[int]), task.Go("c", noop[int]), task.Go("d", noop[int])
	for _, x := range []task.Task{a, b, c, d} {
		if err := task.Adopt(x, "g"); err != nil {
			t.Fatal(err)
		}
	}
	if last := a.Then(b).Then(c); last != c {
		t.Errorf("a.Then(b).Then(c) returned %v, want c", last)
	}
	a.Then(b) // linking twice keeps one edge
	d.After(a, c)
	ids := func(ts []task.Task) string {
		var s []string
		for _, x := range ts {
			s = append(s, x.ID())
		}
		return strings.Join(s, ",")
	}
	for _, e := range []struct{ name, got, want string }{
		{"down(a)", ids(task.Downstream(a)), "b,d"},
		{"up(b)", ids(task.Upstream(b)), "a"},
		{"up(d)", ids(task.Upstream(d)), "a,c"},
		{"down(d)", ids(task.Downstream(d)), ""},
	} {
		if e.got != e.want {
			t.Errorf("%s = %q, want %q", e.name, e.got, e.want)
		}
	}
	if err := task.Adopt(a, "other"); !errors.Is(err, task.ErrOtherDAG) {
		t.Errorf("Adopt into a second DAG = %v, want ErrOtherDAG", err)
	}
	if err := task.Adopt(a, "g"); err != nil {
		t.Errorf("Adopt into the same DAG again = %v", err)
	}
	a.Then(nil)
	d.After(nil)
	if errs := task.Problems(a, "g"); len(errs) != 1 || !strings.Contains(errs[0].Error(), "Then: nil task") {
		t.Errorf("Problems(a) = %v", errs)
	}
	if errs := task.Problems(d, "g"); len(errs) != 1 || !strings.Contains(errs[0].Error(), "After: nil task") {
		t.Errorf("Problems(d) = %v", errs)
	}
}

func ExampleGo() {
	extract := task.Go("extract", func(ctx context.Context, r *task.Run) ([]int, error) {
		return []int{3, 4, 5}, nil
	})
	sum := task.Go("sum", func(ctx context.Context, r *task.Run) (int, error) {
		xs, err := task.Output(r, extract) // typed: xs is a []int
		if err != nil {
			return 0, err
		}
		total := 0
		for _, x := range xs {
			total += x
		}
		return total, nil
	})
	extract.Then(sum)

	// What an executor does: run extract, store its result, hand it to sum.
	stored := map[string][]byte{}
	inputs := task.InputsFunc(func(id string) ([]byte, bool, error) {
		b, ok := stored[id]
		return b, ok, nil
	})
	for _, t := range []task.Task{extract, sum} {
		r := task.NewRun(t, task.Info{TaskID: t.ID(), Try: 1}, nil, nil, inputs, nil)
		out, err := t.Execute(context.Background(), r)
		if err != nil {
			fmt.Println(err)
			return
		}
		stored[t.ID()] = out
		fmt.Printf("%s: %s\n", t.ID(), out)
	}
	// Output:
	// extract: [3,4,5]
	// sum: 12
}

func TestTemplateUpstreamResults(t *testing.T) {
	t.Parallel()
	extract := task.Go("extract", noop[map[string]any])
	count := task.Go("count", noop[int])
	skipped := task.Go("skipped", noop[int])
	far := task.Go("far", noop[int])
	load := task.Go("load", noop[int])
	far.Then(extract)
	extract.Then(load)
	count.Then(load)
	skipped.Then(load)
	stored := map[string]string{"extract": `{"path":"s3://b/2024-01-01.csv","rows":12345678901}`, "count": `42`}
	in := task.InputsFunc(func(id string) ([]byte, bool, error) {
		v, ok := stored[id]
		return []byte(v), ok, nil
	})
	r := task.NewRun(load, task.Info{DAGID: "etl", TaskID: "load"}, nil, nil, in, nil)
	cases := []struct {
		text, want string
		err        error
	}{
		{`{{ .Output "extract" }}`, stored["extract"], nil},
		{`{{ (.Result "extract").path }} {{ (.Result "extract").rows }} {{ .Result "count" }}`, "s3://b/2024-01-01.csv 12345678901 42", nil},
		{`{{ .Output "skipped" }}`, "", task.ErrNoResult},
		{`{{ .Output "far" }}`, "", task.ErrNotUpstream},
		{`{{ .Result "nope" }}`, "", task.ErrNotUpstream},
	}
	for _, c := range cases {
		tmpl, err := task.ParseTemplate("args[0]", c.text)
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.Render(tmpl)
		if !errors.Is(err, c.err) || got != c.want && c.err == nil {
			t.Errorf("%s = %q, %v; want %q, %v", c.text, got, err, c.want, c.err)
		}
		if err != nil && (!strings.Contains(err.Error(), `task "load"`) || strings.Count(err.Error(), "\n") > 0) {
			t.Errorf("%s: error %q should be one line naming the task", c.text, err)
		}
	}
}

// TestExecutorFor: one rule says where a task's tries run.
func TestExecutorFor(t *testing.T) {
	t.Parallel()
	goTask := task.Go("g", func(context.Context, *task.Run) (int, error) { return 0, nil })
	onKube := task.Go("k", func(context.Context, *task.Run) (int, error) { return 0, nil },
		task.Executor(task.ExecutorConfig{Executor: task.ExecutorKubernetes}))
	sensor := task.Sensor("s", func(context.Context, *task.Run) (bool, error) { return true, nil })
	for _, tc := range []struct {
		t    task.Task
		def  task.ExecutorKind
		want task.ExecutorKind
	}{
		{goTask, task.ExecutorDefault, task.ExecutorLocal},
		{goTask, task.ExecutorKubernetes, task.ExecutorKubernetes},
		{onKube, task.ExecutorLocal, task.ExecutorKubernetes},
		{sensor, task.ExecutorKubernetes, task.ExecutorLocal},
	} {
		if got := task.SettingsOf(tc.t).ExecutorFor(tc.def); got != tc.want {
			t.Errorf("%s with runner default %q: %q, want %q", tc.t.ID(), tc.def, got, tc.want)
		}
	}
}
