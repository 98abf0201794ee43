package pools

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/scheduler"
	"github.com/trellisdag/trellis/task"
)

// Pool is one pool: its size and what uses it.
type Pool struct {
	Name string
	// Declared is the size the binary declares (scheduler.DefaultPoolSlots for
	// the default pool unless declared).
	Declared int
	// Slots is the size in force: the one set at run time, else Declared.
	Slots int
	// SetAtRunTime is true when Slots was set at run time (pools set, the API).
	SetAtRunTime bool
	// InUse is the slots taken by tries in flight (queued or running).
	InUse int
	// Tasks is how many tasks of the binary's DAGs use the pool.
	Tasks int
}

// ErrUndeclared is matched (errors.Is) by the error of Check and Set for a
// pool the binary does not declare.
var ErrUndeclared = errors.New("pool is not declared")

// UndeclaredError is the error of Check and Set for a pool the binary does
// not declare; it names the pools that are.
type UndeclaredError struct {
	Pool     string
	Declared string // as Catalog.Names
}

func (e *UndeclaredError) Error() string {
	return fmt.Sprintf("pool %q is not declared (declared: %s)", e.Pool, e.Declared)
}

// Is makes errors.Is(err, ErrUndeclared) true.
func (e *UndeclaredError) Is(target error) bool { return target == ErrUndeclared }

// TooSmallError is Set's error for a size below what a task of the pool takes
// (its pool_slots): that task could never start.
type TooSmallError struct {
	Pool          string
	Slots         int
	DAGID, TaskID string
	Need          int
}

func (e *TooSmallError) Error() string {
	return fmt.Sprintf("pool %q: %d slots is fewer than task %q of dag %q takes (%d)", e.Pool, e.Slots, e.TaskID, e.DAGID, e.Need)
}

// Catalog is the pools a binary declares and the DAGs that use them.
type Catalog struct {
	// Declared maps a pool to its declared size (runner.Config.Pools).
	Declared map[string]int
	// DAGs are the binary's DAGs.
	DAGs []*dag.DAG
}

// Size is a declared pool's size.
func (c Catalog) Size(pool string) int {
	if n, ok := c.Declared[pool]; ok {
		return n
	}
	return scheduler.DefaultPoolSlots
}

// Names lists the declared pools with their sizes, for messages:
// "default_pool (128), warehouse (4)".
func (c Catalog) Names() string {
	names := []string{fmt.Sprintf("%s (%d)", scheduler.DefaultPool, c.Size(scheduler.DefaultPool))}
	for _, p := range slices.Sorted(maps.Keys(c.Declared)) {
		if p != scheduler.DefaultPool {
			names = append(names, fmt.Sprintf("%s (%d)", p, c.Declared[p]))
		}
	}
	return strings.Join(names, ", ")
}

// use is a task's pool and the slots it takes.
type use struct {
	pool  string
	slots int
}

func (c Catalog) uses() map[string]map[string]use {
	out := make(map[string]map[string]use, len(c.DAGs))
	for _, d := range c.DAGs {
		out[d.ID()] = map[string]use{}
		for _, t := range d.Tasks() {
			set := task.SettingsOf(t)
			out[d.ID()][t.ID()] = use{cmp.Or(set.Pool, scheduler.DefaultPool), max(1, set.PoolSlots)}
		}
	}
	return out
}

// List returns every declared pool, sorted by name, with its size in force
// and occupancy read from st (a nil st: no database yet, nothing set or in use).
func (c Catalog) List(ctx context.Context, st Store) ([]Pool, error) {
	byName := map[string]*Pool{scheduler.DefaultPool: {Name: scheduler.DefaultPool}}
	for p := range c.Declared {
		byName[p] = &Pool{Name: p}
	}
	uses := c.uses()
	for _, tasks := range uses {
		for _, u := range tasks {
			if p := byName[u.pool]; p != nil {
				p.Tasks++
			}
		}
	}
	for _, p := range byName {
		p.Declared = c.Size(p.Name)
		p.Slots = p.Declared
	}
	if st != nil {
		sizes, err := st.PoolSlots(ctx)
		if err != nil {
			return nil, err
		}
		for name, n := range sizes {
			if p := byName[name]; p != nil {
				p.Slots, p.SetAtRunTime = n, true
			}
		}
		runs, err := st.ActiveRuns(ctx)
		if err != nil {
			return nil, fmt.Errorf("pools: %w", err)
		}
		ids := make([]int64, len(runs))
		dagOf := make(map[int64]string, len(runs))
		for i, run := range runs {
			ids[i], dagOf[run.ID] = run.ID, run.DAGID
		}
		tis, err := st.TaskInstancesOfRuns(ctx, ids)
		if err != nil {
			return nil, fmt.Errorf("pools: %w", err)
		}
		for run, list := range tis {
			for _, ti := range list {
				if !ti.State.Active() {
					continue
				}
				if u, ok := uses[dagOf[run]][ti.TaskID]; ok && byName[u.pool] != nil {
					byName[u.pool].InUse += u.slots
				}
			}
		}
	}
	out := make([]Pool, 0, len(byName))
	for _, name := range slices.Sorted(maps.Keys(byName)) {
		out = append(out, *byName[name])
	}
	return out, nil
}

// Check says whether a pool may be given slots: it must be declared (the
// default pool always is), slots must be 0 or more, and no task of the pool
// may take more slots than that (it would never start).
func (c Catalog) Check(name string, slots int) error {
	if _, ok := c.Declared[name]; !ok && name != scheduler.DefaultPool {
		return &UndeclaredError{Pool: name, Declared: c.Names()}
	}
	if slots < 0 {
		return fmt.Errorf("pool %q: %d slots: want 0 or more", name, slots)
	}
	for _, d := range c.DAGs {
		for _, t := range d.Tasks() {
			set := task.SettingsOf(t)
			if cmp.Or(set.Pool, scheduler.DefaultPool) == name && set.PoolSlots > slots {
				return &TooSmallError{Pool: name, Slots: slots, DAGID: d.ID(), TaskID: t.ID(), Need: set.PoolSlots}
			}
		}
	}
	return nil
}

// Set checks a new size (see Check) and records it in st; a running
// scheduler uses it at its next reload.
func (c Catalog) Set(ctx context.Context, st Store, name string, slots int) error {
	if err := c.Check(name, slots); err != nil {
		return err
	}
	return st.SetPoolSlots(ctx, name, slots)
}
