package runner

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"text/tabwriter"

	"github.com/trellisdag/trellis/scheduler"
	"github.com/trellisdag/trellis/task"
)

func cmdPoolsList(ctx context.Context, r *Runner, args []string) error {
	f := newFlags(r, "pools list")
	if _, err := f.parse(args); err != nil {
		return err
	}
	// The pools, and which tasks use each.
	users := map[string]int{scheduler.DefaultPool: 0}
	for p := range r.cfg.Pools {
		users[p] = 0
	}
	type use struct {
		pool  string
		slots int
	}
	poolOf := map[string]map[string]use{} // dag -> task -> its pool and slots
	for _, d := range r.dags {
		poolOf[d.ID()] = map[string]use{}
		for _, t := range d.Tasks() {
			set := task.SettingsOf(t)
			p := set.Pool
			if p == "" {
				p = scheduler.DefaultPool
			}
			poolOf[d.ID()][t.ID()] = use{p, set.PoolSlots}
			users[p]++
		}
	}
	// Occupancy: the slots the tries in flight (queued or running) take.
	used := map[string]int{}
	st, err := openRead(ctx, *f.db)
	if err != nil {
		return err
	}
	if st != nil {
		defer st.Close()
		runs, err := st.ActiveRuns(ctx)
		if err != nil {
			return err
		}
		ids := make([]int64, len(runs))
		dagOf := map[int64]string{}
		for i, run := range runs {
			ids[i], dagOf[run.ID] = run.ID, run.DAGID
		}
		tis, err := st.TaskInstancesOfRuns(ctx, ids)
		if err != nil {
			return err
		}
		for run, list := range tis {
			for _, ti := range list {
				if ti.State.Active() {
					if u, ok := poolOf[dagOf[run]][ti.TaskID]; ok {
						used[u.pool] += u.slots
					}
				}
			}
		}
	}
	w := tabwriter.NewWriter(r.cfg.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "POOL\tSLOTS\tIN USE\tTASKS")
	for _, p := range slices.Sorted(maps.Keys(users)) {
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\n", p, r.poolSlots(p), used[p], users[p])
	}
	return w.Flush()
}
