package web

import (
	"bytes"
	"fmt"
	"html"
	"net/url"

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

// Graph geometry, in SVG user units (pixels at 100%).
const (
	gNodeW  = 184
	gNodeH  = 28
	gColW   = 240
	gRowH   = 38
	gMargin = 16
	gMaxLen = 26 // characters of a task id shown in its box
)

// renderGraph draws the tasks of DAG dagID as laid out by lay, left to right,
// one column per topological level, each task coloured by its state in states
// (white when it has none). With a run, a task links to its task instance in
// the UI.
func renderGraph(dagID string, lay *layout, title, runID string, states map[string]task.State) []byte {
	rows := 0
	for _, idx := range lay.levels {
		rows = max(rows, len(idx))
	}
	width := 2*gMargin + max(0, len(lay.levels)-1)*gColW + gNodeW
	height := 2*gMargin + max(1, rows)*gRowH - (gRowH - gNodeH)
	x := make([]int, len(lay.ids))
	y := make([]int, len(lay.ids))
	for lv, idx := range lay.levels {
		off := (rows - len(idx)) * gRowH / 2
		for p, i := range idx {
			x[i] = gMargin + lv*gColW
			y[i] = gMargin + off + p*gRowH
		}
	}
	var b bytes.Buffer
	b.Grow(400 * (len(lay.ids) + 1))
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-labelledby="graph-title" font-family="system-ui, sans-serif" font-size="12">`,
		width, height, width, height)
	fmt.Fprintf(&b, `<title id="graph-title">%s</title>`, html.EscapeString(title))
	b.WriteString(`<defs><marker id="arrow" viewBox="0 0 8 8" refX="8" refY="4" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L8,4 L0,8 z" fill="#57606a"/></marker></defs>`)
	b.WriteString(`<g class="edges" fill="none" stroke="#8c959f" stroke-width="1.2">`)
	for i := range lay.ids {
		for _, u := range lay.up[i] {
			x1, y1 := x[u]+gNodeW, y[u]+gNodeH/2
			x2, y2 := x[i], y[i]+gNodeH/2
			dx := (x2 - x1) / 2
			fmt.Fprintf(&b, `<path d="M%d,%d C%d,%d %d,%d %d,%d" marker-end="url(#arrow)"/>`, x1, y1, x1+dx, y1, x2-dx, y2, x2, y2)
		}
	}
	b.WriteString(`</g><g class="nodes">`)
	for _, i := range lay.order {
		id := lay.ids[i]
		st, ok := states[id]
		if !ok {
			st = task.StateNone
		}
		col, ok := stateColor[st]
		if !ok {
			col = stateColor[task.StateNone]
		}
		label := id
		if len(label) > gMaxLen {
			label = label[:gMaxLen-1] + "…"
		}
		desc := fmt.Sprintf("%s: %s", id, st)
		if runID != "" {
			href := "#/dags/" + url.PathEscape(dagID) + "/runs/" + url.PathEscape(runID) + "/tasks/" + url.PathEscape(id)
			fmt.Fprintf(&b, `<a href="%s" class="node st-%s" aria-label="%s">`, html.EscapeString(href), st, html.EscapeString(desc))
		} else {
			fmt.Fprintf(&b, `<g class="node" aria-label="%s">`, html.EscapeString(desc))
		}
		fmt.Fprintf(&b, `<title>%s</title><rect x="%d" y="%d" width="%d" height="%d" rx="4" fill="%s" stroke="#57606a"/>`,
			html.EscapeString(desc), x[i], y[i], gNodeW, gNodeH, col[0])
		fmt.Fprintf(&b, `<text x="%d" y="%d" fill="%s">%s</text>`, x[i]+8, y[i]+gNodeH/2+4, col[1], html.EscapeString(label))
		if runID != "" {
			b.WriteString(`</a>`)
		} else {
			b.WriteString(`</g>`)
		}
	}
	b.WriteString(`</g></svg>`)
	return b.Bytes()
}
