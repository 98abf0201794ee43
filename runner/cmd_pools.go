package runner

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"text/tabwriter"

	"github.com/trellisdag/trellis/internal/pools"
)

// pools is the binary's pool catalog (runner.Config.Pools and the DAGs).
func (r *Runner) pools() pools.Catalog { return pools.Catalog{Declared: r.cfg.Pools, DAGs: r.dags} }

func cmdPoolsList(ctx context.Context, r *Runner, args []string) error {
	f := newFlags(r, "pools list")
	if _, err := f.parse(args); err != nil {
		return err
	}
	st, err := openRead(ctx, *f.db)
	if err != nil {
		return err
	}
	if st != nil {
		defer st.Close()
	}
	var ps pools.Store // nil without a database: a nil *store.Store in it would not be
	if st != nil {
		ps = st
	}
	list, err := r.pools().List(ctx, ps)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(r.cfg.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "POOL\tSLOTS\tIN USE\tTASKS")
	for _, p := range list {
		slots := strconv.Itoa(p.Slots)
		if p.SetAtRunTime {
			slots = fmt.Sprintf("%d (set at run time; declared %d)", p.Slots, p.Declared)
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\n", p.Name, slots, p.InUse, p.Tasks)
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
	cat := r.pools()
	if err := cat.Check(name, slots); err != nil {
		return usagef("pools set: %v", err)
	}
	st, err := r.openWrite(ctx, *f.db)
	if err != nil {
		return err
	}
	defer st.Close()
	err = cat.Set(ctx, st, name, slots)
	r.audit(ctx, st, "set_pool", "", "", "", fmt.Sprintf("%s=%d", name, slots), err)
	var small *pools.TooSmallError
	if errors.Is(err, pools.ErrUndeclared) || errors.As(err, &small) {
		return usagef("pools set: %v", err)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(r.cfg.Stdout, "Pool %s has %d slots (the binary declares %d); a running scheduler uses it at its next reload (within a second).\n",
		name, slots, cat.Size(name))
	return nil
}
