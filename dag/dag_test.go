package dag_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // named zones without relying on the system database

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/task"
)

func noop(context.Context, *task.Run) (int, error) { return 0, nil }

func gt(id string, opts ...task.Option) *task.GoTask[int] { return task.Go(id, noop, opts...) }

// lines splits a Validate error into its problems (errors.Join puts one per line).
func lines(err error) []string {
	if err == nil {
		return nil
	}
	return strings.Split(err.Error(), "\n")
}

func TestValidate(t *testing.T) {
	t.Parallel()
	day := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name  string
		build func() *dag.DAG
		want  []string // each must be one problem line, in this order
	}{
		{"valid", func() *dag.DAG {
			a, b := gt("a"), gt("b")
			a.Then(b)
			return dag.New("ok", dag.Schedule("@daily"), dag.StartDate(day)).Add(a, b)
		}, nil},
		{"cycle", func() *dag.DAG {
			a, b, c := gt("a"), gt("b"), gt("c")
			task.Chain(a, b, c, a)
			return dag.New("cyc").Add(a, b, c)
		}, []string{`dag "cyc": cycle: a -> b -> c -> a`}},
		{"cycle behind an entry task", func() *dag.DAG {
			s, x, y := gt("start"), gt("x"), gt("y")
			s.Then(x)
			x.Then(y)
			y.Then(x)
			return dag.New("cyc2").Add(s, x, y)
		}, []string{`dag "cyc2": cycle: x -> y -> x`}},
		{"self loop", func() *dag.DAG {
			a := gt("a")
			a.Then(a)
			return dag.New("self").Add(a)
		}, []string{`dag "self": cycle: a -> a`}},
		{"duplicate task ids", func() *dag.DAG {
			return dag.New("dup").Add(gt("a"), gt("b"), gt("a"))
		}, []string{`dag "dup": task "a": duplicate task id`}},
		{"same task added twice", func() *dag.DAG {
			a := gt("a")
			return dag.New("twice").Add(a, a)
		}, []string{`dag "twice": task "a": duplicate task id`}},
		{"edge to a task never added", func() *dag.DAG {
			a, ghost := gt("a"), gt("ghost")
			a.Then(ghost)
			return dag.New("lost").Add(a)
		}, []string{`dag "lost": task "a": downstream task "ghost" was never added to the DAG`}},
		{"edge from a task never added", func() *dag.DAG {
			ghost, a := gt("ghost"), gt("a")
			ghost.Then(a)
			return dag.New("lost2").Add(a)
		}, []string{`dag "lost2": task "a": upstream task "ghost" was never added to the DAG`}},
		{"edge to a task of another DAG", func() *dag.DAG {
			a, theirs := gt("a"), gt("theirs")
			dag.New("other").Add(theirs)
			a.Then(theirs)
			return dag.New("mine").Add(a)
		}, []string{`dag "mine": task "a": downstream task "theirs" belongs to DAG "other"`}},
		{"task added to a second DAG", func() *dag.DAG {
			a := gt("a")
			dag.New("first").Add(a)
			return dag.New("second").Add(a)
		}, []string{`dag "second": task "a": task already belongs to another DAG ("first")`}},
		{"nil task", func() *dag.DAG { return dag.New("nil").Add(nil) }, []string{`dag "nil": Add: nil task`}},
		{"empty dag id", func() *dag.DAG { return dag.New("") }, []string{`dag "": dag id: empty id`}},
		{"empty task id", func() *dag.DAG { return dag.New("d").Add(gt("")) }, []string{`dag "d": task "": empty id`}},
		{"64-character task id", func() *dag.DAG { return dag.New("d").Add(gt(strings.Repeat("t", 64))) },
			[]string{fmt.Sprintf(`dag "d": task %q: id %q is 64 characters; at most 63`, strings.Repeat("t", 64), strings.Repeat("t", 64))}},
		{"64-character dag id", func() *dag.DAG { return dag.New(strings.Repeat("d", 64)) },
			[]string{fmt.Sprintf(`dag %q: dag id: id %q is 64 characters`, strings.Repeat("d", 64), strings.Repeat("d", 64))}},
		{"task id with a space", func() *dag.DAG { return dag.New("d").Add(gt("load users")) },
			[]string{`dag "d": task "load users": id "load users": use only letters, digits`}},
		{"dag id with a space", func() *dag.DAG { return dag.New("my dag") },
			[]string{`dag "my dag": dag id: id "my dag": use only letters`}},
		{"unparsable schedule", func() *dag.DAG { return dag.New("d", dag.Schedule("61 * * * *")) },
			[]string{`dag "d": schedule "61 * * * *": `}},
		{"schedule with too few fields", func() *dag.DAG { return dag.New("d", dag.Schedule("* * *")) },
			[]string{`dag "d": schedule "* * *": `}},
		{"unknown descriptor", func() *dag.DAG { return dag.New("d", dag.Schedule("@fortnightly")) },
			[]string{`dag "d": schedule "@fortnightly": `}},
		{"negative task retries", func() *dag.DAG { return dag.New("d").Add(gt("a", task.Retries(-1))) },
			[]string{`dag "d": task "a": retries -1 is negative`}},
		{"negative task timeout", func() *dag.DAG { return dag.New("d").Add(gt("a", task.Timeout(-time.Minute))) },
			[]string{`dag "d": task "a": execution timeout -1m0s is negative`}},
		{"negative task retry delay", func() *dag.DAG { return dag.New("d").Add(gt("a", task.RetryDelay(-time.Second))) },
			[]string{`dag "d": task "a": retry delay -1s is negative`}},
		{"negative default retries and delay", func() *dag.DAG { return dag.New("d", dag.DefaultRetries(-2, -time.Second)) },
			[]string{`dag "d": default retries -2 is negative`, `dag "d": default retry delay -1s is negative`}},
		{"negative default timeout", func() *dag.DAG { return dag.New("d", dag.DefaultTimeout(-time.Hour)) },
			[]string{`dag "d": default execution timeout -1h0m0s is negative`}},
		{"negative default backoff cap", func() *dag.DAG { return dag.New("d", dag.DefaultBackoff(-time.Hour)) },
			[]string{`dag "d": default max retry delay -1h0m0s is negative`}},
		{"negative run timeout", func() *dag.DAG { return dag.New("d", dag.RunTimeout(-time.Second)) },
			[]string{`dag "d": run timeout -1s is negative`}},
		{"start after end", func() *dag.DAG { return dag.New("d", dag.StartDate(day.AddDate(0, 0, 1)), dag.EndDate(day)) },
			[]string{`dag "d": start date 2024-01-02T00:00:00Z is after end date 2024-01-01T00:00:00Z`}},
		{"nil timezone", func() *dag.DAG { return dag.New("d", dag.Timezone(nil)) }, []string{`dag "d": nil timezone`}},
		{"max active runs and tasks below 1", func() *dag.DAG { return dag.New("d", dag.MaxActiveRuns(0), dag.MaxActiveTasks(-1)) },
			[]string{`dag "d": max active runs 0: must be at least 1`, `dag "d": max active tasks -1: must be at least 1`}},
		{"bad params", func() *dag.DAG {
			return dag.New("d", dag.Params(dag.Param{Name: ""}, dag.Param{Name: "x", Default: 1}, dag.Param{Name: "x"},
				dag.Param{Name: "f", Default: func() {}}))
		}, []string{`dag "d": param with empty name`, `dag "d": param "x" declared twice`, `dag "d": param "f": default is not JSON-encodable`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got := lines(c.build().Validate())
			if len(got) != len(c.want) {
				t.Fatalf("Validate reported %d problems, want %d:\n%s", len(got), len(c.want), strings.Join(got, "\n"))
			}
			for i := range c.want {
				if !strings.HasPrefix(got[i], c.want[i]) {
					t.Errorf("problem %d = %q, want it to start with %q", i, got[i], c.want[i])
				}
			}
		})
	}
}

func TestValidateEdgeBoundaries(t *testing.T) {
	t.Parallel()
	ok := []string{"@once", "@none", "@hourly", "@daily", "@weekly", "@monthly", "@yearly", "0 6 * * 1-5", " 59 23 * * * ", "*/15 * * * *"}
	for _, s := range ok {
		if err := dag.New("d", dag.Schedule(s), dag.StartDate(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))).Validate(); err != nil {
			t.Errorf("Schedule(%q): %v", s, err)
		}
	}
	if got := dag.New("d", dag.Schedule("  @daily ")).ScheduleExpr(); got != "@daily" {
		t.Errorf("ScheduleExpr = %q, want it trimmed", got)
	}
	if err := dag.New(strings.Repeat("d", 63)).Add(gt(strings.Repeat("t", 63))).Validate(); err != nil {
		t.Errorf("63-character ids: %v", err)
	}
	day := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := dag.New("d", dag.StartDate(day), dag.EndDate(day)).Validate(); err != nil {
		t.Errorf("start == end: %v", err)
	}
}

// TestValidateReportsEverything builds a DAG with one of each problem and checks
// that Validate returns them all at once, each naming the DAG and, for task
// problems, the task.
func TestValidateReportsEverything(t *testing.T) {
	t.Parallel()
	day := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	a, b, c := gt("a"), gt("b", task.Retries(-1)), gt("c", task.Timeout(-time.Second))
	ghost, bad, dupe := gt("ghost"), gt("bad id"), gt("a")
	task.Chain(a, b, c, a)
	c.Then(ghost)
	d := dag.New("everything", dag.Schedule("61 * * * *"), dag.DefaultRetries(-1, 0), dag.DefaultTimeout(-time.Second),
		dag.StartDate(day.AddDate(1, 0, 0)), dag.EndDate(day), dag.Timezone(nil)).
		Add(a, b, c, bad, dupe, gt(strings.Repeat("x", 64)), gt(""))
	err := d.Validate()
	got := lines(err)
	wants := []struct{ task, text string }{
		{"", "default retries -1 is negative"},
		{"", "default execution timeout -1s is negative"},
		{"", "nil timezone"},
		{"", `schedule "61 * * * *"`},
		{"", "start date 2025-01-01T00:00:00Z is after end date 2024-01-01T00:00:00Z"},
		{"b", "retries -1 is negative"},
		{"c", "execution timeout -1s is negative"},
		{"c", `downstream task "ghost" was never added to the DAG`},
		{"bad id", "use only letters"},
		{"a", "duplicate task id"},
		{strings.Repeat("x", 64), "64 characters"},
		{"", "empty id"},
		{"", "cycle: a -> b -> c -> a"},
	}
	if len(got) != len(wants) {
		t.Fatalf("Validate reported %d problems, want %d:\n%s", len(got), len(wants), err)
	}
	for _, w := range wants {
		found := false
		for _, line := range got {
			if !strings.HasPrefix(line, `dag "everything": `) {
				t.Errorf("problem %q does not name the DAG first", line)
			}
			if strings.Contains(line, w.text) && (w.task == "" || strings.Contains(line, fmt.Sprintf("task %q: ", w.task))) {
				found = true
			}
		}
		if !found {
			t.Errorf("no problem mentions %q (task %q) in:\n%s", w.text, w.task, err)
		}
	}
	// Every problem is its own error in the join, so callers can walk them.
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) || len(joined.Unwrap()) != len(wants) {
		t.Errorf("Validate error is not an errors.Join of %d errors: %T", len(wants), err)
	}
}

func TestResolveConf(t *testing.T) {
	t.Parallel()
	d := dag.New("conf", dag.Params(
		dag.Param{Name: "table", Default: "users"},
		dag.Param{Name: "limit", Default: 10},
		dag.Param{Name: "dry", Default: false},
		dag.Param{Name: "tags", Default: []string{"a"}},
		dag.Param{Name: "opts", Default: map[string]int{"x": 1}},
		dag.Param{Name: "any"}, // no default: any JSON value
	))
	// limit keeps the Go type of its default (int); other values are as
	// encoding/json decodes them.
	defaults := map[string]any{"table": "users", "limit": 10, "dry": false, "tags": []any{"a"},
		"opts": map[string]any{"x": float64(1)}, "any": nil}
	with := func(kv ...any) map[string]any {
		m := map[string]any{}
		for k, v := range defaults {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	cases := []struct {
		name    string
		conf    string
		want    map[string]any
		wantErr []string // substrings, all required
	}{
		{"no conf: defaults", "", defaults, nil},
		{"blank conf: defaults", "  \n", defaults, nil},
		{"empty object: defaults", "{}", defaults, nil},
		{"integral float for an int default", `{"limit":5.0}`, with("limit", 5), nil},
		{"overlay", `{"table":"orders","limit":5}`, with("table", "orders", "limit", 5), nil},
		{"overlay array and object", `{"tags":["x","y"],"opts":{"y":2}}`,
			with("tags", []any{"x", "y"}, "opts", map[string]any{"y": float64(2)}), nil},
		{"param without default takes anything", `{"any":[1,"two"]}`, with("any", []any{float64(1), "two"}), nil},
		{"null is accepted", `{"table":null}`, with("table", nil), nil},
		{"undeclared keys, sorted", `{"zeta":1,"alpha":2,"table":"t"}`, nil,
			[]string{`dag "conf": invalid conf: param "alpha" is not declared (declared params: table, limit, dry, tags, opts, any)` + "\n" +
				`dag "conf": invalid conf: param "zeta" is not declared`}},
		{"a near miss is suggested", `{"Tabel":"t","dyr":true,"xy":1}`, nil, []string{
			`param "Tabel" is not declared (declared params: table, limit, dry, tags, opts, any; did you mean "table"?)`,
			`param "dyr" is not declared (declared params: table, limit, dry, tags, opts, any; did you mean "dry"?)`,
			`param "xy" is not declared (declared params: table, limit, dry, tags, opts, any)`}},
		{"wrong type: string for integer", `{"limit":"5"}`, nil, []string{`dag "conf"`, `param "limit" must be an integer, got a string`}},
		{"wrong type: fraction for an int default", `{"limit":2.5}`, nil, []string{`param "limit" must be an integer, got 2.5`}},
		{"wrong type: number for boolean", `{"dry":1}`, nil, []string{`param "dry" must be a boolean, got a number`}},
		{"wrong type: object for array", `{"tags":{}}`, nil, []string{`param "tags" must be an array, got an object`}},
		{"type error and undeclared key together", `{"limit":true,"nope":1}`, nil,
			[]string{`param "limit" must be an integer, got a boolean` + "\n", `param "nope" is not declared`}},
		{"malformed JSON", `{"table":`, nil, []string{`dag "conf"`, "invalid conf"}},
		{"array", `[1,2]`, nil, []string{"invalid conf"}},
		{"string", `"table"`, nil, []string{"invalid conf"}},
		{"null", `null`, nil, []string{"invalid conf", "not a JSON object"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, err := d.ResolveConf([]byte(c.conf))
			if c.wantErr != nil {
				if !errors.Is(err, dag.ErrConf) {
					t.Fatalf("ResolveConf(%s) = %v, %v; want ErrConf", c.conf, got, err)
				}
				for _, w := range c.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				if got != nil {
					t.Errorf("ResolveConf returned params %v with an error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ResolveConf(%s): %v", c.conf, err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("ResolveConf(%s) = %#v, want %#v", c.conf, got, c.want)
			}
		})
	}

	// Resolving does not change the declared defaults.
	if _, err := d.ResolveConf([]byte(`{"opts":{"z":3}}`)); err != nil {
		t.Fatal(err)
	}
	if got, _ := d.ResolveConf(nil); !reflect.DeepEqual(got, defaults) {
		t.Errorf("defaults changed after a resolve: %#v", got)
	}
	// A DAG without params refuses any key.
	if _, err := dag.New("bare").ResolveConf([]byte(`{"a":1}`)); !errors.Is(err, dag.ErrConf) || !strings.Contains(err.Error(), `param "a" is not declared (this DAG declares no params)`) {
		t.Errorf("ResolveConf on a DAG without params = %v", err)
	}
}

func TestSnapshot(t *testing.T) {
	t.Parallel()
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, ny)
	end := time.Date(2025, 1, 1, 0, 0, 0, 0, ny)
	extract := gt("extract", task.Doc("pull rows"))
	load := gt("load", task.Retries(5), task.RetryDelay(time.Second), task.Timeout(time.Minute), task.Priority(3),
		task.Pool("db"), task.Trigger(task.AllDone), task.DependsOnPast(true),
		task.Executor(task.ExecutorConfig{Executor: task.ExecutorKubernetes, PodTemplateFile: "pod.yaml"}))
	report := gt("report", task.WaitForDownstream(true))
	extract.Then(load, report)
	load.Then(report)
	d := dag.New("etl", dag.Schedule("@daily"), dag.StartDate(start), dag.EndDate(end), dag.Catchup(false),
		dag.MaxActiveRuns(2), dag.MaxActiveTasks(4), dag.DefaultRetries(1, 2*time.Minute), dag.DefaultTimeout(time.Hour),
		dag.RunTimeout(3*time.Hour), dag.Params(dag.Param{Name: "table", Default: "users", Description: "target"}),
		dag.Tags("etl", "daily"), dag.Description("daily load"), dag.Doc("# ETL")).
		Add(extract, load, report)
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	s := d.Snapshot()
	want := dag.Snapshot{
		ID: "etl", Description: "daily load", Doc: "# ETL", Tags: []string{"etl", "daily"}, Schedule: "@daily",
		Timezone: "America/New_York", StartDate: &start, EndDate: &end, Catchup: false, MaxActiveRuns: 2, MaxActiveTasks: 4,
		RunTimeout: "3h0m0s", Params: []dag.Param{{Name: "table", Default: "users", Description: "target"}},
		Tasks: []dag.TaskSnapshot{
			{ID: "extract", Kind: task.KindGo, Doc: "pull rows", Downstream: []string{"load", "report"}, TriggerRule: task.AllSuccess,
				Retries: 1, RetryDelay: "2m0s", Timeout: "1h0m0s", Priority: 1, PoolSlots: 1, WeightRule: task.WeightDownstream},
			{ID: "load", Kind: task.KindGo, Upstream: []string{"extract"}, Downstream: []string{"report"}, TriggerRule: task.AllDone,
				Retries: 5, RetryDelay: "1s", Timeout: "1m0s", Priority: 3, Pool: "db", DependsOnPast: true, PoolSlots: 1, WeightRule: task.WeightDownstream,
				Executor: task.ExecutorConfig{Executor: task.ExecutorKubernetes, PodTemplateFile: "pod.yaml"}},
			{ID: "report", Kind: task.KindGo, Upstream: []string{"extract", "load"}, TriggerRule: task.AllSuccess,
				Retries: 1, RetryDelay: "2m0s", Timeout: "1h0m0s", Priority: 1, DependsOnPast: true, WaitForDownstream: true,
				PoolSlots: 1, WeightRule: task.WeightDownstream},
		},
	}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("Snapshot =\n%+v\nwant\n%+v", s, want)
	}

	// It is JSON with stable names, and it round-trips.
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"id":"etl"`, `"timezone":"America/New_York"`, `"catchup":false`, `"runTimeout":"3h0m0s"`,
		`"triggerRule":"all_done"`, `"retryDelay":"1s"`, `"podTemplateFile":"pod.yaml"`, `"upstream":["extract","load"]`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("snapshot JSON lacks %s: %s", key, b)
		}
	}
	var back dag.Snapshot
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.ID != s.ID || len(back.Tasks) != 3 || !back.StartDate.Equal(start) || back.Tasks[1].Retries != 5 {
		t.Errorf("round trip = %+v", back)
	}

	// A bare DAG: UTC, no dates, an empty (not null) task list, Airflow's defaults.
	bare := dag.New("bare").Snapshot()
	if bare.Timezone != "UTC" || bare.StartDate != nil || bare.EndDate != nil || bare.Tasks == nil || len(bare.Tasks) != 0 ||
		!bare.Catchup || bare.MaxActiveRuns != 16 || bare.MaxActiveTasks != 16 || bare.RunTimeout != "" {
		t.Errorf("bare snapshot = %+v", bare)
	}
	if b, _ := json.Marshal(bare); !strings.Contains(string(b), `"tasks":[]`) {
		t.Errorf("bare snapshot JSON = %s; want \"tasks\":[]", b)
	}
	// A bare task gets the DAG's default retry delay of 5 minutes and no timeout.
	if ts := dag.New("one").Add(gt("t")).Snapshot().Tasks[0]; ts.RetryDelay != "5m0s" || ts.Retries != 0 || ts.Timeout != "" {
		t.Errorf("default task snapshot = %+v", ts)
	}
}

func TestAccessors(t *testing.T) {
	t.Parallel()
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, ny)
	for _, c := range []struct {
		name string
		d    *dag.DAG
		want *time.Location
	}{
		{"default UTC", dag.New("a"), time.UTC},
		{"start date's location", dag.New("b", dag.StartDate(start)), ny},
		{"Timezone wins", dag.New("c", dag.StartDate(start), dag.Timezone(tokyo)), tokyo},
	} {
		if got := c.d.Location(); got.String() != c.want.String() {
			t.Errorf("%s: Location = %s, want %s", c.name, got, c.want)
		}
	}

	a, b := gt("a"), gt("b")
	d := dag.New("acc", dag.DefaultBackoff(time.Hour), dag.Tags("x")).Add(a, b)
	if got, ok := d.Task("b"); !ok || got != task.Task(b) {
		t.Errorf("Task(b) = %v, %v", got, ok)
	}
	if _, ok := d.Task("zz"); ok {
		t.Error("Task(zz) found a task")
	}
	ts := d.Tasks()
	ts[0] = nil
	if d.Tasks()[0] == nil {
		t.Error("Tasks returns the DAG's own slice")
	}
	tags := d.TagList()
	tags[0] = "changed"
	if d.TagList()[0] != "x" {
		t.Error("TagList returns the DAG's own slice")
	}
	if p := d.Defaults(); !p.ExponentialBackoff || p.MaxRetryDelay != time.Hour || p.RetryDelay != 5*time.Minute {
		t.Errorf("Defaults = %+v", p)
	}
}

func TestSnapshotDoesNotAliasDAG(t *testing.T) {
	t.Parallel()
	d := dag.New("alias", dag.Tags("a"), dag.Params(dag.Param{Name: "p", Default: 1}))
	s := d.Snapshot()
	s.Tags[0] = "changed"
	s.Params[0].Name = "changed"
	if d.TagList()[0] != "a" || d.ParamDecls()[0].Name != "p" {
		t.Fatalf("editing a snapshot changed the DAG: tags %v, params %v", d.TagList(), d.ParamDecls())
	}
}

func ExampleNew() {
	extract := task.Go("extract", func(ctx context.Context, r *task.Run) (int, error) { return 42, nil })
	load := task.Go("load", func(ctx context.Context, r *task.Run) (int, error) { return task.Output(r, extract) })
	extract.Then(load)

	etl := dag.New("etl", dag.Schedule("@daily"), dag.StartDate(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)),
		dag.DefaultRetries(2, time.Minute)).Add(extract, load)
	fmt.Println("etl:", etl.Validate())

	// Problems are collected while building and reported together.
	a, b := task.Go("a", noop), task.Go("b", noop, task.Retries(-1))
	a.Then(b)
	b.Then(a)
	broken := dag.New("broken", dag.Schedule("61 * * * *")).Add(a, b)
	fmt.Println(broken.Validate())
	// Output:
	// etl: <nil>
	// dag "broken": schedule "61 * * * *": end of range (61) above maximum (59): 61
	// dag "broken": task "b": retries -1 is negative
	// dag "broken": cycle: a -> b -> a
}

func TestScheduledDAGNeedsStartDate(t *testing.T) {
	t.Parallel()
	for _, opt := range []dag.Option{dag.Schedule("@daily"), dag.Every(time.Hour), dag.Schedule("@once")} {
		err := dag.New("nostart", opt).Validate()
		if err == nil || !strings.Contains(err.Error(), `dag "nostart": schedule`) || !strings.Contains(err.Error(), "needs a StartDate") {
			t.Errorf("Validate = %v, want a missing start date error", err)
		}
	}
	if err := dag.New("manual").Validate(); err != nil {
		t.Errorf("a manual DAG needs no start date: %v", err)
	}
}
