package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/trellisdag/trellis/task"
)

// Batch collects changes that Apply commits together in one transaction.
// The zero value is an empty batch.
type Batch struct {
	tis    []TIChange
	runs   []RunChange
	xcoms  []xcom
	outbox []OutboxEntry
	assets []AssetEvent
	expand []Expansion
}

// TIChange moves a task instance from state From to the values in TI. It applies
// only if the row is in state From, and only if From -> TI.State is a legal
// transition.
//
// The task's tries follow: a change to queued inserts the try TI.Try; a change out
// of queued or running ends that try with TI's end, exit code and error; queued
// back to scheduled removes the try (it never ran).
type TIChange struct {
	From task.State
	TI   TaskInstance
	// At is when the change happened (the try's queued time for a change to queued).
	At time.Time
}

// RunChange moves a run from state From to state To.
type RunChange struct {
	Run      int64
	From, To task.RunState
	At       time.Time // the start time for a change to running, the end time for an end
}

type xcom struct {
	run    int64
	taskID string
	value  []byte
}

// SetTI adds a task-instance change.
func (b *Batch) SetTI(c TIChange) { b.tis = append(b.tis, c) }

// SetRun adds a run change.
func (b *Batch) SetRun(c RunChange) { b.runs = append(b.runs, c) }

// PutXCom adds a task's result.
func (b *Batch) PutXCom(run int64, taskID string, value []byte) {
	b.xcoms = append(b.xcoms, xcom{run, taskID, value})
}

// PutOutbox adds a side effect to deliver once the batch is committed (see
// OutboxEntry); an entry whose key exists already is ignored.
func (b *Batch) PutOutbox(e OutboxEntry) { b.outbox = append(b.outbox, e) }

// Len is the number of changes in the batch.
func (b *Batch) Len() int {
	return len(b.tis) + len(b.runs) + len(b.xcoms) + len(b.outbox) + len(b.assets) + len(b.expand)
}

// Reset empties the batch, keeping its memory.
func (b *Batch) Reset() {
	b.tis, b.runs, b.xcoms, b.outbox, b.assets = b.tis[:0], b.runs[:0], b.xcoms[:0], b.outbox[:0], b.assets[:0]
	b.expand = b.expand[:0]
}

// ConflictError says which change of a batch did not apply. It wraps ErrConflict.
type ConflictError struct {
	Run    int64
	TaskID string // empty for a run change
	Reason string
}

func (e *ConflictError) Error() string {
	if e.TaskID == "" {
		return fmt.Sprintf("run #%d: %s", e.Run, e.Reason)
	}
	return fmt.Sprintf("task %q in run #%d: %s", e.TaskID, e.Run, e.Reason)
}

// Unwrap returns ErrConflict.
func (e *ConflictError) Unwrap() error { return ErrConflict }

// Apply commits every change of b in one transaction, or none of them. A change
// whose row is not in the expected state, or which is not a legal transition, fails
// the batch with a *ConflictError.
func (s *Store) Apply(ctx context.Context, b *Batch) error {
	if b.Len() == 0 {
		return nil
	}
	for _, c := range b.tis {
		if err := task.CheckTransition(c.From, c.TI.State); err != nil {
			return &ConflictError{Run: c.TI.Run, TaskID: c.TI.TaskID, Reason: err.Error()}
		}
	}
	for _, c := range b.runs {
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
	if len(b.expand) == 0 {
		// PostgreSQL sends a batch without expansions (which read) in one round
		// trip; SQLite and a batch that did not apply go the sequential way,
		// which also says which change conflicted.
		if done, err = s.eng.pipeline(ctx, s, steps); err != nil {
			return err
		}
	}
	if !done {
		err = s.tx(ctx, func(tx *sql.Tx) error {
			for _, e := range b.expand {
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
	if len(b.tis) > 0 {
		ts, err := tiSteps(b.tis)
		if err != nil {
			return nil, err
		}
		steps = append(steps, ts...)
	}
	if len(b.xcoms) > 0 {
		st, err := xcomStep(b.xcoms)
		if err != nil {
			return nil, err
		}
		steps = append(steps, st)
	}
	for _, e := range b.outbox {
		steps = append(steps, outboxStep(e))
	}
	for _, e := range b.assets {
		steps = append(steps, assetSteps(e)...)
	}
	for _, c := range b.runs {
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
var ErrActive = errors.New("task has a try in flight")

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
