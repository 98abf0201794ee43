package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/trellisdag/trellis/storage"
	"github.com/trellisdag/trellis/task"
)

// Batch is storage.Batch.
type Batch = storage.Batch

// TIChange is storage.TIChange.
type TIChange = storage.TIChange

// RunChange is storage.RunChange.
type RunChange = storage.RunChange

// ConflictError is storage.ConflictError.
type ConflictError = storage.ConflictError

// Apply commits every change of b in one transaction, or none of them. A change
// whose row is not in the expected state, or which is not a legal transition, fails
// the batch with a *ConflictError.
func (s *Store) Apply(ctx context.Context, b *Batch) error {
	if b.Len() == 0 {
		return nil
	}
	for _, c := range b.TIs {
		if err := task.CheckTransition(c.From, c.TI.State); err != nil {
			return &ConflictError{Run: c.TI.Run, TaskID: c.TI.TaskID, Reason: err.Error()}
		}
	}
	for _, c := range b.Runs {
		if !legalRun(c.From, c.To) {
			return &ConflictError{Run: c.Run, Reason: fmt.Sprintf("illegal run state transition %s -> %s", c.From, c.To)}
		}
	}
	began := time.Now()
	defer func() {
		s.stats.commitNanos.Add(int64(time.Since(began)))
	}()
	steps, err := s.batchSteps(b)
	if err != nil {
		return err
	}
	done := false
	if len(b.Expansions) == 0 {
		// PostgreSQL sends a batch without expansions (which read) in one round
		// trip; SQLite and a batch that did not apply go the sequential way,
		// which also says which change conflicted.
		if done, err = s.eng.pipeline(ctx, s, steps); err != nil {
			return err
		}
	}
	if !done {
		err = s.tx(ctx, func(tx *sql.Tx) error {
			for _, e := range b.Expansions {
				if err := applyExpansion(ctx, tx, e); err != nil {
					return err
				}
			}
			return s.runSteps(ctx, tx, steps)
		})
	}
	if err == nil {
		s.stats.batches.Add(1)
		s.stats.changes.Add(int64(b.Len()))
	}
	return err
}

// step is one statement of a batch's transaction.
type step struct {
	q    string
	args []any
	// want is how many rows the statement must change (-1: any number); when it
	// changes another number, fail says why (within the transaction).
	want int64
	fail func(ctx context.Context, tx *sql.Tx) error
	what string // the error's context
}

// batchSteps are the statements that apply a batch's changes, after its
// expansions: task instances and their tries, results, outbox entries, asset
// events, runs.
func (s *Store) batchSteps(b *Batch) ([]step, error) {
	var steps []step
	if len(b.TIs) > 0 {
		ts, err := tiSteps(b.TIs)
		if err != nil {
			return nil, err
		}
		steps = append(steps, ts...)
	}
	if len(b.Results) > 0 {
		st, err := xcomStep(b.Results)
		if err != nil {
			return nil, err
		}
		steps = append(steps, st)
	}
	for _, e := range b.Outbox {
		steps = append(steps, outboxStep(e))
	}
	for _, e := range b.Assets {
		steps = append(steps, assetSteps(e)...)
	}
	for _, c := range b.Runs {
		var q string
		switch {
		case c.To == task.RunRunning:
			q = `UPDATE dag_runs SET state = ?, started_at = COALESCE(started_at, ?), ended_at = NULL WHERE id = ? AND state = ?`
		case c.To.Finished():
			q = `UPDATE dag_runs SET state = ?, ended_at = ? WHERE id = ? AND state = ?`
		default:
			q = `UPDATE dag_runs SET state = ?, ended_at = NULL WHERE id = ? AND state = ?`
		}
		args := []any{string(c.To), micros(c.At), c.Run, string(c.From)}
		if c.To == task.RunQueued {
			args = []any{string(c.To), c.Run, string(c.From)}
		}
		conflict := &ConflictError{Run: c.Run, Reason: fmt.Sprintf("run is not in state %s", c.From)}
		steps = append(steps, step{q: q, args: args, want: 1, what: fmt.Sprintf("run #%d", c.Run),
			fail: func(context.Context, *sql.Tx) error { return conflict }})
	}
	return steps, nil
}

// runSteps executes steps one after the other in tx.
func (s *Store) runSteps(ctx context.Context, tx *sql.Tx, steps []step) error {
	for _, st := range steps {
		var res sql.Result
		var err error
		if ps, ok := s.stmts[st.q]; ok {
			res, err = tx.StmtContext(ctx, ps).ExecContext(ctx, st.args...)
		} else {
			res, err = tx.ExecContext(ctx, st.q, st.args...)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", st.what, err)
		}
		if st.want < 0 {
			continue
		}
		if n, err := res.RowsAffected(); err != nil || n != st.want {
			if err != nil {
				return fmt.Errorf("%s: %w", st.what, err)
			}
			return st.fail(ctx, tx)
		}
	}
	return nil
}

func legalRun(from, to task.RunState) bool {
	switch from {
	case task.RunQueued:
		return to == task.RunRunning || to == task.RunFailed || to == task.RunSuccess
	case task.RunRunning:
		return to.Finished() || to == task.RunQueued
	case task.RunSuccess, task.RunFailed:
		return to == task.RunQueued || (to.Finished() && to != from)
	}
	return false
}

// ErrActive is returned by Clear when a task to clear has a try in flight.
var ErrActive = storage.ErrActive

// Clear resets finished task instances of a run to state none, so the scheduler
// runs them again: each gets its retries back (max tries = tries so far + retries
// + 1, as in Airflow), and its stored result is removed. The run goes back to
// queued. A task in flight (queued or running) is ErrActive and nothing is changed.
// retries gives each task's configured retries.
func (s *Store) Clear(ctx context.Context, run int64, taskIDs []string, retries func(taskID string) int) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, id := range taskIDs {
			var state string
			var try int
			err := tx.QueryRowContext(ctx, `SELECT state, try_number FROM task_instances WHERE run = ? AND task_id = ?`, run, id).Scan(&state, &try)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("task %q in run #%d: %w", id, run, ErrNotFound)
			}
			if err != nil {
				return err
			}
			st := task.State(state)
			if st.Active() {
				return fmt.Errorf("task %q is %s: %w", id, st, ErrActive)
			}
			if st == task.StateNone {
				continue
			}
			if st == task.StateDeferred {
				// A sensor's wait ends here; its try ends with it.
				if _, err := tx.ExecContext(ctx, `UPDATE task_tries SET state = 'failed', ended_at = ?, error = 'cleared while deferred'
					WHERE run = ? AND task_id = ? AND try_number = ? AND ended_at IS NULL`, time.Now().UnixMicro(), run, id, try); err != nil {
					return err
				}
			}
			if _, err := tx.ExecContext(ctx, `UPDATE task_instances SET state = 'none', max_tries = ?, next_retry_at = NULL, pokes = 0
				WHERE run = ? AND task_id = ?`, try+retries(id)+1, run, id); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM xcom WHERE run = ? AND task_id = ?`, run, id); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `UPDATE dag_runs SET state = 'queued', ended_at = NULL, version = version + 1 WHERE id = ?`, run)
		return err
	})
}
