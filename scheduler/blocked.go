package scheduler

import (
	"fmt"
	"strings"

	"github.com/trellisdag/trellis/task"
)

// StuckError is returned by Run with ExitWhenIdle when runs remain but none
// can progress: no try is in flight or waiting for a retry, and every task
// that has not run is held (by its previous run, a paused DAG, max active
// runs). Blocked says why, one line per run.
type StuckError struct {
	Blocked []string
}

func (e *StuckError) Error() string {
	return fmt.Sprintf("nothing can progress; %d run(s) blocked:\n%s", len(e.Blocked), strings.Join(e.Blocked, "\n"))
}

// stuck returns a StuckError when every loaded run is blocked, nil when some
// run can still progress (or none is loaded).
func (s *Scheduler) stuck() *StuckError {
	if len(s.runs) == 0 || s.batch.Len() > 0 || s.retryPending() {
		return nil
	}
	var blocked []string
	for _, id := range s.order {
		rs := s.runs[id]
		p := rs.plan
		name := fmt.Sprintf("run %s of dag %s", rs.rec.RunID, rs.rec.DAGID)
		if rs.rec.State == task.RunQueued {
			switch {
			case p.paused:
				blocked = append(blocked, name+": queued; the DAG is paused")
			case p.activeRuns >= s.maxActiveRuns(p):
				blocked = append(blocked, fmt.Sprintf("%s: queued; the DAG has its max active runs (%d) running", name, s.maxActiveRuns(p)))
			default:
				return nil // admitted at the next step
			}
			continue
		}
		var why []string
		for i := range rs.tis {
			switch rs.tis[i].State {
			case task.StateQueued, task.StateRunning, task.StateUpForRetry, task.StateDeferred:
				return nil
			case task.StateScheduled:
				if !p.paused {
					return nil // starts when a slot frees
				}
				why = append(why, fmt.Sprintf("task %s is scheduled but the DAG is paused", rs.tis[i].TaskID))
			}
		}
		for _, i := range rs.waitPast {
			need := "the same task of the DAG's previous run must have succeeded or been skipped"
			if p.settings[i].WaitForDownstream {
				need += ", and its direct downstream tasks too (wait_for_downstream)"
			}
			why = append(why, fmt.Sprintf("task %s waits for its previous run (depends_on_past: %s)", rs.tis[i].TaskID, need))
		}
		if len(why) == 0 {
			return nil // nothing to say: not a state this check knows; let the scheduler go on
		}
		blocked = append(blocked, name+": "+strings.Join(why, "; "))
	}
	return &StuckError{Blocked: blocked}
}

// retryPending reports whether a retry timer of a loaded run is pending.
func (s *Scheduler) retryPending() bool {
	for _, t := range s.timers {
		if (t.kind == timerRetry || t.kind == timerPoke) && s.current(t.run) {
			return true
		}
	}
	return false
}
