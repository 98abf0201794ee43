package dag

import (
	"fmt"

	"github.com/trellisdag/trellis/task"
)

// Groups returns the DAG's task groups (task.Group), outer groups before the
// groups nested in them, in the order their tasks were added.
func (d *DAG) Groups() []*task.Group {
	seen := map[*task.Group]bool{}
	var out []*task.Group
	var add func(g *task.Group)
	add = func(g *task.Group) {
		if g == nil || seen[g] {
			return
		}
		add(g.Parent())
		seen[g] = true
		out = append(out, g)
	}
	for _, t := range d.tasks {
		add(task.GroupOf(t))
	}
	for _, g := range d.groups {
		add(g)
	}
	return out
}

// groupProblems reports what is wrong with the DAG's groups: their own
// problems, two groups with one id, a group with a task's id, and tasks put
// in a group that never reached the DAG.
func (d *DAG) groupProblems() []error {
	var errs []error
	inDAG := make(map[task.Task]bool, len(d.tasks))
	taskIDs := make(map[string]bool, len(d.tasks))
	for _, t := range d.tasks {
		inDAG[t] = true
		taskIDs[t.ID()] = true
	}
	ids := map[string]bool{}
	reported := map[task.Task]bool{}
	for _, g := range d.Groups() {
		errs = append(errs, task.GroupProblems(g)...)
		id := g.ID()
		if ids[id] {
			errs = append(errs, fmt.Errorf("group %q: duplicate group id", id))
		}
		ids[id] = true
		if taskIDs[id] {
			errs = append(errs, fmt.Errorf("group %q: a task has the same id", id))
		}
		for _, t := range g.Tasks() {
			if !inDAG[t] && !reported[t] {
				reported[t] = true
				errs = append(errs, fmt.Errorf("group %q: task %q is in the group but not in the DAG (add the group to the DAG after its tasks are in it)", id, t.ID()))
			}
		}
	}
	return errs
}

// ClearScope returns what clearing tasks resets, in the order the tasks were
// added to the DAG: the tasks, every task downstream of them when downstream is
// set, and the setups and teardowns of their scope, as Airflow's
// DAG.partial_subset does for a clear:
//
//   - a task that is neither a setup nor a teardown brings its relevant setups
//     (the setups upstream of it whose teardown is downstream of it, or which
//     have no teardown) and their teardowns, so the work runs again with a
//     fresh resource that is cleaned up after;
//   - with downstream, so does every task downstream of the chosen ones;
//   - a setup cleared without downstream brings its teardowns;
//   - a teardown alone is cleared alone.
//
// Both the CLI (tasks clear) and the API's clear call it.
func (d *DAG) ClearScope(tasks []task.Task, downstream bool) []task.Task {
	hasSetup := false
	for _, t := range d.tasks {
		if s := task.SettingsOf(t); s.Setup || s.Teardown {
			hasSetup = true
			break
		}
	}
	if !hasSetup {
		if downstream {
			return d.WithDownstream(tasks)
		}
		return tasks
	}
	keep := setOf(tasks)
	matched := setOf(tasks)
	addAll := func(ts []task.Task) {
		for _, t := range ts {
			keep[t] = true
		}
	}
	isWork := func(t task.Task) bool {
		s := task.SettingsOf(t)
		return !s.Setup && !s.Teardown
	}
	if downstream {
		for _, rel := range d.WithDownstream(tasks) {
			keep[rel] = true
			if !matched[rel] && isWork(rel) {
				addAll(relevantSetups(rel))
			}
		}
	}
	for _, t := range tasks {
		s := task.SettingsOf(t)
		switch {
		case isWork(t):
			addAll(relevantSetups(t))
		case s.Setup && !downstream:
			for _, x := range task.Downstream(t) {
				if task.SettingsOf(x).Teardown {
					keep[x] = true
				}
			}
		}
	}
	return d.inOrder(keep)
}

func setOf(ts []task.Task) map[task.Task]bool {
	m := make(map[task.Task]bool, len(ts))
	for _, t := range ts {
		m[t] = true
	}
	return m
}

func (d *DAG) inOrder(keep map[task.Task]bool) []task.Task {
	var out []task.Task
	for _, t := range d.tasks {
		if keep[t] {
			out = append(out, t)
		}
	}
	return out
}

// relevantSetups returns the setups upstream of t whose teardown is downstream
// of t, or which have no teardown, and their teardowns other than t: Airflow's
// get_upstreams_only_setups_and_teardowns.
func relevantSetups(t task.Task) []task.Task {
	downTeardowns := map[task.Task]bool{}
	for _, x := range flatRelatives(t, task.Downstream) {
		if task.SettingsOf(x).Teardown {
			downTeardowns[x] = true
		}
	}
	var out []task.Task
	for _, s := range flatRelatives(t, task.Upstream) {
		if !task.SettingsOf(s).Setup {
			continue
		}
		var teardowns []task.Task
		relevant := true
		for _, x := range task.Downstream(s) {
			if task.SettingsOf(x).Teardown {
				teardowns = append(teardowns, x)
			}
		}
		if len(teardowns) > 0 {
			relevant = false
			for _, td := range teardowns {
				relevant = relevant || downTeardowns[td]
			}
		}
		if !relevant {
			continue
		}
		out = append(out, s)
		for _, td := range teardowns {
			if td != t {
				out = append(out, td)
			}
		}
	}
	return out
}

// flatRelatives returns every task reached from t by next (task.Upstream or
// task.Downstream), t excluded.
func flatRelatives(t task.Task, next func(task.Task) []task.Task) []task.Task {
	seen := map[task.Task]bool{t: true}
	var out []task.Task
	queue := []task.Task{t}
	for len(queue) > 0 {
		x := queue[0]
		queue = queue[1:]
		for _, y := range next(x) {
			if !seen[y] {
				seen[y] = true
				out = append(out, y)
				queue = append(queue, y)
			}
		}
	}
	return out
}
