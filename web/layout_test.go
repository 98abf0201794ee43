package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/operators"
	"github.com/trellisdag/trellis/task"
)

// boxHits returns, for every edge of lay, the boxes of other tasks one of its
// segments passes through (sampled finely along the curves, exactly at the
// ends), and whether any segment enters its own endpoints' boxes.
func boxHits(lay *layout) []string {
	var hits []string
	inside := func(p point, i int) bool {
		const eps = 0.5 // a point on a box's border is not inside it
		return p.x > lay.x[i]+eps && p.x < lay.x[i]+gNodeW-eps && p.y > lay.y[i]+eps && p.y < lay.y[i]+gNodeH-eps
	}
	for _, e := range lay.edges {
		seen := map[int]bool{}
		for _, s := range e.segments() {
			for k := 0; k <= 200; k++ {
				p := s.at(float64(k) / 200)
				for i := range lay.ids {
					if !seen[i] && inside(p, i) {
						seen[i] = true
						hits = append(hits, fmt.Sprintf("edge %s→%s passes through the box of %s at (%.1f, %.1f)",
							lay.ids[e.from], lay.ids[e.to], lay.ids[i], p.x, p.y))
					}
				}
			}
		}
	}
	return hits
}

// segmentHitsBox reports whether the straight line from a to b passes through
// box i (sampled).
func segmentHitsBox(lay *layout, a, b point, i int) bool {
	for k := 1; k < 400; k++ {
		t := float64(k) / 400
		p := point{a.x + t*(b.x-a.x), a.y + t*(b.y-a.y)}
		if p.x > lay.x[i] && p.x < lay.x[i]+gNodeW && p.y > lay.y[i] && p.y < lay.y[i]+gNodeH {
			return true
		}
	}
	return false
}

// TestGraphEdgesAvoidBoxes: in a DAG whose edges skip levels (extract feeds
// publish directly, across three columns full of tasks), no edge segment
// passes through a box other than at its own two ends, the long edge runs
// through one free lane per column it crosses, and the drawing is the same
// every time.
func TestGraphEdgesAvoidBoxes(t *testing.T) {
	t.Parallel()
	nodes := []node{
		{id: "extract", kind: task.KindGo},
		{id: "clean_a", kind: task.KindBash, up: []string{"extract"}},
		{id: "clean_b", kind: task.KindBash, up: []string{"extract"}},
		{id: "clean_c", kind: task.KindBash, up: []string{"extract"}},
		{id: "join", kind: task.KindGo, up: []string{"clean_a", "clean_b", "clean_c"}},
		{id: "model_a", kind: task.KindPod, up: []string{"join"}},
		{id: "model_b", kind: task.KindPod, up: []string{"join"}},
		{id: "model_c", kind: task.KindPod, up: []string{"join"}},
		{id: "publish", kind: task.KindBash, rule: task.AllDone, up: []string{"model_a", "model_b", "model_c", "extract", "clean_b"}},
		{id: "notify", kind: task.KindGo, rule: task.OneFailed, up: []string{"publish", "extract"}},
	}
	lay := computeLayout(nodes, nil)
	if hits := boxHits(lay); len(hits) > 0 {
		t.Errorf("edges pass through boxes:\n%s", strings.Join(hits, "\n"))
	}
	idx := map[string]int{}
	for i, id := range lay.ids {
		idx[id] = i
	}
	var long *edgeRoute
	for k, e := range lay.edges {
		if lay.ids[e.from] == "extract" && lay.ids[e.to] == "publish" {
			long = &lay.edges[k]
		}
	}
	if long == nil {
		t.Fatal("no route for extract → publish")
	}
	// extract is at level 0, publish at 4: the route crosses columns 1-3, two
	// points (enter, leave) in each.
	if got := len(long.pts); got != 2+2*3 {
		t.Errorf("extract → publish has %d points, want 8: %+v", got, long.pts)
	}
	// The sanity of the test: drawn straight, the long edge would go under a
	// box of the columns it crosses.
	a, b := long.pts[0], long.pts[len(long.pts)-1]
	blocked := false
	for _, id := range []string{"clean_a", "clean_b", "clean_c", "join", "model_a", "model_b", "model_c"} {
		blocked = blocked || segmentHitsBox(lay, a, b, idx[id])
	}
	if !blocked {
		t.Errorf("the test DAG is too easy: a straight extract → publish misses every box")
	}
	svg := renderGraph("d", lay, "Graph", "", nil, nil)
	if again := renderGraph("d", computeLayout(nodes, nil), "Graph", "", nil, nil); !bytes.Equal(svg, again) {
		t.Error("two layouts of one DAG differ")
	}
	for _, want := range []string{`>publish</text>`, `>bash · all_done</text>`, `>go · one_failed</text>`, `>pod</text>`,
		`data-kind="bash" data-rule="all_done"`, `aria-label="publish: none; kind bash; trigger rule all_done"`} {
		if !bytes.Contains(svg, []byte(want)) {
			t.Errorf("the SVG lacks %s", want)
		}
	}
	if n := strings.Count(string(svg), `marker-end="url(#arrow)"`); n != 16 {
		t.Errorf("the SVG has %d edges, want 16", n)
	}
}

// TestGraphEdgesAvoidBoxesRandom: the same property over random DAGs with many
// long edges, and the ordering finds no crossing in a tree.
func TestGraphEdgesAvoidBoxesRandom(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 30 {
		n := 5 + rng.IntN(40)
		nodes := make([]node, n)
		for i := range nodes {
			nodes[i] = node{id: fmt.Sprintf("t%02d", i), kind: task.KindGo}
			for j := 0; j < i; j++ {
				if rng.IntN(8) == 0 {
					nodes[i].up = append(nodes[i].up, nodes[j].id)
				}
			}
		}
		lay := computeLayout(nodes, nil)
		if hits := boxHits(lay); len(hits) > 0 {
			t.Fatalf("round %d (%d tasks): edges pass through boxes:\n%s", round, n, strings.Join(hits, "\n"))
		}
	}
	// A binary tree can always be drawn without crossings.
	tree := make([]node, 31)
	for i := range tree {
		tree[i] = node{id: fmt.Sprintf("n%02d", i)}
		if i > 0 {
			tree[i].up = []string{fmt.Sprintf("n%02d", (i-1)/2)}
		}
	}
	// Shuffle the declaration order: the sweeps must undo it.
	rng.Shuffle(len(tree), func(i, j int) { tree[i], tree[j] = tree[j], tree[i] })
	if c := computeLayout(tree, nil).crossings; c != 0 {
		t.Errorf("a tree is drawn with %d crossings, want 0", c)
	}
}

// TestGraphOfDAGShowsKindsAndRules: a DAG's own tasks give the kinds and
// trigger rules (sensor, branch, short_circuit, bash, go).
func TestGraphOfDAGShowsKindsAndRules(t *testing.T) {
	t.Parallel()
	d := dag.New("kinds")
	wait := task.Sensor("wait", func(context.Context, *task.Run) (bool, error) { return true, nil })
	run := operators.Bash("run", "true")
	pick := task.Branch("pick", func(context.Context, *task.Run) ([]task.Task, error) { return []task.Task{run}, nil })
	gate := task.ShortCircuit("gate", func(context.Context, *task.Run) (bool, error) { return true, nil })
	end := task.Go("end", func(context.Context, *task.Run) (int, error) { return 0, nil }, task.Trigger(task.NoneFailedMinOneSuccess))
	d.Add(wait, pick, gate, run, end)
	wait.Then(pick).Then(run).Then(end)
	wait.Then(gate).Then(end)
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	svg := string(renderGraph("kinds", layoutOf(d), "Graph", "", nil, nil))
	for _, want := range []string{">sensor</text>", ">branch</text>", ">short_circuit</text>", ">bash</text>",
		">go · none_failed_min_one_success</text>", `data-rule="none_failed_min_one_success"`} {
		if !strings.Contains(svg, want) {
			t.Errorf("the graph lacks %s:\n%s", want, svg)
		}
	}
	if hits := boxHits(layoutOf(d)); len(hits) > 0 {
		t.Errorf("edges pass through boxes:\n%s", strings.Join(hits, "\n"))
	}
	// A stored version (the graph of an old run) gives the kinds and rules
	// from its snapshot: the same drawing.
	b, err := json.Marshal(d.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	var snap dag.Snapshot
	if err := json.Unmarshal(b, &snap); err != nil {
		t.Fatal(err)
	}
	if old := string(renderGraph("kinds", layoutOfSnapshot(snap), "Graph", "", nil, nil)); old != svg {
		t.Errorf("the graph from the snapshot differs:\n%s\nwant\n%s", old, svg)
	}
}

// groupNodes is a DAG with a group, a group nested in it and a setup and
// teardown in another group, as the layout sees it (groupsDAG's shape).
func groupNodes() ([]node, []groupDef) {
	return []node{
			{id: "extract", kind: task.KindGo},
			{id: "quality.check_nulls", kind: task.KindGo, group: "quality", up: []string{"extract"}},
			{id: "quality.check_range", kind: task.KindGo, group: "quality", up: []string{"extract"}},
			{id: "quality.deep.profile", kind: task.KindGo, group: "quality.deep", up: []string{"quality.check_nulls"}},
			{id: "quality.deep.compare", kind: task.KindGo, group: "quality.deep", up: []string{"quality.deep.profile"}},
			{id: "model.create_cluster", kind: task.KindGo, group: "model", setup: true, up: []string{"quality.deep.compare", "quality.check_range"}},
			{id: "model.train", kind: task.KindPod, group: "model", up: []string{"model.create_cluster"}},
			{id: "model.delete_cluster", kind: task.KindGo, group: "model", teardown: true, rule: task.AllDoneSetupSuccess,
				up: []string{"model.create_cluster", "model.train"}},
			{id: "publish", kind: task.KindBash, up: []string{"model.train"}},
		}, []groupDef{
			{id: "quality"}, {id: "quality.deep", parent: "quality"}, {id: "model"},
		}
}

// edgeTitles lists the edges of an SVG by their titles.
func edgeTitles(svg string) []string {
	var out []string
	for _, p := range strings.Split(svg, "<path d=")[1:] {
		if k := strings.Index(p, "<title>"); k >= 0 {
			out = append(out, p[k+len("<title>"):k+strings.Index(p[k:], "</title>")])
		}
	}
	return out
}

// TestGraphCollapsedGroups: a collapsed group is one box (its id, "group · N
// tasks", coloured by its tasks' summary state) that links to the expanded
// graph; the edges into, out of and inside it are merged; a nested group
// collapses inside its expanded parent and disappears into a collapsed one;
// no edge passes through a box; setup and teardown are marked, and the edge
// between them is dashed.
func TestGraphCollapsedGroups(t *testing.T) {
	t.Parallel()
	nodes, groups := groupNodes()
	base := computeLayout(nodes, groups)
	if got := base.collapse(nil); got != base {
		t.Error("collapsing nothing made a new layout")
	}
	if got := base.collapse([]string{"nope"}); got != base {
		t.Error("collapsing an unknown group made a new layout")
	}
	states := map[string]task.State{"extract": task.StateSuccess, "quality.check_nulls": task.StateSuccess,
		"quality.check_range": task.StateFailed, "quality.deep.profile": task.StateSuccess, "quality.deep.compare": task.StateRunning,
		"model.create_cluster": task.StateUpstreamFailed}
	for _, c := range []struct {
		collapsed []string
		boxes     map[string]string // group -> tasks and state
		edges     []string
	}{
		{nil, nil, []string{"extract → quality.check_nulls", "extract → quality.check_range", "quality.check_nulls → quality.deep.profile",
			"quality.deep.profile → quality.deep.compare", "quality.deep.compare → model.create_cluster", "quality.check_range → model.create_cluster",
			"model.create_cluster → model.train", "model.create_cluster → model.delete_cluster", "model.train → model.delete_cluster", "model.train → publish"}},
		{[]string{"quality"}, map[string]string{"quality": "4 failed"}, []string{"extract → quality", "quality → model.create_cluster",
			"model.create_cluster → model.train", "model.create_cluster → model.delete_cluster", "model.train → model.delete_cluster", "model.train → publish"}},
		{[]string{"quality.deep", "quality"}, map[string]string{"quality": "4 failed"}, nil}, // the nested one is inside the box
		{[]string{"quality.deep"}, map[string]string{"quality.deep": "2 running"}, []string{"extract → quality.check_nulls", "extract → quality.check_range",
			"quality.check_nulls → quality.deep", "quality.deep → model.create_cluster", "quality.check_range → model.create_cluster",
			"model.create_cluster → model.train", "model.create_cluster → model.delete_cluster", "model.train → model.delete_cluster", "model.train → publish"}},
		{[]string{"model", "quality.deep"}, map[string]string{"model": "3 upstream_failed", "quality.deep": "2 running"}, []string{"extract → quality.check_nulls",
			"extract → quality.check_range", "quality.check_nulls → quality.deep", "quality.deep → model", "quality.check_range → model", "model → publish"}},
	} {
		lay := base.collapse(c.collapsed)
		if hits := boxHits(lay); len(hits) > 0 {
			t.Errorf("%v: edges pass through boxes:\n%s", c.collapsed, strings.Join(hits, "\n"))
		}
		if again := base.collapse(slices.Clone(c.collapsed)); again != lay {
			t.Errorf("%v: not cached", c.collapsed)
		}
		svg := string(renderGraph("d&", lay, "Graph", "r 1", states, nil))
		boxes := map[string]string{}
		for i, id := range lay.ids {
			if lay.members[i] != nil {
				boxes[id] = ""
			}
		}
		for g, want := range c.boxes {
			n, st, _ := strings.Cut(want, " ")
			for _, s := range []string{`href="#/dags/d&amp;/graph?run=r+1&amp;expand=` + g + `" class="node group st-` + st + `" data-group="` + g + `" data-tasks="` + n + `"`,
				`>` + g + `</text>`, `>group · ` + n + ` tasks</text>`, `fill="` + stateColor[task.State(st)][0] + `"`} {
				if !strings.Contains(svg, s) {
					t.Errorf("%v: the SVG lacks %s:\n%s", c.collapsed, s, svg)
				}
			}
			delete(boxes, g)
		}
		if len(boxes) > 0 {
			t.Errorf("%v: unexpected boxes %v", c.collapsed, boxes)
		}
		if c.edges != nil {
			got, want := edgeTitles(svg), slices.Clone(c.edges)
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("%v: edges\n%q\nwant\n%q", c.collapsed, got, want)
			}
		}
		if c.boxes["model"] == "" && (!strings.Contains(svg, `>go · setup</text>`) || !strings.Contains(svg, `>go · teardown</text>`) ||
			!strings.Contains(svg, `data-setup="true"`) || !strings.Contains(svg, `aria-label="model.delete_cluster: none; kind go; trigger rule all_done_setup_success; teardown"`)) {
			t.Errorf("%v: setup or teardown not marked:\n%s", c.collapsed, svg)
		}
		if c.boxes["model"] == "" && (strings.Count(svg, `stroke-dasharray`) != 1 ||
			!strings.Contains(svg, `stroke-dasharray="5 3" marker-end="url(#arrow)"><title>model.create_cluster → model.delete_cluster<`)) {
			t.Errorf("%v: the setup → teardown edge is not the one dashed:\n%s", c.collapsed, svg)
		}
	}
}

// TestGraphCollapsedCycle: collapsing a group that feeds a task feeding the
// group again draws one edge with both arrowheads (not a cycle the layers
// cannot hold), and one that only runs against the order has its arrowhead
// at its start.
func TestGraphCollapsedCycle(t *testing.T) {
	t.Parallel()
	nodes := []node{
		{id: "g.a"}, {id: "x", up: []string{"g.a"}}, {id: "g.b", group: "g", up: []string{"x"}},
		{id: "y", up: []string{"g.b"}}, {id: "h.c", group: "h", up: []string{"y"}}, {id: "h.d", group: "h"},
		{id: "z", up: []string{"h.d"}},
	}
	nodes[0].group = "g"
	nodes[5].up = nil
	lay := computeLayout(nodes, []groupDef{{id: "g"}, {id: "h"}}).collapse([]string{"g", "h"})
	if hits := boxHits(lay); len(hits) > 0 {
		t.Errorf("edges pass through boxes:\n%s", strings.Join(hits, "\n"))
	}
	svg := string(renderGraph("d", lay, "Graph", "", nil, nil))
	got := edgeTitles(svg)
	slices.Sort(got)
	// g → x and x → g merge; g → y; y → h and h → z run both ways between y
	// and z's boxes in the order of their first tasks (h.c comes after y, h.d
	// before z).
	want := []string{"g → y", "g ↔ x", "h → z", "y → h"}
	if !slices.Equal(got, want) {
		t.Errorf("edges %q, want %q:\n%s", got, want, svg)
	}
	if !strings.Contains(svg, `marker-start="url(#arrow)" marker-end="url(#arrow)"><title>g ↔ x</title>`) {
		t.Errorf("the two-way edge has not both arrowheads:\n%s", svg)
	}
	for i := range lay.ids {
		for _, u := range lay.up[i] {
			if lay.level[u] >= lay.level[i] {
				t.Errorf("edge %s → %s does not go right", lay.ids[u], lay.ids[i])
			}
		}
	}
}

// TestGraphCollapsedRandom: edges avoid boxes in random DAGs whose tasks are
// in random nested groups, some of them collapsed.
func TestGraphCollapsedRandom(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	for round := range 40 {
		n := 5 + rng.IntN(40)
		groups := []groupDef{{id: "a"}, {id: "b"}, {id: "a.c", parent: "a"}, {id: "d"}}
		nodes := make([]node, n)
		for i := range nodes {
			nodes[i] = node{id: fmt.Sprintf("t%02d", i), kind: task.KindGo}
			if k := rng.IntN(6); k < len(groups) {
				nodes[i].group = groups[k].id
				nodes[i].id = groups[k].id + "." + nodes[i].id
			}
			for j := 0; j < i; j++ {
				if rng.IntN(6) == 0 {
					nodes[i].up = append(nodes[i].up, nodes[j].id)
				}
			}
		}
		base := computeLayout(nodes, groups)
		var collapsed []string
		for _, g := range groups {
			if rng.IntN(2) == 0 {
				collapsed = append(collapsed, g.id)
			}
		}
		lay := base.collapse(collapsed)
		if hits := boxHits(lay); len(hits) > 0 {
			t.Fatalf("round %d (%d tasks, collapsed %v): edges pass through boxes:\n%s", round, n, collapsed, strings.Join(hits, "\n"))
		}
		tasks := 0
		for i := range lay.ids {
			tasks += max(1, len(lay.members[i]))
			for _, u := range lay.up[i] {
				if lay.level[u] >= lay.level[i] {
					t.Fatalf("round %d: edge %s → %s does not go right", round, lay.ids[u], lay.ids[i])
				}
			}
		}
		if tasks != n {
			t.Fatalf("round %d: the boxes hold %d tasks, want %d", round, tasks, n)
		}
	}
}
