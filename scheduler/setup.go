package scheduler

import "github.com/trellisdag/trellis/task"

// compileSetups computes what setups and teardowns change in scheduling, after
// Airflow 2.7:
//
//   - leaf: the effective leaves whose states decide the run's state
//     (DagRun._tis_for_dagrun_state): a task is one when it is not an ignorable
//     teardown (a teardown without FailRunOnTeardownFailure) and every task
//     directly downstream of it is one. When there is none (a DAG of
//     teardowns only), the tasks without downstream tasks are.
//   - upSetups: each task's direct upstream setups, counted by the teardowns'
//     rule, all_done_setup_success.
//   - indirect: for each task but teardowns, its relevant setups that are not
//     direct upstream tasks (get_upstreams_only_setups): setups upstream of it
//     that have no teardown, or a teardown downstream of it. The task runs only
//     once they all succeeded (_evaluate_setup_constraint); watchers lists,
//     for each setup, the tasks that wait on it so.
func (p *plan) compileSetups() {
	n := len(p.tasks)
	ignorable := func(j int) bool { return p.settings[j].Teardown && !p.settings[j].FailRun }
	anyLeaf := false
	for i := range n {
		p.leaf[i] = !ignorable(i)
		for _, d := range p.down[i] {
			if !ignorable(d) {
				p.leaf[i] = false
			}
		}
		anyLeaf = anyLeaf || p.leaf[i]
	}
	if !anyLeaf {
		for i := range n {
			p.leaf[i] = len(p.down[i]) == 0
		}
	}
	var setups []int
	for i := range n {
		if p.settings[i].Setup {
			setups = append(setups, i)
		}
	}
	if len(setups) == 0 {
		return
	}
	p.upSetups = make([][]int, n)
	p.indirect = make([][]int, n)
	p.watchers = make([][]int, n)
	for i := range n {
		for _, u := range p.up[i] {
			if p.settings[u].Setup {
				p.upSetups[i] = append(p.upSetups[i], u)
			}
		}
	}
	reach := func(from int, edges [][]int) []bool {
		seen := make([]bool, n)
		stack := []int{from}
		for len(stack) > 0 {
			j := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			for _, k := range edges[j] {
				if !seen[k] {
					seen[k] = true
					stack = append(stack, k)
				}
			}
		}
		return seen
	}
	for _, s := range setups {
		below := reach(s, p.down)
		// The tasks upstream of one of s's teardowns are in its scope; a
		// setup without teardown scopes everything downstream of it.
		var scope []bool
		for _, d := range p.down[s] {
			if !p.settings[d].Teardown {
				continue
			}
			if scope == nil {
				scope = make([]bool, n)
			}
			for k, ok := range reach(d, p.up) {
				scope[k] = scope[k] || ok
			}
		}
		for t, ok := range below {
			if !ok || p.settings[t].Teardown || (scope != nil && !scope[t]) || direct(p.up[t], s) {
				continue
			}
			p.indirect[t] = append(p.indirect[t], s)
			p.watchers[s] = append(p.watchers[s], t)
		}
	}
}

func direct(up []int, s int) bool {
	for _, u := range up {
		if u == s {
			return true
		}
	}
	return false
}

// decide is what task i's trigger rule says given its upstream tasks' states:
// with its direct upstream setups counted for all_done_setup_success, and its
// indirect setups for the setup constraint (task.TriggerRule.EvaluateWithSetups).
func (p *plan) decide(rs *runState, i int) task.Decision {
	c := rs.tis[i].counts
	if p.upSetups == nil {
		return p.settings[i].TriggerRule.Evaluate(c)
	}
	for _, j := range p.upSetups[i] {
		c.Setups++
		switch rs.tis[j].State {
		case task.StateSuccess:
			c.SetupSuccess++
		case task.StateSkipped:
			c.SetupSkipped++
		}
	}
	var ind task.UpstreamCounts
	for _, j := range p.indirect[i] {
		ind.Total++
		ind.Add(rs.tis[j].State)
	}
	return p.settings[i].TriggerRule.EvaluateWithSetups(c, ind)
}
