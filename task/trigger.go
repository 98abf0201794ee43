package task

import "fmt"

// TriggerRule decides, from the states of a task's direct upstream tasks, whether
// the task runs, waits, is skipped or is marked upstream_failed. The rules and their
// meanings are Airflow's.
type TriggerRule string

// Trigger rules.
const (
	AllSuccess              TriggerRule = "all_success"                 // every upstream succeeded (default)
	AllFailed               TriggerRule = "all_failed"                  // every upstream failed or is upstream_failed
	AllDone                 TriggerRule = "all_done"                    // every upstream finished, whatever its state
	AllSkipped              TriggerRule = "all_skipped"                 // every upstream was skipped
	OneSuccess              TriggerRule = "one_success"                 // at least one upstream succeeded; does not wait for the rest
	OneFailed               TriggerRule = "one_failed"                  // at least one upstream failed; does not wait for the rest
	OneDone                 TriggerRule = "one_done"                    // at least one upstream succeeded or failed
	NoneFailed              TriggerRule = "none_failed"                 // every upstream finished and none failed (success or skipped)
	NoneFailedMinOneSuccess TriggerRule = "none_failed_min_one_success" // none failed and at least one succeeded
	NoneSkipped             TriggerRule = "none_skipped"                // every upstream finished and none was skipped
	Always                  TriggerRule = "always"                      // runs at once, whatever the upstream states
	// AllDoneSetupSuccess is a teardown's rule (Airflow's all_done_setup_success):
	// every upstream finished and, when some of them are setups, at least one
	// setup succeeded; skipped when all its setups were skipped, upstream_failed
	// when none succeeded.
	AllDoneSetupSuccess TriggerRule = "all_done_setup_success"
)

// TriggerRules lists every trigger rule.
var TriggerRules = []TriggerRule{AllSuccess, AllFailed, AllDone, AllSkipped, OneSuccess,
	OneFailed, OneDone, NoneFailed, NoneFailedMinOneSuccess, NoneSkipped, Always, AllDoneSetupSuccess}

// Valid reports whether r is one of the defined rules.
func (r TriggerRule) Valid() bool {
	for _, v := range TriggerRules {
		if r == v {
			return true
		}
	}
	return false
}

// UpstreamCounts counts the states of a task's direct upstream tasks.
type UpstreamCounts struct {
	Total          int // number of direct upstream tasks
	Success        int
	Failed         int
	UpstreamFailed int
	Skipped        int
	// Setups counts the direct upstream tasks that are setups (AsSetup), and
	// SetupSuccess and SetupSkipped those of them that succeeded or were
	// skipped (also counted above). Only AllDoneSetupSuccess reads them.
	Setups, SetupSuccess, SetupSkipped int
}

// Done is the number of upstream tasks in a finished state.
func (u UpstreamCounts) Done() int { return u.Success + u.Failed + u.UpstreamFailed + u.Skipped }

// Add counts one more upstream task that finished in state s. Other states are ignored.
func (u *UpstreamCounts) Add(s State) {
	switch s {
	case StateSuccess:
		u.Success++
	case StateFailed:
		u.Failed++
	case StateUpstreamFailed:
		u.UpstreamFailed++
	case StateSkipped:
		u.Skipped++
	}
}

// Decision is what a trigger rule says about a task given its upstream states.
type Decision int

// Decisions.
const (
	DecideWait           Decision = iota // not decidable yet
	DecideRun                            // run the task
	DecideSkip                           // mark it skipped
	DecideUpstreamFailed                 // mark it upstream_failed
)

func (d Decision) String() string {
	switch d {
	case DecideWait:
		return "wait"
	case DecideRun:
		return "run"
	case DecideSkip:
		return "skip"
	case DecideUpstreamFailed:
		return "upstream_failed"
	}
	return fmt.Sprintf("Decision(%d)", int(d))
}

// Evaluate applies the rule to the upstream counts, following Airflow's
// TriggerRuleDep: a task with no upstream always runs; some rules decide before every
// upstream is done (all_success is upstream_failed as soon as one upstream failed).
func (r TriggerRule) Evaluate(u UpstreamCounts) Decision {
	if u.Total == 0 || r == Always {
		return DecideRun
	}
	done := u.Done() == u.Total
	failed := u.Failed + u.UpstreamFailed
	switch r {
	case AllSuccess, "":
		switch {
		case failed > 0:
			return DecideUpstreamFailed
		case u.Skipped > 0:
			return DecideSkip
		case u.Success == u.Total:
			return DecideRun
		}
	case AllFailed:
		switch {
		case u.Success > 0 || u.Skipped > 0:
			return DecideSkip
		case failed == u.Total:
			return DecideRun
		}
	case AllDone:
		if done {
			return DecideRun
		}
	case AllSkipped:
		switch {
		case u.Success > 0 || failed > 0:
			return DecideSkip
		case u.Skipped == u.Total:
			return DecideRun
		}
	case OneSuccess:
		switch {
		case u.Success > 0:
			return DecideRun
		case done && u.Skipped == u.Total:
			return DecideSkip
		case done:
			return DecideUpstreamFailed
		}
	case OneFailed:
		switch {
		case failed > 0:
			return DecideRun
		case done:
			return DecideSkip
		}
	case OneDone:
		switch {
		case u.Success > 0 || u.Failed > 0:
			return DecideRun
		case done:
			return DecideSkip
		}
	case NoneFailed:
		switch {
		case failed > 0:
			return DecideUpstreamFailed
		case done:
			return DecideRun
		}
	case NoneFailedMinOneSuccess:
		switch {
		case failed > 0:
			return DecideUpstreamFailed
		case u.Skipped == u.Total:
			return DecideSkip
		case done:
			return DecideRun
		}
	case NoneSkipped:
		switch {
		case u.Skipped > 0:
			return DecideSkip
		case done:
			return DecideRun
		}
	case AllDoneSetupSuccess:
		switch {
		case !done:
		case u.Setups > 0 && u.SetupSkipped >= u.Setups:
			return DecideSkip
		case u.Setups > 0 && u.SetupSuccess == 0:
			return DecideUpstreamFailed
		default:
			return DecideRun
		}
	}
	return DecideWait
}
