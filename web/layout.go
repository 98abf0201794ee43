package web

import (
	"slices"
	"sort"
	"sync"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/task"
)

// layout is a DAG's tasks in topological order with their levels (a task's
// level is the length of the longest path from a root to it) and the drawing
// of its graph. The grid's rows (a group's tasks together: gridTree) and the
// graph's columns follow it; collapse draws groups as one box each.
//
// The graph is laid out the Sugiyama way: one column per level; an edge that
// skips levels gets a dummy point in every column it crosses, so that it runs
// through a free slot of that column instead of under another task's box; the
// order within each column is chosen by barycenter sweeps that keep the order
// with the fewest crossings; and the vertical positions pull every task and
// dummy towards its neighbours (least squares under the columns' order and
// spacing). Everything is deterministic: the same DAG is always drawn the same.
type layout struct {
	ids      []string
	kind     []task.Kind
	rule     []task.TriggerRule
	level    []int
	order    []int // task indexes by (level, position in the column)
	up       [][]int
	upArrows [][]edgeArrows // the arrowheads of each up edge (nil: arrowEnd for all)
	levels   [][]int        // task indexes per level, top to bottom

	// What groups.go reads: each task's innermost group ("" when none; for a
	// collapsed group's box, the group it is nested in), its setup, teardown
	// and fail-the-run flags, the tasks a collapsed group's box stands for
	// (nil for a task), and the DAG's groups, outer groups first.
	group                    []string
	setup, teardown, failRun []bool
	mapped                   []bool // the task is mapped (drawn with its instance count)
	members                  [][]string
	groups                   []groupDef
	nodes                    []node        // what the layout was computed from
	collapsed                collapseCache // layouts of this one with groups collapsed

	// The drawing, in SVG user units (see svg.go for the constants).
	width, height int
	x, y          []float64   // top left corner of each task's box
	edges         []edgeRoute // one per dependency, in task order
	crossings     int         // edge crossings of the chosen order
}

// edgeRoute is the path of one dependency from task from to task to: pts are
// the points where it enters or leaves a column (its start on from's right
// side, then for every dummy the left and right edge of that column at the
// dummy's height, then its end on to's left side). Between two consecutive
// points it runs in the gap between two columns, where no box is; inside a
// column it runs straight through its dummy's free slot.
type edgeRoute struct {
	from, to int
	pts      []point
	// arrows says which ends have an arrowhead: arrowEnd for a dependency
	// from -> to; arrowStart when it runs to -> from (an edge between collapsed
	// groups drawn against the columns' order), both when both do.
	arrows edgeArrows
}

// edgeArrows are the arrowheads of an edge (a bit set).
type edgeArrows uint8

const (
	arrowEnd   edgeArrows = 1 << iota // the dependency runs from -> to
	arrowStart                        // the dependency runs to -> from
)

type point struct{ x, y float64 }

var layouts sync.Map // *dag.DAG -> *layout; DAGs are read-only once built

func layoutOf(d *dag.DAG) *layout {
	if l, ok := layouts.Load(d); ok {
		return l.(*layout)
	}
	ts := d.Tasks()
	nodes := make([]node, len(ts))
	for i, t := range ts {
		set := task.SettingsOf(t)
		nodes[i] = node{id: t.ID(), kind: set.Kind, rule: set.TriggerRule, group: set.Group,
			setup: set.Setup, teardown: set.Teardown, failRun: set.FailRun, mapped: set.Mapped}
		for _, u := range task.Upstream(t) {
			nodes[i].up = append(nodes[i].up, u.ID())
		}
	}
	var groups []groupDef
	for _, g := range d.Groups() {
		gd := groupDef{id: g.ID()}
		if p := g.Parent(); p != nil {
			gd.parent = p.ID()
		}
		groups = append(groups, gd)
	}
	l := computeLayout(nodes, groups)
	got, _ := layouts.LoadOrStore(d, l)
	return got.(*layout)
}

// layoutOfSnapshot lays out a stored definition of a DAG (an earlier version
// that a run ran with): kinds and trigger rules come from the snapshot.
func layoutOfSnapshot(s dag.Snapshot) *layout {
	nodes := make([]node, len(s.Tasks))
	for i, t := range s.Tasks {
		nodes[i] = node{id: t.ID, kind: t.Kind, rule: t.TriggerRule, up: t.Upstream, group: t.Group,
			setup: t.Setup, teardown: t.Teardown, failRun: t.FailRun, mapped: t.Map != nil}
	}
	groups := make([]groupDef, len(s.Groups))
	for i, g := range s.Groups {
		groups[i] = groupDef{id: g.ID, parent: g.Parent}
	}
	return computeLayout(nodes, groups)
}

// node is a task as the layout sees it, or a collapsed group's box (members
// not nil: the ids of its tasks).
type node struct {
	id                       string
	kind                     task.Kind
	rule                     task.TriggerRule
	up                       []string
	upArrows                 []edgeArrows // per up: nil means arrowEnd for all
	group                    string
	setup, teardown, failRun bool
	mapped                   bool
	members                  []string
}

// groupDef is a task group: its full id and its parent's ("" at the top).
type groupDef struct{ id, parent string }

// Ordering and positioning effort: a few sweeps settle any DAG a person draws.
const (
	orderSweeps    = 12
	positionRounds = 6
)

func computeLayout(nodes []node, groups []groupDef) *layout {
	n := len(nodes)
	l := &layout{ids: make([]string, n), kind: make([]task.Kind, n), rule: make([]task.TriggerRule, n),
		level: make([]int, n), up: make([][]int, n), upArrows: make([][]edgeArrows, n),
		group: make([]string, n), setup: make([]bool, n), teardown: make([]bool, n), failRun: make([]bool, n), mapped: make([]bool, n),
		members: make([][]string, n), groups: groups, nodes: nodes}
	index := make(map[string]int, n)
	for i, t := range nodes {
		index[t.id] = i
		l.ids[i], l.kind[i], l.rule[i] = t.id, t.kind, t.rule
		l.group[i], l.setup[i], l.teardown[i], l.failRun[i], l.members[i] = t.group, t.setup, t.teardown, t.failRun, t.members
		l.mapped[i] = t.mapped
	}
	indeg := make([]int, n)
	down := make([][]int, n)
	for i, t := range nodes {
		for k, u := range t.up {
			if j, ok := index[u]; ok {
				l.up[i] = append(l.up[i], j)
				if t.upArrows != nil { // else arrowEnd for all
					l.upArrows[i] = append(l.upArrows[i], t.upArrows[k])
				}
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
	if n == 0 {
		l.width, l.height = 2*gMargin+gNodeW, 2*gMargin+gNodeH
		return l
	}
	g := newLayered(l)
	g.order()
	g.position()
	g.store(l)
	return l
}

// layered is the proper layered graph of a layout: tasks and dummies
// (vertices), each edge between adjacent levels.
type layered struct {
	nTasks int
	level  []int        // of each vertex
	preds  [][]int      // vertices one level up
	succs  [][]int      // vertices one level down
	cols   [][]int      // vertices per level, in order
	pos    []int        // index of each vertex in its column
	routes [][]int      // per dependency: from, dummies..., to
	deps   [][2]int     // per dependency: from and to task
	arrows []edgeArrows // per dependency
	y      []float64    // centre of each vertex
}

func newLayered(l *layout) *layered {
	n := len(l.ids)
	g := &layered{nTasks: n, level: slices.Clone(l.level), preds: make([][]int, n), succs: make([][]int, n)}
	maxLevel := slices.Max(l.level)
	g.cols = make([][]int, maxLevel+1)
	for i := range n {
		g.cols[l.level[i]] = append(g.cols[l.level[i]], i)
	}
	for v := range n {
		for k, u := range l.up[v] {
			route := []int{u}
			prev := u
			for lv := l.level[u] + 1; lv < l.level[v]; lv++ {
				d := len(g.level)
				g.level = append(g.level, lv)
				g.preds = append(g.preds, nil)
				g.succs = append(g.succs, nil)
				g.cols[lv] = append(g.cols[lv], d)
				g.link(prev, d)
				route = append(route, d)
				prev = d
			}
			g.link(prev, v)
			g.routes = append(g.routes, append(route, v))
			g.deps = append(g.deps, [2]int{u, v})
			a := arrowEnd
			if l.upArrows[v] != nil {
				a = l.upArrows[v][k]
			}
			g.arrows = append(g.arrows, a)
		}
	}
	g.pos = make([]int, len(g.level))
	g.y = make([]float64, len(g.level))
	g.renumber()
	return g
}

func (g *layered) link(a, b int) {
	g.succs[a] = append(g.succs[a], b)
	g.preds[b] = append(g.preds[b], a)
}

func (g *layered) renumber() {
	for _, col := range g.cols {
		for p, v := range col {
			g.pos[v] = p
		}
	}
}

// order sorts the columns by alternate barycenter sweeps (down: by the mean
// position of a vertex's predecessors; up: of its successors) and keeps the
// order with the fewest crossings seen.
func (g *layered) order() {
	// The columns start in the DAG's own order (dummies after the tasks).
	best := g.crossings()
	bestCols := cloneCols(g.cols)
	key := make([]float64, len(g.level))
	for sweep := 0; sweep < orderSweeps && best > 0; sweep++ {
		downward := sweep%2 == 0
		for k := range g.cols {
			lv := k
			if !downward {
				lv = len(g.cols) - 1 - k
			}
			col := g.cols[lv]
			for _, v := range col {
				nb := g.preds[v]
				if !downward {
					nb = g.succs[v]
				}
				if len(nb) == 0 {
					key[v] = float64(g.pos[v])
					continue
				}
				sum := 0
				for _, u := range nb {
					sum += g.pos[u]
				}
				key[v] = float64(sum) / float64(len(nb))
			}
			sort.SliceStable(col, func(a, b int) bool { return key[col[a]] < key[col[b]] })
			for p, v := range col {
				g.pos[v] = p
			}
		}
		if c := g.crossings(); c < best {
			best, bestCols = c, cloneCols(g.cols)
		}
	}
	g.cols = bestCols
	g.renumber()
}

func cloneCols(cols [][]int) [][]int {
	out := make([][]int, len(cols))
	for i, c := range cols {
		out[i] = slices.Clone(c)
	}
	return out
}

// crossings counts the crossings between every pair of adjacent columns: the
// inversions of the lower ends of the edges sorted by their upper ends,
// counted with a Fenwick tree (Barth, Jünger and Mutzel).
func (g *layered) crossings() int {
	total := 0
	var ends []int
	var tree []int
	for lv := 0; lv+1 < len(g.cols); lv++ {
		ends = ends[:0]
		for _, u := range g.cols[lv] { // in column order: sorted by upper end
			first := len(ends)
			for _, v := range g.succs[u] {
				ends = append(ends, g.pos[v])
			}
			slices.Sort(ends[first:])
		}
		m := len(g.cols[lv+1])
		tree = slices.Grow(tree[:0], m+1)[:m+1]
		clear(tree)
		for k, e := range ends {
			// edges seen so far with a lower end after e cross this one
			le := 0
			for i := e + 1; i > 0; i -= i & -i {
				le += tree[i]
			}
			total += k - le
			for i := e + 1; i <= m; i += i & -i {
				tree[i]++
			}
		}
	}
	return total
}

// half is the half-height a vertex needs in its column: a task's box and its
// margin, or a dummy's lane.
func (g *layered) half(v int) float64 {
	if v < g.nTasks {
		return gNodeH/2 + gRowGap/2
	}
	return gLane / 2
}

// position sets the vertical centres: columns start stacked, then every round
// moves each column's vertices as close as it can to the mean height of their
// neighbours in the previous column (down) or the next one (up), keeping the
// column's order and spacing (an isotonic regression, pool-adjacent-violators).
func (g *layered) position() {
	for _, col := range g.cols {
		y := 0.0
		for k, v := range col {
			if k > 0 {
				y += g.half(col[k-1]) + g.half(v)
			} else {
				y = g.half(v)
			}
			g.y[v] = y
		}
	}
	// Centre the columns on the tallest one before pulling them together.
	tallest := 0.0
	for _, col := range g.cols {
		last := col[len(col)-1]
		tallest = max(tallest, g.y[last]+g.half(last))
	}
	for _, col := range g.cols {
		last := col[len(col)-1]
		off := (tallest - g.y[last] - g.half(last)) / 2
		for _, v := range col {
			g.y[v] += off
		}
	}
	want := make([]float64, 0, 64)
	for round := range positionRounds {
		downward := round%2 == 0
		for k := range g.cols {
			lv := k
			if !downward {
				lv = len(g.cols) - 1 - k
			}
			col := g.cols[lv]
			want = want[:0]
			for _, v := range col {
				nb := g.preds[v]
				if !downward {
					nb = g.succs[v]
				}
				if len(nb) == 0 {
					want = append(want, g.y[v])
					continue
				}
				sum := 0.0
				for _, u := range nb {
					sum += g.y[u]
				}
				want = append(want, sum/float64(len(nb)))
			}
			g.fit(col, want)
		}
	}
	top := g.y[g.cols[0][0]] - g.half(g.cols[0][0])
	for _, col := range g.cols {
		top = min(top, g.y[col[0]]-g.half(col[0]))
	}
	for v := range g.y {
		g.y[v] -= top
	}
}

// fit places col's vertices as near to want as their order and spacing allow
// (least squares): with c_k the spacing above vertex k, z_k = y_k - c_k must not
// decrease, which pool-adjacent-violators solves exactly.
func (g *layered) fit(col []int, want []float64) {
	type block struct {
		sum   float64
		count int
	}
	blocks := make([]block, 0, len(col))
	c := 0.0
	for k, v := range col {
		if k > 0 {
			c += g.half(col[k-1]) + g.half(v)
		}
		blocks = append(blocks, block{want[k] - c, 1})
		for len(blocks) > 1 {
			a, b := blocks[len(blocks)-2], blocks[len(blocks)-1]
			if a.sum/float64(a.count) <= b.sum/float64(b.count) {
				break
			}
			blocks = blocks[:len(blocks)-1]
			blocks[len(blocks)-1] = block{a.sum + b.sum, a.count + b.count}
		}
	}
	k := 0
	c = 0
	for _, b := range blocks {
		z := b.sum / float64(b.count)
		for range b.count {
			if k > 0 {
				c += g.half(col[k-1]) + g.half(col[k])
			}
			g.y[col[k]] = z + c
			k++
		}
	}
}

// store writes the order and the drawing into l.
func (g *layered) store(l *layout) {
	n := g.nTasks
	l.levels = make([][]int, len(g.cols))
	for lv, col := range g.cols {
		for _, v := range col {
			if v < n {
				l.levels[lv] = append(l.levels[lv], v)
			}
		}
		l.order = append(l.order, l.levels[lv]...)
	}
	l.crossings = g.crossings()
	colX := func(lv int) float64 { return float64(gMargin + lv*gColW) }
	l.x, l.y = make([]float64, n), make([]float64, n)
	bottom := 0.0
	for v, y := range g.y {
		bottom = max(bottom, y+g.half(v))
		if v < n {
			l.x[v], l.y[v] = colX(g.level[v]), gMargin+y-gNodeH/2
		}
	}
	l.width = 2*gMargin + (len(g.cols)-1)*gColW + gNodeW
	l.height = 2*gMargin + int(bottom+0.999)
	// Ports: the edges leaving (entering) a box are spread along its right
	// (left) side in the order of the heights of their other ends, so that
	// they neither cross at the box nor hide each other's arrows.
	outPort := make([]float64, len(g.routes))
	inPort := make([]float64, len(g.routes))
	byFrom := make([][]int, n)
	byTo := make([][]int, n)
	for e, r := range g.routes {
		byFrom[r[0]] = append(byFrom[r[0]], e)
		byTo[r[len(r)-1]] = append(byTo[r[len(r)-1]], e)
	}
	spread := func(es []int, other func(e int) float64, out []float64) {
		sort.SliceStable(es, func(a, b int) bool { return other(es[a]) < other(es[b]) })
		step := 0.0
		if len(es) > 1 {
			step = min(gPortStep, (gNodeH-2*gPortInset)/float64(len(es)-1))
		}
		for k, e := range es {
			out[e] = (float64(k) - float64(len(es)-1)/2) * step
		}
	}
	for v := range n {
		spread(byFrom[v], func(e int) float64 { return g.y[g.routes[e][1]] }, outPort)
		r := byTo[v]
		spread(r, func(e int) float64 { rt := g.routes[e]; return g.y[rt[len(rt)-2]] }, inPort)
	}
	l.edges = make([]edgeRoute, len(g.routes))
	for e, r := range g.routes {
		u, v := r[0], r[len(r)-1]
		pts := make([]point, 0, 2*len(r)-2)
		pts = append(pts, point{l.x[u] + gNodeW, gMargin + g.y[u] + outPort[e]})
		for _, d := range r[1 : len(r)-1] {
			x := colX(g.level[d])
			y := gMargin + g.y[d]
			pts = append(pts, point{x, y}, point{x + gNodeW, y})
		}
		pts = append(pts, point{l.x[v], gMargin + g.y[v] + inPort[e]})
		l.edges[e] = edgeRoute{from: u, to: v, pts: pts, arrows: g.arrows[e]}
	}
}
