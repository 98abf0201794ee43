package task

import (
	"fmt"
	"regexp"
	"slices"
)

// Node is what an edge links: a Task, or a Group of tasks. Then, After and
// Chain take either: an edge into a group links to the group's roots (its tasks
// with no upstream inside the group), an edge out of a group links from its
// leaves (its tasks with no downstream inside the group, teardowns left out).
// Only tasks and groups implement it.
type Node interface {
	// ID is a task's id, or a group's full id ("quality.checks").
	ID() string
	// Then makes each of next a direct downstream of this node and returns the
	// last of them.
	Then(next ...Node) Node
	// ends returns the tasks an edge into the node links to, and those an edge
	// out of it links from.
	ends() (roots, leaves []*Def)
}

// Group is a task group (Airflow's TaskGroup): tasks under a common id prefix,
// with default options, collapsed into one box by the UI, and usable as one
// node of an edge. Build it with NewGroup, put tasks in it with Add (and groups
// with Group), then add it to the DAG with dag.DAG.Add, which adds its tasks:
//
//	quality := task.NewGroup("quality", task.Retries(3), task.Pool("warehouse"))
//	quality.Add(checkNulls, checkRange) // ids quality.check_nulls, quality.check_range
//	etl.Add(extract, quality, load)
//	task.Chain(extract, quality, load)
//
// Add a group's tasks, and link them to one another, before linking the group:
// an edge reads the group's roots and leaves when it is made, as in Airflow.
// Problems (an invalid id, a task in two groups, an empty group in an edge) are
// reported by the DAG's Validate.
type Group struct {
	id       string
	parent   *Group
	defaults *Def
	items    []groupItem // tasks and nested groups, in the order added
	errs     []error
}

type groupItem struct {
	task  Task
	group *Group
}

// groupID is a group's own id: a task id without '.', which separates a
// group's id from the ids of its tasks.
var groupID = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9_-]*[A-Za-z0-9])?$`)

// NewGroup returns an empty group. Its tasks' ids are prefixed with id and a
// dot ("quality.check_nulls"). defaults are options applied to each of its tasks
// that does not set them itself: retries, retry delay, backoff, timeout, trigger
// rule (teardowns keep theirs), priority, weight rule, pool and pool slots,
// executor config, depends_on_past, wait_for_downstream, isolation, result size
// and callbacks. A task's own options win over its group's, an inner group's
// over an outer's, and a group's over the DAG's defaults. Other options (Doc,
// Outlets, AsSetup, AsTeardown, sensor options) cannot be group defaults.
func NewGroup(id string, defaults ...Option) *Group {
	g := &Group{id: id, defaults: &Def{trigger: AllSuccess, priority: 1}}
	if !groupID.MatchString(id) {
		g.fail("group id %q: use only letters, digits, '_' and '-', starting and ending with a letter or digit ('.' separates a group's id from its tasks' ids)", id)
	}
	for _, o := range defaults {
		o(g.defaults)
	}
	dd := g.defaults
	for _, bad := range []struct {
		set  bool
		name string
	}{
		{dd.doc != "", "Doc"}, {len(dd.outlets) > 0, "Outlets"}, {dd.setup, "AsSetup"},
		{dd.teardown, "AsTeardown"}, {dd.failRun, "FailRunOnTeardownFailure"}, {dd.sensor != (sensorConf{}), "a sensor option"},
		{dd.mapSrc.set, "MapOver, MapItems or MapParam (mapping a whole group, Airflow's mapped task group, is not supported: map its tasks)"},
	} {
		if bad.set {
			g.fail("%s cannot be a group default; give it to the tasks", bad.name)
		}
	}
	return g
}

func (g *Group) fail(format string, args ...any) {
	g.errs = append(g.errs, fmt.Errorf(format, args...))
}

// ID returns the group's full id: its parents' ids and its own, joined by dots.
func (g *Group) ID() string {
	if g.parent != nil {
		return g.parent.ID() + "." + g.id
	}
	return g.id
}

// Parent returns the group g is nested in (nil for a top-level group).
func (g *Group) Parent() *Group { return g.parent }

// Group returns a new group nested in g: its id is prefixed with g's
// ("quality.deep"), and g's defaults apply to its tasks after its own.
func (g *Group) Group(id string, defaults ...Option) *Group {
	c := NewGroup(id, defaults...)
	c.parent = g
	g.items = append(g.items, groupItem{group: c})
	return c
}

// Add puts tasks in the group and returns it. Each task's id is prefixed with
// the group's full id (once, here), and the group's defaults (and its parents')
// fill the options the task does not set. A task is in one group at most.
func (g *Group) Add(tasks ...Task) *Group {
	for _, t := range tasks {
		if t == nil {
			g.fail("Add: nil task")
			continue
		}
		d := t.def()
		if d.group != nil {
			g.fail("task %q is already in group %q", d.id, d.group.ID())
			continue
		}
		d.group = g
		d.id = g.ID() + "." + d.id
		for x := g; x != nil; x = x.parent {
			d.inherit(x.defaults)
		}
		d.bind()
		g.items = append(g.items, groupItem{task: t})
	}
	return g
}

// Tasks returns the group's tasks, those of nested groups included, in the
// order they were added (a nested group's where the nested group was made).
func (g *Group) Tasks() []Task {
	var out []Task
	for _, it := range g.items {
		if it.task != nil {
			out = append(out, it.task)
		} else {
			out = append(out, it.group.Tasks()...)
		}
	}
	return out
}

// Roots returns the tasks an edge into the group links to: those with no
// upstream task inside the group.
func (g *Group) Roots() []Task {
	roots, _ := g.ends()
	return g.tasksOf(roots)
}

// Leaves returns the tasks an edge out of the group links from: those with no
// downstream task inside the group, except teardowns, for which the nearest
// work upstream of them stands (Airflow's TaskGroup.get_leaves), so that what
// follows a group does not wait for its cleanup.
func (g *Group) Leaves() []Task {
	_, leaves := g.ends()
	return g.tasksOf(leaves)
}

func (g *Group) tasksOf(ds []*Def) []Task {
	by := map[*Def]Task{}
	for _, t := range g.Tasks() {
		by[t.def()] = t
	}
	out := make([]Task, 0, len(ds))
	for _, d := range ds {
		out = append(out, by[d])
	}
	return out
}

// Then links the group's leaves to each of next (to the roots of a group) and
// returns the last of next.
func (g *Group) Then(next ...Node) Node {
	var last Node
	for _, n := range next {
		if n == nil {
			g.fail("Then: nil task")
			continue
		}
		connect(g, n, &g.errs)
		last = n
	}
	return last
}

// After links each of prev (the leaves of a group) to the group's roots.
func (g *Group) After(prev ...Node) {
	for _, p := range prev {
		if p == nil {
			g.fail("After: nil task")
			continue
		}
		connect(p, g, &g.errs)
	}
}

// ends computes the group's roots and leaves from the edges between its tasks,
// as Airflow's TaskGroup.get_roots and get_leaves do.
func (g *Group) ends() (roots, leaves []*Def) {
	var defs []*Def
	in := map[*Def]bool{}
	for _, t := range g.Tasks() {
		d := t.def()
		d.bind()
		defs = append(defs, d)
		in[d] = true
	}
	inside := func(ds []*Def) bool {
		for _, x := range ds {
			if in[x] {
				return true
			}
		}
		return false
	}
	// hasWorkDownstream: a task of the group with a downstream task in the
	// group that is not a teardown (other than exclude).
	hasWorkDownstream := func(d, exclude *Def) bool {
		for _, x := range d.down {
			if x != exclude && in[x] && !x.teardown {
				return true
			}
		}
		return false
	}
	seen := map[*Def]bool{}
	add := func(d *Def) {
		if !seen[d] {
			seen[d] = true
			leaves = append(leaves, d)
		}
	}
	// firstWork walks up from a teardown to the work it cleans up after, not
	// through the teardown-to-setup edge.
	var firstWork func(d *Def)
	firstWork = func(d *Def) {
		for _, u := range d.up {
			switch {
			case !in[u]:
			case u.teardown:
				firstWork(u)
			case d.teardown && u.setup:
			case !hasWorkDownstream(u, d):
				add(u)
			}
		}
	}
	for _, d := range defs {
		if !inside(d.up) {
			roots = append(roots, d)
		}
		if !inside(d.down) {
			if d.teardown {
				firstWork(d)
			} else {
				add(d)
			}
		}
	}
	return roots, leaves
}

// connect links every leaf of from to every root of to.
func connect(from, to Node, errs *[]error) {
	_, leaves := from.ends()
	roots, _ := to.ends()
	for _, n := range []struct {
		node Node
		ds   []*Def
	}{{from, leaves}, {to, roots}} {
		if len(n.ds) == 0 {
			*errs = append(*errs, fmt.Errorf("group %q has no tasks to link: add its tasks (and their edges) before linking the group", n.node.ID()))
			return
		}
	}
	for _, l := range leaves {
		for _, r := range roots {
			link(l, r)
		}
	}
}

// inherit fills the settings d does not set from a group's defaults g.
func (d *Def) inherit(g *Def) {
	p, gp := &d.policy, &g.policy
	if gp.retries && !p.retries {
		p.retries, p.Retries = true, gp.Retries
	}
	if gp.delay && !p.delay {
		p.delay, p.RetryDelay = true, gp.RetryDelay
	}
	if gp.backoff && !p.backoff {
		p.backoff, p.ExponentialBackoff = true, gp.ExponentialBackoff
	}
	if gp.maxDelay && !p.maxDelay {
		p.maxDelay, p.MaxRetryDelay = true, gp.MaxRetryDelay
	}
	if gp.timeout && !p.timeout {
		p.timeout, p.Timeout = true, gp.Timeout
	}
	fill := func(flag setFlags, apply func()) {
		if g.set&flag != 0 && d.set&flag == 0 {
			apply()
			d.set |= flag
		}
	}
	if !d.teardown {
		fill(setTrigger, func() { d.trigger = g.trigger })
	}
	fill(setPriority, func() { d.priority = g.priority })
	if d.kind != KindSensor { // a sensor's pokes run in the runner
		fill(setExecutor, func() { d.exec = g.exec })
	}
	fill(setDependsOnPast, func() { d.dependsOnPast = g.dependsOnPast })
	fill(setWaitForDownstream, func() { d.waitForDownstream = g.waitForDownstream })
	if d.pool == "" {
		d.pool = g.pool
	}
	if d.poolSlots == 0 {
		d.poolSlots = g.poolSlots
	}
	if d.weightRule == "" {
		d.weightRule = g.weightRule
	}
	if d.maxResult == 0 {
		d.maxResult = g.maxResult
	}
	d.isolated = d.isolated || g.isolated
	for kind, cbs := range g.callbacks {
		if len(d.callbacks[kind]) == 0 {
			if d.callbacks == nil {
				d.callbacks = map[EventKind][]Callback{}
			}
			d.callbacks[kind] = slices.Clone(cbs)
		}
	}
}

// GroupOf returns the group t is in (nil when none).
func GroupOf(t Task) *Group { return t.def().group }

// GroupProblems returns what went wrong while g was built: an invalid id, an
// option that cannot be a default or is invalid, a task added twice, an empty
// group in an edge. dag.DAG.Validate reports them, naming the DAG.
func GroupProblems(g *Group) []error {
	errs := append([]error(nil), g.errs...)
	errs = append(errs, g.defaults.errs...)
	for i, e := range errs {
		errs[i] = fmt.Errorf("group %q: %w", g.ID(), e)
	}
	return errs
}
