package web

import (
	"fmt"
	"net/url"
	"strconv"

	"github.com/trellisdag/trellis/task"
)

// stateColor is the fill and text colour of each task state, the same as the
// UI's stylesheet (ui/app.css); every pair has a contrast ratio of at least 4.5.
var stateColor = map[task.State][2]string{
	task.StateNone:           {"#ffffff", "#1f2328"},
	task.StateScheduled:      {"#d8c8a0", "#1f2328"},
	task.StateQueued:         {"#c3c8cf", "#1f2328"},
	task.StateRunning:        {"#0a58ca", "#ffffff"},
	task.StateDeferred:       {"#b39ddb", "#1f2328"},
	task.StateSuccess:        {"#137333", "#ffffff"},
	task.StateFailed:         {"#c5221f", "#ffffff"},
	task.StateUpForRetry:     {"#f2c94c", "#1f2328"},
	task.StateUpstreamFailed: {"#f29d4b", "#1f2328"},
	task.StateSkipped:        {"#e7b6d4", "#1f2328"},
	task.StateRemoved:        {"#eaeef2", "#57606a"},
}

// Graph geometry, in SVG user units (pixels at 100%). Keep the heights even:
// the layout halves them.
const (
	gNodeW     = 200 // a task's box
	gNodeH     = 42
	gColW      = 272 // from one column to the next: the box and the gap edges run in
	gRowGap    = 12  // between two boxes of a column
	gLane      = 12  // the height a long edge takes where it crosses a column
	gPortStep  = 6   // between the ends of two edges on a box's side
	gPortInset = 6   // no edge ends closer than this to a box's corner
	gMargin    = 16
	gMaxLen    = 25 // characters of a task id shown in its box
	gMaxSub    = 32 // characters of the kind and trigger rule line
)

// nodeSubtitle is the second line of a task's box: its kind, "setup" for a
// setup, and "teardown" for a teardown (whose trigger rule is always
// all_done_setup_success) or else its trigger rule unless it is the default
// (all_success).
func nodeSubtitle(kind task.Kind, rule task.TriggerRule, setup, teardown bool) string {
	s := kindName(kind)
	if setup {
		s += " · setup"
	}
	switch {
	case teardown:
		s += " · teardown"
	case rule != "" && rule != task.AllSuccess:
		s += " · " + string(rule)
	}
	return s
}

// groupSubtitle is the second line of a collapsed group's box.
func groupSubtitle(n int) string {
	if n == 1 {
		return "group · 1 task"
	}
	return "group · " + strconv.Itoa(n) + " tasks"
}

// clip shortens s to at most n characters (runes), ending it with "…".
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// segment is one piece of an edge's path: a cubic Bézier curve in the gap
// between two columns (c1 and c2 its control points), or a straight line
// through a column (line true).
type segment struct {
	a, c1, c2, b point
	line         bool
}

// segments are the pieces of the edge's path, as drawn.
func (e edgeRoute) segments() []segment {
	out := make([]segment, 0, len(e.pts)-1)
	for k := 0; k+1 < len(e.pts); k++ {
		a, b := e.pts[k], e.pts[k+1]
		if k%2 == 1 { // through a dummy's column
			out = append(out, segment{a: a, b: b, line: true})
			continue
		}
		dx := (b.x - a.x) / 2
		out = append(out, segment{a: a, c1: point{a.x + dx, a.y}, c2: point{b.x - dx, b.y}, b: b})
	}
	return out
}

// at is the point of the segment at parameter t in [0, 1].
func (s segment) at(t float64) point {
	if s.line {
		return point{s.a.x + t*(s.b.x-s.a.x), s.a.y + t*(s.b.y-s.a.y)}
	}
	u := 1 - t
	w0, w1, w2, w3 := u*u*u, 3*u*u*t, 3*u*t*t, t*t*t
	return point{w0*s.a.x + w1*s.c1.x + w2*s.c2.x + w3*s.b.x, w0*s.a.y + w1*s.c1.y + w2*s.c2.y + w3*s.b.y}
}

// appendNum appends f with at most one decimal, as SVG coordinates are
// written: exact enough, short, and fast (no shortest-float search).
func appendNum(b []byte, f float64) []byte {
	if f < 0 {
		b = append(b, '-')
		f = -f
	}
	t := int64(f*10 + 0.5)
	b = strconv.AppendInt(b, t/10, 10)
	if d := t % 10; d != 0 {
		b = append(b, '.', byte('0'+d))
	}
	return b
}

func appendPt(b []byte, p point) []byte {
	b = appendNum(b, p.x)
	b = append(b, ',')
	return appendNum(b, p.y)
}

// appendAttr appends name="value" (escaped) with a leading space.
func appendAttr(b []byte, name, value string) []byte {
	b = append(b, ' ')
	b = append(b, name...)
	b = append(b, `="`...)
	b = appendEscaped(b, value)
	return append(b, '"')
}

// appendNumAttr appends name="f" with a leading space.
func appendNumAttr(b []byte, name string, f float64) []byte {
	b = append(b, ' ')
	b = append(b, name...)
	b = append(b, `="`...)
	b = appendNum(b, f)
	return append(b, '"')
}

// appendEscaped appends s escaped for XML text and attribute values.
func appendEscaped(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '<':
			b = append(b, "&lt;"...)
		case '>':
			b = append(b, "&gt;"...)
		case '&':
			b = append(b, "&amp;"...)
		case '"':
			b = append(b, "&#34;"...)
		case '\'':
			b = append(b, "&#39;"...)
		default:
			b = append(b, c)
		}
	}
	return b
}

// pathData is the SVG path of an edge.
func (e edgeRoute) pathData(b []byte) []byte {
	b = append(b, 'M')
	b = appendPt(b, e.pts[0])
	for _, s := range e.segments() {
		if s.line {
			b = append(b, " H"...)
			b = appendNum(b, s.b.x)
			continue
		}
		b = append(b, " C"...)
		b = appendPt(b, s.c1)
		b = append(b, ' ')
		b = appendPt(b, s.c2)
		b = append(b, ' ')
		b = appendPt(b, s.b)
	}
	return b
}

// renderGraph draws the tasks of DAG dagID as laid out by lay, left to right,
// one column per topological level, each task coloured by its state in states
// (white when it has none) and showing its kind and trigger rule, or that it
// is a setup or a teardown. With a run, a task links to its task instance in
// the UI. A collapsed group (see layout.collapse) is one box with its id and
// number of tasks, coloured by their summary state (groupState), which links
// to the graph with the group expanded. An edge from a setup to a teardown is
// dashed.
func renderGraph(dagID string, lay *layout, title, runID string, states map[string]task.State, instances map[string]int) []byte {
	b := make([]byte, 0, 600*(len(lay.ids)+1))
	b = fmt.Appendf(b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-labelledby="graph-title" font-family="system-ui, sans-serif" font-size="12">`,
		lay.width, lay.height, lay.width, lay.height)
	b = append(b, `<title id="graph-title">`...)
	b = appendEscaped(b, title)
	b = append(b, `</title><defs><marker id="arrow" viewBox="0 0 8 8" refX="8" refY="4" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L8,4 L0,8 z" fill="#57606a"/></marker></defs>`...)
	b = append(b, `<g class="edges" fill="none" stroke="#6e7781" stroke-width="1.2">`...)
	for _, e := range lay.edges {
		b = append(b, `<path d="`...)
		b = e.pathData(b)
		b = append(b, '"')
		if lay.setup[e.from] && lay.teardown[e.to] {
			b = append(b, ` stroke-dasharray="5 3"`...)
		}
		if e.arrows&arrowStart != 0 {
			b = append(b, ` marker-start="url(#arrow)"`...)
		}
		if e.arrows&arrowEnd != 0 || e.arrows == 0 {
			b = append(b, ` marker-end="url(#arrow)"`...)
		}
		b = append(b, `><title>`...)
		from, to, sep := lay.ids[e.from], lay.ids[e.to], " → "
		switch e.arrows {
		case arrowStart:
			from, to = to, from
		case arrowStart | arrowEnd:
			sep = " ↔ "
		}
		b = appendEscaped(b, from)
		b = append(b, sep...)
		b = appendEscaped(b, to)
		b = append(b, `</title></path>`...)
	}
	b = append(b, `</g><g class="nodes">`...)
	for _, i := range lay.order {
		id := lay.ids[i]
		members := lay.members[i]
		var st task.State
		var desc, sub string
		if members != nil {
			st = groupState(func(yield func(task.State) bool) {
				for _, m := range members {
					if !yield(states[m]) {
						return
					}
				}
			})
			if st == "" {
				st = task.StateNone
			}
			sub = groupSubtitle(len(members))
			desc = "group " + id + ", collapsed, " + strconv.Itoa(len(members)) + " task(s): " + string(st) + " (the first state of its tasks by priority); expand it"
		} else {
			var ok bool
			if st, ok = states[id]; !ok {
				st = task.StateNone
			}
			sub = nodeSubtitle(lay.kind[i], lay.rule[i], lay.setup[i], lay.teardown[i])
			desc = id + ": " + string(st) + "; kind " + kindName(lay.kind[i])
			if lay.mapped[i] {
				sub += " · mapped"
				if n, ok := instances[id]; ok {
					desc = id + " [" + strconv.Itoa(n) + "]: mapped, " + strconv.Itoa(n) + " instance(s), " + string(st) + " (their summary state); kind " + kindName(lay.kind[i])
				} else {
					desc = id + " [ ]: mapped; " + string(st) + "; kind " + kindName(lay.kind[i])
				}
			}
			if r := lay.rule[i]; r != "" && r != task.AllSuccess {
				desc += "; trigger rule " + string(r)
			}
			if lay.setup[i] {
				desc += "; setup"
			}
			if lay.teardown[i] {
				desc += "; teardown"
				if lay.failRun[i] {
					desc += " (its failure fails the run)"
				}
			}
		}
		col, ok := stateColor[st]
		if !ok {
			col = stateColor[task.StateNone]
		}
		switch {
		case members != nil:
			href := "#/dags/" + url.PathEscape(dagID) + "/graph?"
			if runID != "" {
				href += "run=" + url.QueryEscape(runID) + "&"
			}
			href += "expand=" + url.QueryEscape(id)
			b = append(b, `<a`...)
			b = appendAttr(b, "href", href)
			b = appendAttr(b, "class", "node group st-"+string(st))
			b = appendAttr(b, "data-group", id)
			b = appendAttr(b, "data-tasks", strconv.Itoa(len(members)))
			b = appendAttr(b, "data-state", string(st))
		case runID != "":
			href := "#/dags/" + url.PathEscape(dagID) + "/runs/" + url.PathEscape(runID) + "/tasks/" + url.PathEscape(id)
			if lay.mapped[i] {
				href += "/instances" // the drill-down into its instances
			}
			b = append(b, `<a`...)
			b = appendAttr(b, "href", href)
			b = appendAttr(b, "class", "node st-"+string(st))
		default:
			b = append(b, `<g class="node"`...)
		}
		if members == nil {
			b = appendAttr(b, "data-task", id)
			b = appendAttr(b, "data-kind", string(lay.kind[i]))
			b = appendAttr(b, "data-rule", string(lay.rule[i]))
			if lay.setup[i] {
				b = append(b, ` data-setup="true"`...)
			}
			if lay.teardown[i] {
				b = append(b, ` data-teardown="true"`...)
			}
			if lay.mapped[i] {
				b = appendAttr(b, "data-mapped", strconv.Itoa(instances[id]))
				if runID != "" {
					b = appendAttr(b, "data-state", string(st))
				}
			}
		}
		b = appendAttr(b, "aria-label", desc)
		b = append(b, `><title>`...)
		b = appendEscaped(b, desc)
		x, y := lay.x[i], lay.y[i]
		b = append(b, `</title><rect`...)
		b = appendNumAttr(b, "x", x)
		b = appendNumAttr(b, "y", y)
		b = appendNumAttr(b, "width", gNodeW)
		b = appendNumAttr(b, "height", gNodeH)
		b = append(b, ` rx="4"`...)
		b = appendAttr(b, "fill", col[0])
		b = append(b, ` stroke="#57606a"/>`...)
		if members != nil {
			// A group's box has a second border inside the first, as a stack.
			b = append(b, `<rect class="inner"`...)
			b = appendNumAttr(b, "x", x+3)
			b = appendNumAttr(b, "y", y+3)
			b = appendNumAttr(b, "width", gNodeW-6)
			b = appendNumAttr(b, "height", gNodeH-6)
			b = append(b, ` rx="3" fill="none"`...)
			b = appendAttr(b, "stroke", col[1])
			b = append(b, ` stroke-opacity="0.6"/>`...)
		}
		b = append(b, `<text`...)
		b = appendNumAttr(b, "x", x+8)
		b = appendNumAttr(b, "y", y+17)
		b = appendAttr(b, "fill", col[1])
		b = append(b, ` font-weight="600">`...)
		if lay.mapped[i] && members == nil {
			// A mapped task: its id and "[n]", its instances in the run
			// ("[ ]" without a run, as Airflow draws it).
			mark := " [ ]"
			if n, ok := instances[id]; ok {
				mark = " [" + strconv.Itoa(n) + "]"
			}
			b = appendEscaped(b, clip(id, gMaxLen-len(mark)))
			b = append(b, `<tspan class="map-count">`...)
			b = appendEscaped(b, mark)
			b = append(b, `</tspan>`...)
		} else {
			b = appendEscaped(b, clip(id, gMaxLen))
		}
		b = append(b, `</text><text class="sub"`...)
		b = appendNumAttr(b, "x", x+8)
		b = appendNumAttr(b, "y", y+33)
		b = appendAttr(b, "fill", col[1])
		b = append(b, ` font-size="11">`...)
		b = appendEscaped(b, clip(sub, gMaxSub))
		if members != nil || runID != "" {
			b = append(b, `</text></a>`...)
		} else {
			b = append(b, `</text></g>`...)
		}
	}
	b = append(b, `</g></svg>`...)
	return b
}

// kindName is a task's kind, "task" when the definition does not say.
func kindName(k task.Kind) string {
	if k == "" {
		return "task"
	}
	return string(k)
}
