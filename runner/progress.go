package runner

import (
	"fmt"
	"io"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/scheduler"
	"github.com/trellisdag/trellis/task"
)

// progress prints a line for every task that starts or ends, as it happens.
type progress struct {
	w     io.Writer
	width int
	start time.Time
}

func newProgress(w io.Writer, d *dag.DAG) *progress {
	width := 4
	for _, t := range d.Tasks() {
		n := len(t.ID())
		if task.SettingsOf(t).Mapped {
			n += len("[999]") // its instances' lines: "resize[3]"
		}
		width = max(width, n)
	}
	return &progress{w: w, width: width, start: time.Now()}
}

var stateMark = map[task.State]string{
	task.StateRunning:        "▶",
	task.StateSuccess:        "✓",
	task.StateFailed:         "✗",
	task.StateUpForRetry:     "↻",
	task.StateDeferred:       "⏸",
	task.StateSkipped:        "↷",
	task.StateUpstreamFailed: "✗",
}

func (p *progress) observe(e scheduler.Event) {
	elapsed := fmt.Sprintf("%7.3fs", time.Since(p.start).Seconds())
	if e.TaskID == "" {
		if e.RunState.Finished() {
			fmt.Fprintf(p.w, "%s  run %s %s\n", elapsed, e.RunID, e.RunState)
		}
		return
	}
	mark, ok := stateMark[e.State]
	if !ok {
		return // scheduled, queued: not worth a line
	}
	line := fmt.Sprintf("%s  %s %-*s  %s", elapsed, mark, p.width, e.TaskID, e.State)
	if e.State == task.StateRunning || e.Try > 1 {
		line += fmt.Sprintf(" (try %d)", e.Try)
	}
	if e.Duration > 0 {
		line += fmt.Sprintf(" in %s", round(e.Duration))
	}
	if e.Error != "" && e.State != task.StateSuccess {
		line += ": " + e.Error
	}
	fmt.Fprintln(p.w, line)
}

func round(d time.Duration) time.Duration {
	switch {
	case d > 10*time.Second:
		return d.Round(100 * time.Millisecond)
	case d > time.Second:
		return d.Round(10 * time.Millisecond)
	case d > time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d
}
