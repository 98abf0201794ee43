package web

import (
	"sync"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/task"
)

// layout is a DAG's tasks in topological order with their levels: a task's level
// is the length of the longest path from a root to it. The grid's rows and the
// graph's columns follow it.
type layout struct {
	ids    []string
	kind   []task.Kind
	level  []int
	order  []int // task indexes by (level, position in the DAG)
	up     [][]int
	levels [][]int // task indexes per level, in order
}

var layouts sync.Map // *dag.DAG -> *layout; DAGs are read-only once built

func layoutOf(d *dag.DAG) *layout {
	if l, ok := layouts.Load(d); ok {
		return l.(*layout)
	}
	ts := d.Tasks()
	nodes := make([]node, len(ts))
	for i, t := range ts {
		nodes[i] = node{id: t.ID(), kind: task.SettingsOf(t).Kind}
		for _, u := range task.Upstream(t) {
			nodes[i].up = append(nodes[i].up, u.ID())
		}
	}
	l := computeLayout(nodes)
	layouts.Store(d, l)
	return l
}

// layoutOfSnapshot lays out a stored definition of a DAG (an earlier version
// that a run ran with).
func layoutOfSnapshot(s dag.Snapshot) *layout {
	nodes := make([]node, len(s.Tasks))
	for i, t := range s.Tasks {
		nodes[i] = node{id: t.ID, kind: t.Kind, up: t.Upstream}
	}
	return computeLayout(nodes)
}

// node is a task as the layout sees it.
type node struct {
	id   string
	kind task.Kind
	up   []string
}

func computeLayout(nodes []node) *layout {
	n := len(nodes)
	l := &layout{ids: make([]string, n), kind: make([]task.Kind, n), level: make([]int, n), up: make([][]int, n)}
	index := make(map[string]int, n)
	for i, t := range nodes {
		index[t.id] = i
		l.ids[i], l.kind[i] = t.id, t.kind
	}
	indeg := make([]int, n)
	down := make([][]int, n)
	for i, t := range nodes {
		for _, u := range t.up {
			if j, ok := index[u]; ok {
				l.up[i] = append(l.up[i], j)
				down[j] = append(down[j], i)
				indeg[i]++
			}
		}
	}
	// Kahn's algorithm; the DAG is validated, so every task is reached.
	queue := make([]int, 0, n)
	for i := range nodes {
		if indeg[i] == 0 {
			queue = append(queue, i)
		}
	}
	for k := 0; k < len(queue); k++ {
		i := queue[k]
		for _, j := range down[i] {
			if l.level[i]+1 > l.level[j] {
				l.level[j] = l.level[i] + 1
			}
			if indeg[j]--; indeg[j] == 0 {
				queue = append(queue, j)
			}
		}
	}
	maxLevel := 0
	for _, lv := range l.level {
		maxLevel = max(maxLevel, lv)
	}
	if n > 0 {
		l.levels = make([][]int, maxLevel+1)
	}
	for i := range nodes {
		l.levels[l.level[i]] = append(l.levels[l.level[i]], i)
	}
	// Order each level by the mean position of its upstream tasks (one barycenter
	// pass), which removes most edge crossings of pipeline-shaped DAGs.
	pos := make([]float64, n)
	for lv, idx := range l.levels {
		if lv > 0 {
			bary := make(map[int]float64, len(idx))
			for _, i := range idx {
				sum := 0.0
				for _, u := range l.up[i] {
					sum += pos[u]
				}
				bary[i] = sum / float64(max(1, len(l.up[i])))
			}
			sortStable(idx, func(a, b int) bool { return bary[a] < bary[b] })
		}
		for p, i := range idx {
			pos[i] = float64(p)
		}
		l.order = append(l.order, idx...)
	}
	return l
}

// sortStable is an insertion sort: levels are small and stability keeps the
// DAG's own order among equals.
func sortStable(s []int, less func(a, b int) bool) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && less(s[j], s[j-1]); j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
