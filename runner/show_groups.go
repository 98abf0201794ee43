package runner

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/task"
)

// printGroups prints a DAG's task groups as a tree, each with its own tasks
// (dags show).
func printGroups(out io.Writer, snap dag.Snapshot) error {
	if len(snap.Groups) == 0 {
		return nil
	}
	members := map[string][]string{}
	for _, t := range snap.Tasks {
		if t.Group != "" {
			members[t.Group] = append(members[t.Group], t.ID)
		}
	}
	children := map[string][]string{}
	for _, g := range snap.Groups {
		children[g.Parent] = append(children[g.Parent], g.ID)
	}
	fmt.Fprintln(out)
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "GROUP\tTASKS")
	var walk func(parent string, depth int)
	walk = func(parent string, depth int) {
		for _, id := range children[parent] {
			tasks := strings.Join(members[id], ", ")
			if tasks == "" {
				tasks = "-"
			}
			fmt.Fprintf(w, "%s%s\t%s\n", strings.Repeat("  ", depth), id, tasks)
			walk(id, depth+1)
		}
	}
	walk("", 0)
	return w.Flush()
}

// printMapped prints what each mapped task of a DAG is mapped over (dags
// show), with its limits of instances in flight when d, the definition the
// snapshot was taken of, is known (nil for a stored older version).
func printMapped(out io.Writer, snap dag.Snapshot, d *dag.DAG, maxMapLength int) {
	for _, t := range snap.Tasks {
		m := t.Map
		if m == nil {
			continue
		}
		var over string
		switch {
		case m.Over != "":
			over = fmt.Sprintf("the result of %s", m.Over)
		case m.Param != "":
			over = fmt.Sprintf("param %s", m.Param)
		default:
			over = fmt.Sprintf("a literal list of %d element(s)", m.Items)
		}
		fmt.Fprintf(out, "\n%s is mapped over %s: one instance (%s[0], %s[1], ...) per element, at most %d (max map length)",
			t.ID, over, t.ID, t.ID, maxMapLength)
		if d != nil {
			if cur, ok := d.Task(t.ID); ok {
				set := task.SettingsOf(cur)
				if set.MaxActivePerRun > 0 {
					fmt.Fprintf(out, "; %d in flight per run", set.MaxActivePerRun)
				}
				if set.MaxActivePerDAG > 0 {
					fmt.Fprintf(out, "; %d in flight across the DAG's runs", set.MaxActivePerDAG)
				}
			}
		}
		fmt.Fprintln(out)
	}
}
