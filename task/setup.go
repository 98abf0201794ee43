package task

import "fmt"

// AsSetup marks the task as a setup (Airflow's as_setup()): it creates what the
// work downstream of it needs (a cluster, a table, a bucket), and a teardown
// (AsTeardown) removes it. The scheduler then treats it as Airflow 2.7 does:
//
//   - A task downstream of a setup, on a path to that setup's teardown (or any
//     task downstream of a setup that has no teardown), runs only when the setup
//     succeeded, whatever its own trigger rule says about its direct upstream
//     tasks: it is upstream_failed when the setup failed and skipped when it was
//     skipped (Airflow's setup constraint).
//   - Clearing a task of the setup's scope also clears the setup and its
//     teardowns (dag.DAG.ClearScope), so the work runs again with a fresh
//     resource, cleaned up after.
//
// A setup's direct downstream tasks must use the all_success trigger rule
// unless they are teardowns (Validate reports the others), as in Airflow.
func AsSetup() Option { return func(d *Def) { d.setup = true } }

// AsTeardown marks the task as a teardown of setups (Airflow's
// as_teardown(setups=...)): each of setups becomes a setup (AsSetup) and a
// direct upstream of this task. Put the work between them (setup → work →
// teardown); the teardown then:
//
//   - runs when every upstream task is done, whatever happened to the work,
//     provided at least one of its setups succeeded: its trigger rule is
//     AllDoneSetupSuccess (Airflow's all_done_setup_success) and cannot be
//     changed. It is skipped when all its setups were skipped, and
//     upstream_failed when none succeeded (nothing to clean up);
//   - does not decide the run's state: a run is failed when its work failed,
//     although the teardown succeeded, and succeeds when the work succeeded
//     although the teardown failed, unless FailRunOnTeardownFailure is given.
//     A task downstream of a teardown still counts;
//   - is not skipped by a short circuit upstream of it, which skips the work.
//
// A teardown without setups is a cleanup task run once everything upstream of
// it is done (all_done), ignored for the run's state.
func AsTeardown(setups ...Task) Option {
	return func(d *Def) {
		d.teardown = true
		for _, s := range setups {
			if s == nil {
				d.fail("AsTeardown: nil setup task")
				continue
			}
			d.pendingSetups = append(d.pendingSetups, s)
		}
	}
}

// FailRunOnTeardownFailure makes a teardown's failure fail the run (Airflow's
// on_failure_fail_dagrun=True); by default a teardown's outcome does not decide
// the run's state. Only a teardown (AsTeardown) may set it.
//
// As in Airflow (DagRun._tis_for_dagrun_state), the teardown then counts as a
// leaf task in place of the work before it: when that work fails and the
// teardown succeeds, the run succeeds. Give the work a path to another leaf,
// or leave this option out, for the work's failure to fail the run.
func FailRunOnTeardownFailure() Option { return func(d *Def) { d.failRun = true } }

// SetupsOf returns the setups of a teardown: its direct upstream tasks that are
// setups (nil for a task that is not a teardown).
func SetupsOf(t Task) []Task {
	d := t.def()
	if !d.teardown {
		return nil
	}
	d.bind()
	var out []Task
	for _, u := range d.up {
		if u.setup && u.self != nil {
			out = append(out, u.self)
		}
	}
	return out
}

// setFlags records which settings an option gave a task, so that a group's
// defaults fill only the others. (The retry and timeout policy has its own
// flags in Def.policy.)
type setFlags uint8

const (
	setTrigger setFlags = 1 << iota
	setPriority
	setExecutor
	setDependsOnPast
	setWaitForDownstream
)

// bind links the setups given to AsTeardown. It runs once d has its final
// address (options run on a Def that is then copied into its task): when the
// task is added to a DAG or a group, or linked.
func (d *Def) bind() {
	if d.mapSrc.from != nil && !d.mapLinked {
		d.mapLinked = true
		link(d.mapSrc.from, d)
	}
	if len(d.pendingSetups) == 0 {
		return // nothing to write: a built DAG stays read-only
	}
	ps := d.pendingSetups
	d.pendingSetups = nil
	for _, s := range ps {
		sd := s.def()
		sd.setup = true
		link(sd, d)
	}
}

// setupProblems reports misuses of setups and teardowns.
func (d *Def) setupProblems() []error {
	var errs []error
	if d.setup && d.teardown {
		errs = append(errs, fmt.Errorf("the task is both a setup and a teardown (AsSetup, or a setup given to another task's AsTeardown, and AsTeardown)"))
	}
	if d.failRun && !d.teardown {
		errs = append(errs, fmt.Errorf("FailRunOnTeardownFailure on a task that is not a teardown (add AsTeardown)"))
	}
	if d.teardown && d.set&setTrigger != 0 && d.trigger != AllDoneSetupSuccess {
		errs = append(errs, fmt.Errorf("trigger rule %s on a teardown: a teardown's rule is %s (it runs once its upstream tasks are done and one of its setups succeeded), as in Airflow; remove task.Trigger",
			d.trigger, AllDoneSetupSuccess))
	}
	if d.setup {
		for _, x := range d.down {
			if !x.teardown && x.trigger != AllSuccess {
				errs = append(errs, fmt.Errorf("setup's downstream task %q has trigger rule %s: the direct downstream tasks of a setup must use %s unless they are teardowns (Airflow's rule: the work must not run without its setup)",
					x.id, x.trigger, AllSuccess))
			}
		}
	}
	return errs
}

// EvaluateWithSetups is Evaluate for a task in the scope of setups that are not
// its direct upstream tasks (indirect counts their states; Total is their
// number), after Airflow's TriggerRuleDep (_evaluate_setup_constraint before
// _evaluate_direct_relatives). A task with no upstream, or with the Always rule,
// runs. Otherwise, when an indirect setup failed (or is upstream_failed) the task
// is upstream_failed, and when one was skipped it is skipped, without waiting
// for the others; else the rule decides from direct, but the task runs only
// once every indirect setup succeeded. Teardowns have no indirect setups (pass
// an empty indirect).
func (r TriggerRule) EvaluateWithSetups(direct, indirect UpstreamCounts) Decision {
	if direct.Total == 0 || r == Always {
		return DecideRun
	}
	if indirect.Total > 0 {
		switch {
		case indirect.Failed+indirect.UpstreamFailed > 0:
			return DecideUpstreamFailed
		case indirect.Skipped > 0:
			return DecideSkip
		}
	}
	dec := r.Evaluate(direct)
	if dec == DecideRun && indirect.Success < indirect.Total {
		return DecideWait
	}
	return dec
}
