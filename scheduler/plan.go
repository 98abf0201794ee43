package scheduler

import (
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/storage"
	"github.com/trellisdag/trellis/task"
)

// DefaultPool is the pool of tasks that name none.
const DefaultPool = "default_pool"

// plan is a DAG compiled for scheduling: tasks by index, edges as index lists.
type plan struct {
	seedList []storage.TaskSeed // see seeds
	dag      *dag.DAG
	tasks    []task.Task
	index    map[string]int
	up, down [][]int
	weight   []int // effective priority: own weight plus all downstream weights
	pool     []string
	policy   []task.Policy
	settings []task.Settings
	// leaf marks the tasks whose states decide the run's (Airflow's effective
	// leaves: teardowns are ignored unless they fail the run); see setup.go
	// with upSetups, indirect and watchers.
	leaf []bool
	// upSetups are each task's direct upstream setups; indirect its relevant
	// setups that are not direct upstream tasks (the setup constraint), and
	// watchers the reverse of indirect.
	upSetups, indirect, watchers [][]int
	// maps holds each mapped task's list (nil for a task that is not mapped);
	// feedsMap marks the tasks whose result a task is mapped over.
	maps     []*task.Mapping
	feedsMap []bool
	// activeOf counts the tries in flight by task, over all runs
	// (MaxActivePerDAG); parked holds the ready slots over that limit.
	activeOf []int
	parked   map[int][]readyItem

	cron   *cron // nil for DAGs without a schedule, or when Config.Cron is off
	paused bool  // a paused DAG creates no runs and starts no tasks
	// version is the definition's version (dag.DAG.Version): new runs record
	// it, and active runs of another version are reconciled to it.
	version string

	finished    int // task instances of this DAG that finished, ever (depends_on_past rechecks)
	durable     int // finished, as of the last commit
	activeTasks int // tries of this DAG in flight, over all runs
	activeRuns  int // runs of this DAG in state running
	held        int // runs of this DAG the scheduler holds (queued or running)
	// lastOK caches the DAG's latest successful run (prev_data_interval_start_success).
	lastOK struct {
		loaded, found  bool
		logical, start time.Time
	}
}

func compile(d *dag.DAG) *plan {
	ts := d.Tasks()
	p := &plan{dag: d, version: d.Version(), tasks: ts, index: make(map[string]int, len(ts)),
		up: make([][]int, len(ts)), down: make([][]int, len(ts)), weight: make([]int, len(ts)),
		pool: make([]string, len(ts)), policy: make([]task.Policy, len(ts)),
		settings: make([]task.Settings, len(ts)), leaf: make([]bool, len(ts)),
		maps: make([]*task.Mapping, len(ts)), feedsMap: make([]bool, len(ts)), activeOf: make([]int, len(ts))}
	for i, t := range ts {
		p.index[t.ID()] = i
	}
	defaults := d.Defaults()
	for i, t := range ts {
		for _, u := range task.Upstream(t) {
			p.up[i] = append(p.up[i], p.index[u.ID()])
		}
		for _, x := range task.Downstream(t) {
			p.down[i] = append(p.down[i], p.index[x.ID()])
		}
		p.settings[i] = task.SettingsOf(t)
		p.policy[i] = task.PolicyOf(t, defaults)
		p.pool[i] = p.settings[i].Pool
		if p.pool[i] == "" {
			p.pool[i] = DefaultPool
		}
		if m, ok := task.MappingOf(t); ok {
			p.maps[i] = &m
		}
	}
	for _, m := range p.maps {
		if m != nil && m.Over != "" {
			p.feedsMap[p.index[m.Over]] = true
		}
	}
	p.compileSetups()
	// Effective weights, by each task's weight rule (Airflow's): its own weight,
	// plus that of every task downstream of it (the default: long paths start
	// first) or upstream of it (runs further along finish first).
	for i := range ts {
		seen := make(map[int]bool)
		w := p.settings[i].Priority
		edges := p.down
		switch p.settings[i].WeightRule {
		case task.WeightAbsolute:
			edges = nil
		case task.WeightUpstream:
			edges = p.up
		}
		var walk func(int)
		walk = func(j int) {
			for _, k := range edges[j] {
				if !seen[k] {
					seen[k] = true
					w += p.settings[k].Priority
					walk(k)
				}
			}
		}
		if edges != nil && len(ts) <= 2000 {
			walk(i)
		}
		p.weight[i] = w
	}
	return p
}
