package runner

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
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
	// Occupancy: the slots the tries in flight (queued or running) take; and
	// the sizes set at run time.
	used, sizes := map[string]int{}, map[string]int{}
	st, err := openRead(ctx, *f.db)
	if err != nil {
		return err
	}
	if st != nil {
		defer st.Close()
		if sizes, err = st.PoolSlots(ctx); err != nil {
			return err
		}
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
		slots := strconv.Itoa(r.poolSlots(p))
		if n, ok := sizes[p]; ok {
			slots = fmt.Sprintf("%d (set at run time; declared %d)", n, r.poolSlots(p))
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\n", p, slots, used[p], users[p])
	}
	return w.Flush()
}

func cmdPoolsSet(ctx context.Context, r *Runner, args []string) error {
	f := newFlags(r, "pools set")
	pos, err := f.parse(args, "<pool>", "<slots>")
	if err != nil {
		return err
	}
	name := pos[0]
	slots, err := strconv.Atoi(pos[1])
	if err != nil || slots < 0 {
		return usagef("pools set: slots %q: want a whole number, 0 or more", pos[1])
	}
	if _, ok := r.cfg.Pools[name]; !ok && name != scheduler.DefaultPool {
		return usagef("pools set: pool %q is not declared (declared: %s)", name, r.declaredPools())
	}
	// A size below a task's pool_slots would hold that task forever.
	for _, d := range r.dags {
		for _, t := range d.Tasks() {
			set := task.SettingsOf(t)
			if p := cmp.Or(set.Pool, scheduler.DefaultPool); p == name && set.PoolSlots > slots {
				return usagef("pools set: pool %q: %d slots is fewer than task %q of dag %q takes (%d)", name, slots, t.ID(), d.ID(), set.PoolSlots)
			}
		}
	}
	st, err := r.openWrite(ctx, *f.db)
	if err != nil {
		return err
	}
	defer st.Close()
	err = st.SetPoolSlots(ctx, name, slots)
	r.audit(ctx, st, "set_pool", "", "", "", fmt.Sprintf("%s=%d", name, slots), err)
	if err != nil {
		return err
	}
	fmt.Fprintf(r.cfg.Stdout, "Pool %s has %d slots (the binary declares %d); a running scheduler uses it at its next reload (within a second).\n",
		name, slots, r.poolSlots(name))
	return nil
}
