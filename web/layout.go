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
	tasks  []task.Task
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
	l := computeLayout(d)
	layouts.Store(d, l)
	return l
}

func computeLayout(d *dag.DAG) *layout {
	ts := d.Tasks()
	n := len(ts)
	l := &layout{tasks: ts, kind: make([]task.Kind, n), level: make([]int, n), up: make([][]int, n)}
	index := make(map[string]int, n)
	for i, t := range ts {
		index[t.ID()] = i
		l.kind[i] = task.SettingsOf(t).Kind
	}
	indeg := make([]int, n)
	down := make([][]int, n)
	for i, t := range ts {
		for _, u := range task.Upstream(t) {
			if j, ok := index[u.ID()]; ok {
				l.up[i] = append(l.up[i], j)
				down[j] = append(down[j], i)
				indeg[i]++
			}
		}
	}
	// Kahn's algorithm; the DAG is validated, so every task is reached.
	queue := make([]int, 0, n)
	for i := range ts {
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
	for i := range ts {
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
