package dag_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/task"
)

func taskIDs(ts []task.Task) []string {
	out := []string{}
	for _, t := range ts {
		out = append(out, t.ID())
	}
	return out
}

// TestAddGroup: adding a group adds its tasks (nested groups included) with
// their prefixed ids, and the snapshot lists the groups and each task's group.
func TestAddGroup(t *testing.T) {
	t.Parallel()
	extract, load := gt("extract"), gt("load")
	quality := task.NewGroup("quality", task.Retries(4))
	nulls, rng := gt("check_nulls"), gt("check_range")
	quality.Add(nulls)
	deep := quality.Group("deep")
	deep.Add(rng)
	d := dag.New("etl").Add(extract, quality, load)
	task.Chain(extract, quality, load)
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := taskIDs(d.Tasks()); !reflect.DeepEqual(got, []string{"extract", "quality.check_nulls", "quality.deep.check_range", "load"}) {
		t.Errorf("Tasks() = %v", got)
	}
	if _, ok := d.Task("quality.deep.check_range"); !ok {
		t.Error("Task(quality.deep.check_range) not found")
	}
	s := d.Snapshot()
	if want := []dag.GroupSnapshot{{ID: "quality"}, {ID: "quality.deep", Parent: "quality"}}; !reflect.DeepEqual(s.Groups, want) {
		t.Errorf("Snapshot().Groups = %+v, want %+v", s.Groups, want)
	}
	byID := map[string]dag.TaskSnapshot{}
	for _, ts := range s.Tasks {
		byID[ts.ID] = ts
	}
	if g := byID["quality.deep.check_range"]; g.Group != "quality.deep" || g.Retries != 4 {
		t.Errorf("check_range snapshot: group %q retries %d, want quality.deep and the group's 4", g.Group, g.Retries)
	}
	if g := byID["extract"]; g.Group != "" {
		t.Errorf("extract's group = %q", g.Group)
	}
	if got := byID["extract"].Downstream; !reflect.DeepEqual(got, []string{"quality.check_nulls", "quality.deep.check_range"}) {
		t.Errorf("extract's downstream = %v, want both checks (the group's roots)", got)
	}
	if got := byID["load"].Upstream; !reflect.DeepEqual(got, []string{"quality.check_nulls", "quality.deep.check_range"}) {
		t.Errorf("load's upstream = %v, want both checks (the group's leaves)", got)
	}
	// Without groups nor setups, the snapshot's JSON (and so the version of
	// every existing DAG) has none of the new keys.
	b, err := json.Marshal(dag.New("plain").Add(gt("a")).Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"groups"`, `"group"`, `"setup"`, `"teardown"`, `"failRun"`} {
		if strings.Contains(string(b), key) {
			t.Errorf("snapshot of a plain DAG has %s: %s", key, b)
		}
	}
}

func TestGroupAndSetupValidation(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		build func() *dag.DAG
		want  []string
	}{
		{"bad group id and default", func() *dag.DAG {
			g := task.NewGroup("q.a", task.Doc("x")).Add(gt("t"))
			return dag.New("g1").Add(g)
		}, []string{
			`dag "g1": group "q.a": group id "q.a": use only letters, digits, '_' and '-', starting and ending with a letter or digit ('.' separates a group's id from its tasks' ids)`,
			`dag "g1": group "q.a": Doc cannot be a group default; give it to the tasks`,
		}},
		{"duplicate group ids", func() *dag.DAG {
			a, b := task.NewGroup("q").Add(gt("a")), task.NewGroup("q").Add(gt("b"))
			return dag.New("g2").Add(a, b)
		}, []string{`dag "g2": group "q": duplicate group id`}},
		{"group with a task's id", func() *dag.DAG {
			return dag.New("g3").Add(gt("q"), task.NewGroup("q").Add(gt("a")))
		}, []string{`dag "g3": group "q": a task has the same id`}},
		{"task added to a group after the group was added", func() *dag.DAG {
			g := task.NewGroup("q").Add(gt("a"))
			d := dag.New("g4").Add(g)
			g.Add(gt("late"))
			return d
		}, []string{`dag "g4": group "q": task "q.late" is in the group but not in the DAG (add the group to the DAG after its tasks are in it)`}},
		{"prefixed id too long", func() *dag.DAG {
			return dag.New("g5").Add(task.NewGroup(strings.Repeat("g", 40)).Add(gt(strings.Repeat("t", 30))))
		}, []string{`is 71 characters; at most 63`}},
		{"empty group in an edge", func() *dag.DAG {
			a := gt("a")
			a.Then(task.NewGroup("empty"))
			return dag.New("g6").Add(a)
		}, []string{`dag "g6": task "a": group "empty" has no tasks to link: add its tasks (and their edges) before linking the group`}},
		{"teardown with another trigger rule, setup followed by one_failed", func() *dag.DAG {
			s := gt("s")
			alert := gt("alert", task.Trigger(task.OneFailed))
			td := gt("td", task.AsTeardown(s), task.Trigger(task.AllDone))
			s.Then(alert)
			return dag.New("st").Add(s, alert, td)
		}, []string{
			`dag "st": task "s": setup's downstream task "alert" has trigger rule one_failed: the direct downstream tasks of a setup must use all_success unless they are teardowns (Airflow's rule: the work must not run without its setup)`,
			`dag "st": task "td": trigger rule all_done on a teardown: a teardown's rule is all_done_setup_success (it runs once its upstream tasks are done and one of its setups succeeded), as in Airflow; remove task.Trigger`,
		}},
		{"setup never added", func() *dag.DAG {
			return dag.New("st2").Add(gt("td", task.AsTeardown(gt("s"))))
		}, []string{`dag "st2": task "td": upstream task "s" was never added to the DAG`}},
		{"teardown upstream of its setup", func() *dag.DAG {
			s := gt("s")
			td := gt("td", task.AsTeardown(s))
			td.Then(s)
			return dag.New("st3").Add(s, td)
		}, []string{`dag "st3": cycle: s -> td -> s`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := lines(c.build().Validate())
			for _, w := range c.want {
				found := false
				for _, g := range got {
					found = found || strings.Contains(g, w)
				}
				if !found {
					t.Errorf("Validate() = %q\nlacks %q", got, w)
				}
			}
		})
	}
}

// clearDAG: create -> load -> check -> drop (teardown of create), a setup
// without teardown (auth -> load), another scope (tmp -> side -> rm), and
// unrelated work after the teardown (report).
//
//	auth ─┐
//	create ─> load ─> check ─> drop ─> report
//	   └──────────────────────> drop
//	tmp ─> side ─> rm ; tmp ─> rm ; tmp ─> other
func clearDAG() *dag.DAG {
	create, auth, tmp := gt("create"), gt("auth", task.AsSetup()), gt("tmp")
	load, check, side, other, report := gt("load"), gt("check"), gt("side"), gt("other"), gt("report")
	drop := gt("drop", task.AsTeardown(create))
	rm := gt("rm", task.AsTeardown(tmp))
	task.Chain(create, load, check, drop, report)
	auth.Then(load)
	task.Chain(tmp, side, rm)
	tmp.Then(other)
	return dag.New("clear").Add(create, auth, tmp, load, check, side, other, drop, rm, report)
}

// TestClearScope: what a clear resets, after Airflow's partial_subset.
func TestClearScope(t *testing.T) {
	t.Parallel()
	d := clearDAG()
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	pick := func(ids ...string) []task.Task {
		var out []task.Task
		for _, id := range ids {
			x, ok := d.Task(id)
			if !ok {
				t.Fatalf("no task %s", id)
			}
			out = append(out, x)
		}
		return out
	}
	for _, c := range []struct {
		name       string
		tasks      []string
		downstream bool
		want       string
	}{
		{"work brings its setups and their teardowns", []string{"check"}, false, "create,auth,check,drop"},
		{"with downstream, the setups of every task downstream", []string{"load"}, true, "create,auth,load,check,drop,report"},
		// auth has no teardown: it is relevant to everything downstream of it.
		{"a setup brings its teardowns", []string{"create"}, false, "create,drop"},
		{"a setup with downstream: everything after it, and their setups", []string{"create"}, true, "create,auth,load,check,drop,report"},
		{"a teardown alone", []string{"drop"}, false, "drop"},
		{"work after the teardown: a setup whose teardown is not downstream stays", []string{"report"}, false, "auth,report"},
		{"work outside a teardown's scope: the setup stays", []string{"other"}, false, "other"},
		{"work inside another scope", []string{"side"}, false, "tmp,side,rm"},
	} {
		if got := strings.Join(taskIDs(d.ClearScope(pick(c.tasks...), c.downstream)), ","); got != c.want {
			t.Errorf("%s: ClearScope(%v, downstream=%v) = %s, want %s", c.name, c.tasks, c.downstream, got, c.want)
		}
	}
	// Without setups it is the tasks as given, or WithDownstream.
	plain := dag.New("plain")
	a, b, c := gt("a"), gt("b"), gt("c")
	plain.Add(a, b, c)
	task.Chain(a, b)
	if got := taskIDs(plain.ClearScope([]task.Task{c, a}, false)); !reflect.DeepEqual(got, []string{"c", "a"}) {
		t.Errorf("plain ClearScope = %v", got)
	}
	if got := taskIDs(plain.ClearScope([]task.Task{a}, true)); !reflect.DeepEqual(got, taskIDs(plain.WithDownstream([]task.Task{a}))) {
		t.Errorf("plain ClearScope downstream = %v", got)
	}
}

func ExampleDAG_ClearScope() {
	create, train := gt("create_cluster"), gt("train")
	del := gt("delete_cluster", task.AsTeardown(create))
	task.Chain(create, train, del)
	d := dag.New("ml").Add(create, train, del)

	// Clearing train also clears the setup and the teardown around it, so
	// train runs again on a fresh cluster that is deleted after.
	for _, t := range d.ClearScope([]task.Task{train}, false) {
		fmt.Println(t.ID())
	}
	// Output:
	// create_cluster
	// train
	// delete_cluster
}

func ExampleDAG_Add_group() {
	extract, load := gt("extract"), gt("load")
	quality := task.NewGroup("quality", task.Retries(3))
	quality.Add(gt("check_nulls"), gt("check_range"))
	etl := dag.New("etl").Add(extract, quality, load)
	task.Chain(extract, quality, load)

	fmt.Println(etl.Validate())
	for _, t := range etl.Tasks() {
		fmt.Println(t.ID(), "after", taskIDs(task.Upstream(t)))
	}
	// Output:
	// <nil>
	// extract after []
	// quality.check_nulls after [extract]
	// quality.check_range after [extract]
	// load after [quality.check_nulls quality.check_range]
}
