package task_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trellisdag/trellis/task"
)

func ids(ts []task.Task) string {
	var s []string
	for _, x := range ts {
		s = append(s, x.ID())
	}
	return strings.Join(s, ",")
}

// adopt adds tasks to a DAG named "d" as dag.DAG.Add does (task cannot import dag).
func adopt(t *testing.T, ts ...task.Task) {
	t.Helper()
	for _, x := range ts {
		if err := task.Adopt(x, "d"); err != nil {
			t.Fatal(err)
		}
	}
}

func problems(t task.Task) string {
	var s []string
	for _, e := range task.Problems(t, "d") {
		s = append(s, e.Error())
	}
	return strings.Join(s, "; ")
}

func groupProblems(g *task.Group) string {
	var s []string
	for _, e := range task.GroupProblems(g) {
		s = append(s, e.Error())
	}
	return strings.Join(s, "; ")
}

func TestGroupIDsArePrefixedOnce(t *testing.T) {
	t.Parallel()
	a, b, c := task.Go("a", noop[int]), task.Go("b", noop[int]), task.Go("c", noop[int])
	quality := task.NewGroup("quality")
	deep := quality.Group("deep")
	quality.Add(a)
	deep.Add(b)
	quality.Add(c)
	if a.ID() != "quality.a" || b.ID() != "quality.deep.b" || c.ID() != "quality.c" {
		t.Fatalf("ids %s %s %s, want quality.a quality.deep.b quality.c", a.ID(), b.ID(), c.ID())
	}
	if quality.ID() != "quality" || deep.ID() != "quality.deep" || deep.Parent() != quality || quality.Parent() != nil {
		t.Errorf("group ids %q %q, parents %v %v", quality.ID(), deep.ID(), deep.Parent(), quality.Parent())
	}
	if got := ids(quality.Tasks()); got != "quality.deep.b,quality.a,quality.c" {
		t.Errorf("Tasks() = %s, want the order of Add, a nested group's tasks where it was created", got)
	}
	if task.GroupOf(b) != deep || task.GroupOf(a) != quality || task.SettingsOf(b).Group != "quality.deep" {
		t.Errorf("GroupOf(b) = %v, Settings.Group = %q", task.GroupOf(b), task.SettingsOf(b).Group)
	}
	// A task is in one group: adding it again is a problem, and its id stays.
	other := task.NewGroup("other")
	other.Add(a)
	quality.Add(a)
	if a.ID() != "quality.a" {
		t.Errorf("id after a second Add = %q, want quality.a (the prefix is applied once)", a.ID())
	}
	if got := groupProblems(other); !strings.Contains(got, `group "other": task "quality.a" is already in group "quality"`) {
		t.Errorf("GroupProblems(other) = %q", got)
	}
	if got := groupProblems(quality); !strings.Contains(got, `task "quality.a" is already in group "quality"`) {
		t.Errorf("GroupProblems(quality) = %q", got)
	}
}

func TestGroupDefaults(t *testing.T) {
	t.Parallel()
	kube := task.ExecutorConfig{Executor: task.ExecutorKubernetes}
	var called []string
	cb := func(name string) func(context.Context, task.Event) error {
		return func(context.Context, task.Event) error { called = append(called, name); return nil }
	}
	g := task.NewGroup("g", task.Retries(3), task.RetryDelay(time.Minute), task.Timeout(time.Hour), task.Pool("db"),
		task.Trigger(task.NoneFailed), task.Executor(kube), task.Priority(5), task.OnFailure(cb("group")))
	inner := g.Group("inner", task.Retries(7), task.Pool("fast"))
	plain := task.Go("plain", noop[int])
	own := task.Go("own", noop[int], task.Retries(1), task.Pool("mine"), task.Trigger(task.AllDone),
		task.Executor(task.ExecutorConfig{}), task.Priority(2), task.OnFailure(cb("own")))
	deep := task.Go("deep", noop[int])
	td := task.Go("td", noop[int], task.AsTeardown())
	g.Add(plain, own, td)
	inner.Add(deep)
	dagDefaults := task.Policy{Retries: 9, RetryDelay: time.Second, Timeout: time.Second}

	s, p := task.SettingsOf(plain), task.PolicyOf(plain, dagDefaults)
	if p.Retries != 3 || p.RetryDelay != time.Minute || p.Timeout != time.Hour || s.Pool != "db" ||
		s.TriggerRule != task.NoneFailed || s.Executor.Executor != task.ExecutorKubernetes || s.Priority != 5 {
		t.Errorf("plain: %+v %+v: want the group's defaults over the DAG's", s, p)
	}
	s, p = task.SettingsOf(own), task.PolicyOf(own, dagDefaults)
	if p.Retries != 1 || p.RetryDelay != time.Minute || s.Pool != "mine" || s.TriggerRule != task.AllDone ||
		s.Executor.Executor != task.ExecutorDefault || s.Priority != 2 {
		t.Errorf("own: %+v %+v: want its own options to win", s, p)
	}
	s, p = task.SettingsOf(deep), task.PolicyOf(deep, dagDefaults)
	if p.Retries != 7 || s.Pool != "fast" || p.Timeout != time.Hour || s.TriggerRule != task.NoneFailed {
		t.Errorf("deep: %+v %+v: want the inner group's defaults, then the outer's", s, p)
	}
	if s := task.SettingsOf(td); s.TriggerRule != task.AllDoneSetupSuccess {
		t.Errorf("teardown's rule = %s, want all_done_setup_success whatever its group's default", s.TriggerRule)
	}
	if problems(td) != "" {
		t.Errorf("teardown in a group with a trigger rule default: %s", problems(td))
	}
	for _, x := range []task.Task{plain, own} {
		for _, cb := range task.CallbacksOf(x, task.EventTaskFailure) {
			_ = cb(context.Background(), task.Event{})
		}
	}
	if !slices.Equal(called, []string{"group", "own"}) {
		t.Errorf("failure callbacks called %v, want the group's for plain and its own for own", called)
	}
}

func TestGroupProblems(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		g    *task.Group
		want string
	}{
		{"dot in id", task.NewGroup("a.b"), `group "a.b": group id "a.b": use only letters`},
		{"empty id", task.NewGroup(""), `group id "": use only`},
		{"doc as default", task.NewGroup("g", task.Doc("x")), `group "g": Doc cannot be a group default`},
		{"teardown as default", task.NewGroup("g", task.AsTeardown()), "AsTeardown cannot be a group default"},
		{"invalid default", task.NewGroup("g", task.Retries(-1)), `group "g": retries -1 is negative`},
		{"nil task", task.NewGroup("g").Add(nil), `group "g": Add: nil task`},
	} {
		if got := groupProblems(c.g); !strings.Contains(got, c.want) {
			t.Errorf("%s: GroupProblems = %q, want %q", c.name, got, c.want)
		}
	}
	if got := groupProblems(task.NewGroup("fine_group-1", task.Retries(2))); got != "" {
		t.Errorf("a valid group has problems: %s", got)
	}
}

// TestGroupsInEdges: a group stands in Then, After and Chain through its
// roots and leaves; a teardown is not a leaf.
func TestGroupsInEdges(t *testing.T) {
	t.Parallel()
	extract, load := task.Go("extract", noop[int]), task.Go("load", noop[int])
	a, b, c := task.Go("a", noop[int]), task.Go("b", noop[int]), task.Go("c", noop[int])
	checks := task.NewGroup("checks").Add(a, b, c)
	a.Then(b) // roots a, c; leaves b, c
	if got := ids(checks.Roots()) + " | " + ids(checks.Leaves()); got != "checks.a,checks.c | checks.b,checks.c" {
		t.Errorf("roots | leaves = %s", got)
	}
	// setup -> work -> teardown inside a group: the leaf is the work.
	s, w := task.Go("s", noop[int], task.AsSetup()), task.Go("w", noop[int])
	td2 := task.Go("td", noop[int], task.AsTeardown(s))
	infra := task.NewGroup("infra").Add(s, w, td2)
	task.Chain(s, w, td2)
	if got := ids(infra.Roots()) + " | " + ids(infra.Leaves()); got != "infra.s | infra.w" {
		t.Errorf("setup/teardown group: roots | leaves = %s, want infra.s | infra.w (a teardown is not a leaf)", got)
	}
	report := task.Go("report", noop[int])
	task.Chain(extract, checks, infra, load)
	report.After(checks)
	adopt(t, extract, load, a, b, c, s, w, td2, report)
	for _, e := range []struct{ name, got, want string }{
		{"down(extract)", ids(task.Downstream(extract)), "checks.a,checks.c"},
		{"down(checks.b)", ids(task.Downstream(b)), "infra.s,report"},
		{"down(checks.c)", ids(task.Downstream(c)), "infra.s,report"},
		{"up(load)", ids(task.Upstream(load)), "infra.w"},
		{"down(infra.td)", ids(task.Downstream(td2)), ""},
		{"up(report)", ids(task.Upstream(report)), "checks.b,checks.c"},
	} {
		if e.got != e.want {
			t.Errorf("%s = %q, want %q", e.name, e.got, e.want)
		}
	}
	// Then returns the last node, so chains read left to right through groups.
	x, y := task.Go("x", noop[int]), task.Go("y", noop[int])
	g := task.NewGroup("g").Add(task.Go("m", noop[int]))
	if last := x.Then(g).Then(y); last != task.Node(y) {
		t.Errorf("x.Then(g).Then(y) = %v, want y", last)
	}
	adopt(t, x, y)
	adopt(t, g.Tasks()...)
	if got := ids(task.Upstream(y)); got != "g.m" {
		t.Errorf("up(y) = %s, want g.m", got)
	}
}

func TestEmptyGroupInAnEdgeIsAProblem(t *testing.T) {
	t.Parallel()
	a := task.Go("a", noop[int])
	empty := task.NewGroup("empty")
	a.Then(empty)
	empty.Then(a)
	adopt(t, a)
	if got := problems(a); !strings.Contains(got, `group "empty" has no tasks to link: add its tasks (and their edges) before linking the group`) {
		t.Errorf("Problems(a) = %q", got)
	}
	if got := groupProblems(empty); !strings.Contains(got, `group "empty": group "empty" has no tasks to link`) {
		t.Errorf("GroupProblems(empty) = %q", got)
	}
	empty.Then(nil)
	empty.After(nil)
	if got := groupProblems(empty); !strings.Contains(got, "Then: nil task") || !strings.Contains(got, "After: nil task") {
		t.Errorf("GroupProblems(empty) = %q", got)
	}
}

func TestSetupTeardownDefinition(t *testing.T) {
	t.Parallel()
	create := task.Go("create", noop[int])
	work := task.Go("work", noop[int])
	del := task.Go("delete", noop[int], task.AsTeardown(create), task.FailRunOnTeardownFailure())
	task.Chain(create, work, del)
	adopt(t, create, work, del)
	if s := task.SettingsOf(create); !s.Setup || s.Teardown {
		t.Errorf("create: %+v, want a setup (AsTeardown makes its setups setups)", s)
	}
	if s := task.SettingsOf(del); !s.Teardown || !s.FailRun || s.TriggerRule != task.AllDoneSetupSuccess {
		t.Errorf("delete: %+v, want a teardown that fails the run, rule all_done_setup_success", s)
	}
	if got := ids(task.Upstream(del)); got != "create,work" {
		t.Errorf("up(delete) = %s, want create,work (AsTeardown links the setup)", got)
	}
	if got := ids(task.SetupsOf(del)); got != "create" {
		t.Errorf("SetupsOf(delete) = %s", got)
	}
	if task.SetupsOf(work) != nil {
		t.Error("SetupsOf(work) is not nil")
	}
	for _, x := range []task.Task{create, work, del} {
		if p := problems(x); p != "" {
			t.Errorf("%s: %s", x.ID(), p)
		}
	}
}

func TestSetupTeardownProblems(t *testing.T) {
	t.Parallel()
	s := task.Go("s", noop[int], task.AsSetup())
	both := task.Go("both", noop[int], task.AsSetup(), task.AsTeardown())
	notTeardown := task.Go("not_teardown", noop[int], task.FailRunOnTeardownFailure())
	ruled := task.Go("ruled", noop[int], task.AsTeardown(s), task.Trigger(task.AllDone))
	ruledBefore := task.Go("ruled_before", noop[int], task.Trigger(task.OneFailed), task.AsTeardown(s))
	alert := task.Go("alert", noop[int], task.Trigger(task.OneFailed))
	nilSetup := task.Go("nil_setup", noop[int], task.AsTeardown(nil))
	s.Then(alert)
	adopt(t, s, both, notTeardown, ruled, ruledBefore, alert, nilSetup)
	for _, c := range []struct {
		t    task.Task
		want string
	}{
		{both, "the task is both a setup and a teardown"},
		{notTeardown, "FailRunOnTeardownFailure on a task that is not a teardown (add AsTeardown)"},
		{ruled, "trigger rule all_done on a teardown: a teardown's rule is all_done_setup_success"},
		{ruledBefore, "trigger rule one_failed on a teardown"},
		{s, `setup's downstream task "alert" has trigger rule one_failed: the direct downstream tasks of a setup must use all_success unless they are teardowns`},
		{nilSetup, "AsTeardown: nil setup task"},
	} {
		if got := problems(c.t); !strings.Contains(got, c.want) {
			t.Errorf("%s: Problems = %q, want %q", c.t.ID(), got, c.want)
		}
	}
	// Trigger(AllDoneSetupSuccess) on a teardown says what it is: no problem.
	ok := task.Go("ok", noop[int], task.AsTeardown(), task.Trigger(task.AllDoneSetupSuccess))
	adopt(t, ok)
	if got := problems(ok); got != "" {
		t.Errorf("ok: %s", got)
	}
}

// TestEvaluateWithSetups: Airflow's setup constraint over the direct rule.
func TestEvaluateWithSetups(t *testing.T) {
	t.Parallel()
	none := task.UpstreamCounts{}
	for _, c := range []struct {
		name             string
		rule             task.TriggerRule
		direct, indirect task.UpstreamCounts
		want             task.Decision
	}{
		{"no indirect setups: the rule", task.AllDone, u(1, 0, 1, 0, 0), none, run},
		{"setup failed: upstream_failed although all_done would run", task.AllDone, u(1, 0, 0, 1, 0), u(1, 0, 1, 0, 0), upFail},
		{"setup upstream_failed", task.AllDone, u(1, 0, 0, 0, 0), u(1, 0, 0, 1, 0), upFail},
		{"setup skipped: skip, without waiting", task.AllDone, u(1, 0, 0, 0, 0), u(2, 0, 0, 0, 1), skip},
		{"setup pending: waits although the rule runs", task.AllDone, u(1, 1, 0, 0, 0), u(1, 0, 0, 0, 0), wait},
		{"setup pending: the rule may still skip", task.AllSuccess, u(1, 0, 0, 0, 1), u(1, 0, 0, 0, 0), skip},
		{"setup succeeded, work upstream failed", task.AllDone, u(1, 0, 1, 0, 0), u(1, 1, 0, 0, 0), run},
		{"all setups succeeded", task.AllSuccess, u(1, 1, 0, 0, 0), u(2, 2, 0, 0, 0), run},
		{"always ignores setups", task.Always, u(1, 0, 0, 0, 0), u(1, 0, 1, 0, 0), run},
		{"no upstream runs", task.AllSuccess, none, u(1, 0, 1, 0, 0), run},
	} {
		if got := c.rule.EvaluateWithSetups(c.direct, c.indirect); got != c.want {
			t.Errorf("%s: %s.EvaluateWithSetups(%+v, %+v) = %s, want %s", c.name, c.rule, c.direct, c.indirect, got, c.want)
		}
	}
}

func ExampleNewGroup() {
	noop := func(context.Context, *task.Run) (int, error) { return 0, nil }
	extract := task.Go("extract", noop)
	checkNulls := task.Go("check_nulls", noop)
	checkRange := task.Go("check_range", noop, task.Retries(0)) // its own option wins
	load := task.Go("load", noop)

	// Every task of the group gets 3 retries unless it sets its own.
	quality := task.NewGroup("quality", task.Retries(3))
	quality.Add(checkNulls, checkRange)
	task.Chain(extract, quality, load) // extract -> both checks -> load

	fmt.Println(checkNulls.ID(), checkRange.ID())
	fmt.Println(task.PolicyOf(checkNulls, task.Policy{}).Retries, task.PolicyOf(checkRange, task.Policy{}).Retries)
	fmt.Println(len(quality.Roots()), len(quality.Leaves()))
	// Output:
	// quality.check_nulls quality.check_range
	// 3 0
	// 2 2
}

func ExampleAsTeardown() {
	noop := func(context.Context, *task.Run) (int, error) { return 0, nil }
	create := task.Go("create_cluster", noop)
	train := task.Go("train", noop)
	// delete_cluster runs after train whatever train's outcome, if
	// create_cluster succeeded; its own outcome does not decide the run's.
	del := task.Go("delete_cluster", noop, task.AsTeardown(create))
	task.Chain(create, train, del)

	fmt.Println(task.SettingsOf(create).Setup, task.SettingsOf(del).TriggerRule)
	// Output:
	// true all_done_setup_success
}
