package runner

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/trellisdag/trellis/dag"
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
