package task_test

import (
	"fmt"
	"testing"

	"github.com/trellisdag/trellis/task"
)

// u builds upstream counts: total, then success, failed, upstream_failed, skipped.
func u(total, success, failed, upFailed, skipped int) task.UpstreamCounts {
	return task.UpstreamCounts{Total: total, Success: success, Failed: failed, UpstreamFailed: upFailed, Skipped: skipped}
}

// setups adds to c that n of its upstream tasks are setups, of which success
// succeeded and skipped were skipped.
func setups(c task.UpstreamCounts, n, success, skipped int) task.UpstreamCounts {
	c.Setups, c.SetupSuccess, c.SetupSkipped = n, success, skipped
	return c
}

const (
	wait            = task.DecideWait
	run             = task.DecideRun
	skip            = task.DecideSkip
	upFail          = task.DecideUpstreamFailed
	numTriggerRules = 12
)

// TestTriggerRuleCases spells out, rule by rule, what Airflow 2.10's TriggerRuleDep
// decides (airflow/ti_deps/deps/trigger_rule_dep.py, _evaluate_direct_relatives with
// flag_upstream_failed): every rule has cases for wait, run and, where the rule can
// reach them, skip and upstream_failed.
func TestTriggerRuleCases(t *testing.T) {
	t.Parallel()
	cases := []struct {
		rule task.TriggerRule
		name string
		in   task.UpstreamCounts
		want task.Decision
	}{
		// A task with no upstream runs whatever its rule (checked for all rules below too).
		{task.AllSuccess, "no upstream", u(0, 0, 0, 0, 0), run},
		{task.OneSuccess, "no upstream", u(0, 0, 0, 0, 0), run},
		{task.AllFailed, "no upstream", u(0, 0, 0, 0, 0), run},

		{task.AllSuccess, "nothing done", u(3, 0, 0, 0, 0), wait},
		{task.AllSuccess, "some succeeded", u(3, 2, 0, 0, 0), wait},
		{task.AllSuccess, "all succeeded", u(3, 3, 0, 0, 0), run},
		{task.AllSuccess, "one failed, rest not done", u(3, 0, 1, 0, 0), upFail},
		{task.AllSuccess, "one upstream_failed, rest not done", u(3, 1, 0, 1, 0), upFail},
		{task.AllSuccess, "one skipped, rest not done", u(3, 0, 0, 0, 1), skip},
		{task.AllSuccess, "failed wins over skipped", u(3, 0, 1, 0, 1), upFail},
		{"", "empty rule is all_success", u(2, 0, 1, 0, 0), upFail},

		{task.AllFailed, "nothing done", u(2, 0, 0, 0, 0), wait},
		{task.AllFailed, "one failed, one pending", u(2, 0, 1, 0, 0), wait},
		{task.AllFailed, "all failed", u(2, 0, 2, 0, 0), run},
		{task.AllFailed, "failed and upstream_failed", u(2, 0, 1, 1, 0), run},
		{task.AllFailed, "one succeeded, rest pending", u(3, 1, 0, 0, 0), skip},
		{task.AllFailed, "one skipped", u(3, 0, 1, 0, 1), skip},

		{task.AllDone, "nothing done", u(2, 0, 0, 0, 0), wait},
		{task.AllDone, "one pending", u(4, 1, 1, 1, 0), wait},
		{task.AllDone, "all done, mixed", u(4, 1, 1, 1, 1), run},
		{task.AllDone, "all skipped", u(2, 0, 0, 0, 2), run},
		{task.AllDone, "all failed", u(2, 0, 2, 0, 0), run},

		{task.AllSkipped, "nothing done", u(2, 0, 0, 0, 0), wait},
		{task.AllSkipped, "one skipped, one pending", u(2, 0, 0, 0, 1), wait},
		{task.AllSkipped, "all skipped", u(2, 0, 0, 0, 2), run},
		{task.AllSkipped, "one succeeded", u(3, 1, 0, 0, 0), skip},
		{task.AllSkipped, "one failed", u(3, 0, 1, 0, 0), skip},
		{task.AllSkipped, "one upstream_failed", u(3, 0, 0, 1, 0), skip},

		{task.OneSuccess, "nothing done", u(3, 0, 0, 0, 0), wait},
		{task.OneSuccess, "one succeeded, rest pending: runs at once", u(3, 1, 0, 0, 0), run},
		{task.OneSuccess, "one succeeded, others failed", u(3, 1, 2, 0, 0), run},
		{task.OneSuccess, "failures but not done", u(3, 0, 2, 0, 0), wait},
		{task.OneSuccess, "all done, none succeeded", u(3, 0, 2, 0, 1), upFail},
		{task.OneSuccess, "all done, all upstream_failed", u(2, 0, 0, 2, 0), upFail},
		{task.OneSuccess, "all skipped", u(3, 0, 0, 0, 3), skip},

		{task.OneFailed, "nothing done", u(3, 0, 0, 0, 0), wait},
		{task.OneFailed, "one failed, rest pending: runs at once", u(3, 0, 1, 0, 0), run},
		{task.OneFailed, "one upstream_failed: runs", u(3, 0, 0, 1, 0), run},
		{task.OneFailed, "successes, not done", u(3, 2, 0, 0, 0), wait},
		{task.OneFailed, "all done, none failed", u(3, 2, 0, 0, 1), skip},

		{task.OneDone, "nothing done", u(3, 0, 0, 0, 0), wait},
		{task.OneDone, "one succeeded: runs at once", u(3, 1, 0, 0, 0), run},
		{task.OneDone, "one failed: runs at once", u(3, 0, 1, 0, 0), run},
		{task.OneDone, "upstream_failed does not count", u(3, 0, 0, 1, 0), wait},
		{task.OneDone, "skipped does not count", u(3, 0, 0, 0, 2), wait},
		{task.OneDone, "all done, only skipped and upstream_failed", u(3, 0, 0, 1, 2), skip},

		{task.NoneFailed, "nothing done", u(2, 0, 0, 0, 0), wait},
		{task.NoneFailed, "success and pending", u(2, 1, 0, 0, 0), wait},
		{task.NoneFailed, "success and skipped", u(2, 1, 0, 0, 1), run},
		{task.NoneFailed, "all skipped: runs", u(2, 0, 0, 0, 2), run},
		{task.NoneFailed, "one failed, rest pending", u(3, 0, 1, 0, 0), upFail},
		{task.NoneFailed, "one upstream_failed", u(3, 1, 0, 1, 0), upFail},

		{task.NoneFailedMinOneSuccess, "nothing done", u(2, 0, 0, 0, 0), wait},
		{task.NoneFailedMinOneSuccess, "skipped and pending", u(2, 0, 0, 0, 1), wait},
		{task.NoneFailedMinOneSuccess, "success and skipped", u(2, 1, 0, 0, 1), run},
		{task.NoneFailedMinOneSuccess, "all succeeded", u(2, 2, 0, 0, 0), run},
		{task.NoneFailedMinOneSuccess, "all skipped: skip", u(3, 0, 0, 0, 3), skip},
		{task.NoneFailedMinOneSuccess, "one failed, rest pending", u(3, 0, 1, 0, 0), upFail},
		{task.NoneFailedMinOneSuccess, "one upstream_failed", u(3, 0, 0, 1, 2), upFail},

		{task.NoneSkipped, "nothing done", u(2, 0, 0, 0, 0), wait},
		{task.NoneSkipped, "failed and pending", u(2, 0, 1, 0, 0), wait},
		{task.NoneSkipped, "all done, failures, no skip: runs", u(3, 1, 1, 1, 0), run},
		{task.NoneSkipped, "one skipped, rest pending", u(3, 0, 0, 0, 1), skip},

		{task.Always, "nothing done: runs at once", u(3, 0, 0, 0, 0), run},
		{task.Always, "all failed", u(2, 0, 2, 0, 0), run},
		{task.Always, "all skipped", u(2, 0, 0, 0, 2), run},

		// A teardown's rule (setup -> work -> teardown, setup -> teardown).
		{task.AllDoneSetupSuccess, "setup succeeded, work running", setups(u(2, 1, 0, 0, 0), 1, 1, 0), wait},
		{task.AllDoneSetupSuccess, "setup succeeded, work failed: runs", setups(u(2, 1, 1, 0, 0), 1, 1, 0), run},
		{task.AllDoneSetupSuccess, "setup succeeded, work skipped: runs", setups(u(2, 1, 0, 0, 1), 1, 1, 0), run},
		{task.AllDoneSetupSuccess, "setup failed, work upstream_failed", setups(u(2, 0, 1, 1, 0), 1, 0, 0), upFail},
		{task.AllDoneSetupSuccess, "setup failed, work still pending", setups(u(2, 0, 1, 0, 0), 1, 0, 0), wait},
		{task.AllDoneSetupSuccess, "setup skipped", setups(u(2, 0, 0, 0, 2), 1, 0, 1), skip},
		{task.AllDoneSetupSuccess, "one of two setups succeeded", setups(u(3, 1, 1, 1, 0), 2, 1, 0), run},
		{task.AllDoneSetupSuccess, "one setup skipped, the other failed", setups(u(3, 0, 1, 1, 1), 2, 0, 1), upFail},
		{task.AllDoneSetupSuccess, "no setups: all_done", u(2, 0, 2, 0, 0), run},
	}
	covered := map[task.TriggerRule]map[task.Decision]bool{}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s/%s", c.rule, c.name), func(t *testing.T) {
			if got := c.rule.Evaluate(c.in); got != c.want {
				t.Errorf("%q.Evaluate(%+v) = %s, want %s", c.rule, c.in, got, c.want)
			}
		})
		if covered[c.rule] == nil {
			covered[c.rule] = map[task.Decision]bool{}
		}
		covered[c.rule][c.want] = true
	}
	// The table must exercise every rule, and every decision a rule can reach.
	for _, r := range task.TriggerRules {
		for _, d := range []task.Decision{wait, run, skip, upFail} {
			if reachable(r, d) && !covered[r][d] {
				t.Errorf("no case for %s => %s", r, d)
			}
		}
	}
}

// reachable says which decisions a rule can reach in Airflow.
func reachable(r task.TriggerRule, d task.Decision) bool {
	switch d {
	case wait:
		return r != task.Always
	case run:
		return true
	case skip:
		return r != task.AllDone && r != task.NoneFailed && r != task.Always
	case upFail:
		switch r {
		case task.AllSuccess, task.OneSuccess, task.NoneFailed, task.NoneFailedMinOneSuccess, task.AllDoneSetupSuccess:
			return true
		}
	}
	return false
}

// airflow210 is a transliteration of TriggerRuleDep._evaluate_direct_relatives in
// Airflow 2.10 (no mapped tasks, flag_upstream_failed set): the new state it
// sets, else whether the dependency passes.
func airflow210(rule task.TriggerRule, c task.UpstreamCounts) task.Decision {
	upstream, success, failed, upstreamFailed, skipped := c.Total, c.Success, c.Failed, c.UpstreamFailed, c.Skipped
	done := success + failed + upstreamFailed + skipped
	if rule == task.Always || upstream == 0 {
		return run // _get_dep_statuses: passing at once
	}
	upstreamDone := done >= upstream
	var newState task.Decision = -1
	switch rule {
	case task.AllSuccess:
		if upstreamFailed > 0 || failed > 0 {
			newState = upFail
		} else if skipped > 0 {
			newState = skip
		}
	case task.AllFailed:
		if success > 0 || skipped > 0 {
			newState = skip
		}
	case task.OneSuccess:
		if upstreamDone && done == skipped {
			newState = skip
		} else if upstreamDone && success <= 0 {
			newState = upFail
		}
	case task.OneFailed:
		if upstreamDone && !(failed > 0 || upstreamFailed > 0) {
			newState = skip
		}
	case task.OneDone:
		if upstreamDone && !(failed > 0 || success > 0) {
			newState = skip
		}
	case task.NoneFailed:
		if upstreamFailed > 0 || failed > 0 {
			newState = upFail
		}
	case task.NoneFailedMinOneSuccess:
		if upstreamFailed > 0 || failed > 0 {
			newState = upFail
		} else if skipped == upstream {
			newState = skip
		}
	case task.NoneSkipped:
		if skipped > 0 {
			newState = skip
		}
	case task.AllSkipped:
		if success > 0 || failed > 0 || upstreamFailed > 0 {
			newState = skip
		}
	case task.AllDoneSetupSuccess:
		upstreamSetup, successSetup, skippedSetup := c.Setups, c.SetupSuccess, c.SetupSkipped
		if upstreamDone && upstreamSetup > 0 && skippedSetup >= upstreamSetup {
			newState = skip
		} else if upstreamDone && upstreamSetup > 0 && successSetup == 0 {
			newState = upFail
		}
	}
	if newState != -1 {
		return newState
	}
	var passed bool
	switch rule {
	case task.OneSuccess:
		passed = success > 0
	case task.OneFailed:
		passed = failed > 0 || upstreamFailed > 0
	case task.OneDone:
		passed = success+failed > 0
	case task.AllSuccess:
		passed = upstream-success <= 0
	case task.AllFailed:
		passed = upstream-failed-upstreamFailed <= 0
	case task.AllDone:
		passed = upstreamDone
	case task.NoneFailed, task.NoneFailedMinOneSuccess:
		passed = upstream-success-skipped <= 0
	case task.NoneSkipped:
		passed = upstreamDone && skipped == 0
	case task.AllSkipped:
		passed = upstream-skipped <= 0
	case task.AllDoneSetupSuccess:
		passed = upstreamDone && !(c.Setups > 0 && c.SetupSuccess == 0)
	}
	if passed {
		return run
	}
	return wait
}

// TestTriggerRulesMatchAirflow compares every rule with the Airflow transliteration
// over every combination of up to 5 upstream tasks.
func TestTriggerRulesMatchAirflow(t *testing.T) {
	t.Parallel()
	n := 0
	for _, r := range task.TriggerRules {
		for total := 0; total <= 5; total++ {
			for s := 0; s <= total; s++ {
				for f := 0; s+f <= total; f++ {
					for uf := 0; s+f+uf <= total; uf++ {
						for sk := 0; s+f+uf+sk <= total; sk++ {
							// Some upstream tasks are setups: ss of them succeeded,
							// ssk were skipped, the others failed or are pending.
							for ns := 0; ns <= total; ns++ {
								for ss := 0; ss <= min(s, ns); ss++ {
									for ssk := 0; ssk <= min(sk, ns-ss); ssk++ {
										c := setups(u(total, s, f, uf, sk), ns, ss, ssk)
										n++
										if got, want := r.Evaluate(c), airflow210(r, c); got != want {
											t.Errorf("%s.Evaluate(%+v) = %s, Airflow 2.10 decides %s", r, c, got, want)
										}
									}
								}
							}
						}
					}
				}
			}
		}
	}
	if n < 1000 {
		t.Fatalf("only %d combinations checked", n)
	}
}

func TestTriggerRulesList(t *testing.T) {
	t.Parallel()
	if len(task.TriggerRules) != numTriggerRules {
		t.Fatalf("len(TriggerRules) = %d, want %d", len(task.TriggerRules), numTriggerRules)
	}
	// The values are Airflow's spellings.
	want := []string{"all_success", "all_failed", "all_done", "all_skipped", "one_success", "one_failed",
		"one_done", "none_failed", "none_failed_min_one_success", "none_skipped", "always", "all_done_setup_success"}
	seen := map[task.TriggerRule]bool{}
	for i, r := range task.TriggerRules {
		if string(r) != want[i] {
			t.Errorf("TriggerRules[%d] = %q, want %q", i, r, want[i])
		}
		if seen[r] {
			t.Errorf("%q listed twice", r)
		}
		seen[r] = true
		if !r.Valid() {
			t.Errorf("%q.Valid() = false", r)
		}
		if got := r.Evaluate(task.UpstreamCounts{}); got != run {
			t.Errorf("%q with no upstream = %s, want run", r, got)
		}
	}
	for _, bad := range []task.TriggerRule{"", "dummy", "none_failed_or_skipped", "ALL_SUCCESS", "all_done_min_one_success"} {
		if bad.Valid() {
			t.Errorf("%q.Valid() = true", bad)
		}
	}
}

func TestUpstreamCountsAdd(t *testing.T) {
	t.Parallel()
	var c task.UpstreamCounts
	c.Total = len(task.States)
	for _, s := range task.States {
		c.Add(s)
	}
	if want := u(len(task.States), 1, 1, 1, 1); c != want {
		t.Fatalf("after adding every state once: %+v, want %+v", c, want)
	}
	if c.Done() != 4 {
		t.Fatalf("Done() = %d, want 4 (only finished states count)", c.Done())
	}
}

func TestDecisionString(t *testing.T) {
	t.Parallel()
	for d, want := range map[task.Decision]string{wait: "wait", run: "run", skip: "skip", upFail: "upstream_failed", 7: "Decision(7)"} {
		if got := d.String(); got != want {
			t.Errorf("Decision(%d).String() = %q, want %q", int(d), got, want)
		}
	}
}

func ExampleTriggerRule_Evaluate() {
	// Three upstream tasks: one succeeded, one failed, one still running.
	c := task.UpstreamCounts{Total: 3, Success: 1, Failed: 1}
	for _, r := range []task.TriggerRule{task.AllSuccess, task.OneSuccess, task.AllDone, task.NoneSkipped} {
		fmt.Printf("%s: %s\n", r, r.Evaluate(c))
	}
	// Output:
	// all_success: upstream_failed
	// one_success: run
	// all_done: wait
	// none_skipped: wait
}
