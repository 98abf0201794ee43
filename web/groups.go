package web

import (
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/trellisdag/trellis/task"
)

// groupPriority is the order in which a task group's state is chosen, in the
// grid and in the graph's collapsed boxes: the first of these states that one
// of its tasks has in the run. It is Airflow's (airflow/www/utils.py,
// priority, which the grid's task_group_to_grid uses), without its states
// trellis has not (up_for_reschedule, restarting): a failure anywhere in the
// group shows first, then a task that cannot run or waits to be retried, then
// work not finished, then success, skipped and removed.
var groupPriority = []task.State{
	task.StateFailed, task.StateUpstreamFailed, task.StateUpForRetry, task.StateQueued, task.StateScheduled,
	task.StateDeferred, task.StateRunning, task.StateNone, task.StateSuccess, task.StateSkipped, task.StateRemoved,
}

var groupRank = func() map[task.State]int {
	m := make(map[task.State]int, len(groupPriority))
	for i, s := range groupPriority {
		m[s] = i
	}
	return m
}()

// groupState is the summary state of tasks whose states are given: the first
// by groupPriority; "" when none of them has a task instance (state ""), as
// Airflow's group of tasks without instances has none.
func groupState(states func(yield func(task.State) bool)) task.State {
	best, rank := task.State(""), len(groupPriority)+1
	for s := range states {
		if s == "" {
			continue
		}
		r, ok := groupRank[s]
		if !ok {
			r = len(groupPriority) // a state this list does not know: after the others
		}
		if r < rank {
			best, rank = s, r
			if r == 0 {
				break
			}
		}
	}
	return best
}

// groupParents maps each group of l to its parent ("" at the top).
func (l *layout) groupParents() map[string]string {
	m := make(map[string]string, len(l.groups))
	for _, g := range l.groups {
		m[g.id] = g.parent
	}
	return m
}

// gridTree orders the grid's rows: the tasks in topological order (l.order),
// except that a group's tasks come together, in their topological order, where
// the first of them comes; a nested group likewise inside its group. It
// returns the task indexes by row and the groups in the order of their rows
// (a group before the groups nested in it), each with its first row and its
// number of tasks (rows first to first+count-1). Groups without tasks are left
// out. Without groups, the rows are l.order.
func (l *layout) gridTree() (rows []int, groups []gridSpan) {
	if len(l.groups) == 0 {
		return l.order, nil
	}
	pos := make([]int, len(l.ids))
	for p, i := range l.order {
		pos[i] = p
	}
	parent := l.groupParents()
	// children of each group ("" the DAG): tasks (index >= 0) and groups.
	type item struct {
		task  int // -1 for a group
		group string
		key   int // topological position of its first task
	}
	children := map[string][]item{}
	key := map[string]int{}
	for _, i := range l.order {
		g := l.group[i]
		if _, ok := parent[g]; !ok {
			g = "" // not a known group: at the top
		}
		children[g] = append(children[g], item{task: i, key: pos[i]})
		for x := g; x != ""; x = parent[x] {
			if _, seen := key[x]; seen {
				break // l.order is topological: the first task seen is the group's first
			}
			key[x] = pos[i]
		}
	}
	for _, g := range l.groups {
		if k, ok := key[g.id]; ok {
			p := g.parent
			if _, known := parent[p]; !known {
				p = ""
			}
			children[p] = append(children[p], item{task: -1, group: g.id, key: k})
		}
	}
	var walk func(g string, depth int)
	walk = func(g string, depth int) {
		its := children[g]
		sort.SliceStable(its, func(a, b int) bool {
			if its[a].key != its[b].key {
				return its[a].key < its[b].key
			}
			return its[a].task < 0 && its[b].task >= 0 // a group before its own first task
		})
		for _, it := range its {
			if it.task >= 0 {
				rows = append(rows, it.task)
				continue
			}
			k := len(groups)
			groups = append(groups, gridSpan{id: it.group, parent: g, depth: depth, first: len(rows)})
			walk(it.group, depth+1)
			groups[k].count = len(rows) - groups[k].first
		}
	}
	walk("", 0)
	return rows, groups
}

// gridSpan is a group's place in the grid: rows first to first+count-1.
type gridSpan struct {
	id, parent   string
	depth        int
	first, count int
}

// maxCollapsedLayouts bounds the collapsed variants cached per layout; past
// it, a variant is computed per request (a fraction of a millisecond for a
// DAG a person draws).
const maxCollapsedLayouts = 64

// collapseCache keeps a layout's collapsed variants by canonical set.
type collapseCache struct {
	mu sync.Mutex
	m  map[string]*layout
}

// collapse returns l with each group of ids drawn as one box (the outermost
// one, when a group and a group nested in it are both given). Ids that are
// not groups of l are ignored. The box stands where its first task would be
// (in the DAG's order of tasks); an edge between two tasks becomes an edge
// between their boxes (none inside a box), and the edges between two boxes,
// or a box and a task, are merged into one. Collapsing can make a cycle (a
// group feeds a task outside it that feeds the group again): such an edge
// runs against the topological order of its ends' first tasks, and is drawn
// the other way with its arrowhead at its start, so that the drawing stays
// layered; an edge that runs both ways has both arrowheads.
func (l *layout) collapse(ids []string) *layout {
	parent := l.groupParents()
	set := map[string]bool{}
	for _, id := range ids {
		if _, ok := parent[id]; ok {
			set[id] = true
		}
	}
	// Canonical: only the outermost of nested collapsed groups matter.
	var keep []string
	for id := range set {
		inner := false
		for p := parent[id]; p != ""; p = parent[p] {
			inner = inner || set[p]
		}
		if !inner {
			keep = append(keep, id)
		}
	}
	if len(keep) == 0 {
		return l
	}
	slices.Sort(keep)
	key := strings.Join(keep, ",")
	c := &l.collapsed
	c.mu.Lock()
	got, ok := c.m[key]
	c.mu.Unlock()
	if ok {
		return got
	}
	out := l.collapseNow(keep, parent)
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]*layout{}
	}
	if len(c.m) < maxCollapsedLayouts {
		c.m[key] = out
	}
	c.mu.Unlock()
	return out
}

func (l *layout) collapseNow(keep []string, parent map[string]string) *layout {
	set := make(map[string]bool, len(keep))
	for _, id := range keep {
		set[id] = true
	}
	pos := make([]int, len(l.ids))
	for p, i := range l.order {
		pos[i] = p
	}
	// rep: the node (index in nodes) each task is drawn as.
	var nodes []node
	first := make([]int, 0, len(l.ids)) // the topological position of each node's first task
	byGroup := map[string]int{}
	rep := make([]int, len(l.ids))
	for i, t := range l.nodes {
		box := ""
		for g := t.group; g != ""; g = parent[g] {
			if set[g] {
				box = g
			}
		}
		if box == "" {
			rep[i] = len(nodes)
			nodes = append(nodes, node{id: t.id, kind: t.kind, rule: t.rule, group: t.group,
				setup: t.setup, teardown: t.teardown, failRun: t.failRun, mapped: t.mapped})
			first = append(first, pos[i])
			continue
		}
		k, ok := byGroup[box]
		if !ok {
			k = len(nodes)
			byGroup[box] = k
			nodes = append(nodes, node{id: box, group: parent[box]})
			first = append(first, pos[i])
		}
		nodes[k].members = append(nodes[k].members, t.id)
		first[k] = min(first[k], pos[i])
		rep[i] = k
	}
	// Edges, merged: edge[to][from] is the index in nodes[to].up.
	edge := make([]map[int]int, len(nodes))
	add := func(from, to int, a edgeArrows) {
		if edge[to] == nil {
			edge[to] = map[int]int{}
		}
		if k, ok := edge[to][from]; ok {
			nodes[to].upArrows[k] |= a
			return
		}
		edge[to][from] = len(nodes[to].up)
		nodes[to].up = append(nodes[to].up, nodes[from].id)
		nodes[to].upArrows = append(nodes[to].upArrows, a)
	}
	for v := range l.ids {
		for _, u := range l.up[v] {
			a, b := rep[u], rep[v]
			switch {
			case a == b:
			case first[a] < first[b]:
				add(a, b, arrowEnd)
			default:
				add(b, a, arrowStart)
			}
		}
	}
	return computeLayout(nodes, l.groups)
}
