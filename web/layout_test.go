package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
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
	lay := computeLayout(nodes)
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
	svg := renderGraph("d", lay, "Graph", "", nil)
	if again := renderGraph("d", computeLayout(nodes), "Graph", "", nil); !bytes.Equal(svg, again) {
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
		lay := computeLayout(nodes)
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
	if c := computeLayout(tree).crossings; c != 0 {
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
	svg := string(renderGraph("kinds", layoutOf(d), "Graph", "", nil))
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
	if old := string(renderGraph("kinds", layoutOfSnapshot(snap), "Graph", "", nil)); old != svg {
		t.Errorf("the graph from the snapshot differs:\n%s\nwant\n%s", old, svg)
	}
}
