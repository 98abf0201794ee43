package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/trellisdag/trellis/storage"
	"github.com/trellisdag/trellis/task"
)

// logDeleteBatch is how many log rows one transaction of DeleteRun removes
// (at most 32 KiB each), so that a run with a huge log never holds the writer
// (and the scheduler's commits) for long.
const logDeleteBatch = 2000

// ErrRunActive is returned by DeleteRun for a run that is queued or running.
var ErrRunActive = storage.ErrRunActive

// DeleteRun removes a finished run with its task instances, tries, logs,
// results and audit entries. Its logs go first, logDeleteBatch rows per
// transaction; then the run and the rest in one transaction.
func (s *Store) DeleteRun(ctx context.Context, run int64) error {
	r, err := s.RunByID(ctx, run)
	if err != nil {
		return err
	}
	if !r.State.Finished() {
		return fmt.Errorf("run %q of dag %q is %s: %w", r.RunID, r.DAGID, r.State, ErrRunActive)
	}
	for {
		var n int64
		err := s.tx(ctx, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, `DELETE FROM task_logs WHERE id IN (SELECT id FROM task_logs WHERE run = ? LIMIT ?)`,
				run, logDeleteBatch)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		if err != nil {
			return fmt.Errorf("delete the logs of run %q: %w", r.RunID, err)
		}
		if n < logDeleteBatch {
			break
		}
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		// The state is checked again: a clear may have queued the run meanwhile.
		res, err := tx.ExecContext(ctx, `DELETE FROM dag_runs WHERE id = ? AND state IN (?, ?)`,
			run, string(task.RunSuccess), string(task.RunFailed))
		if err != nil {
			return fmt.Errorf("delete run %q: %w", r.RunID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("run %q of dag %q: %w", r.RunID, r.DAGID, ErrRunActive)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM audit_log WHERE dag_id = ? AND run_id = ?`, r.DAGID, r.RunID); err != nil {
			return fmt.Errorf("delete the audit entries of run %q: %w", r.RunID, err)
		}
		// Delivered callbacks go with the run; pending ones are still delivered.
		if _, err := tx.ExecContext(ctx, `DELETE FROM outbox WHERE run = ? AND delivered_at IS NOT NULL`, run); err != nil {
			return fmt.Errorf("delete the delivered callbacks of run %q: %w", r.RunID, err)
		}
		return nil
	})
}

// OldRuns returns at most limit finished runs whose logical date is before
// before (of dagID when set), oldest first. The newest finished run of each DAG
// is never among them: depends_on_past and the prev_* template values read it.
func (s *Store) OldRuns(ctx context.Context, dagID string, before time.Time, limit int) ([]Run, error) {
	where, args := oldRuns(dagID, before)
	return s.queryRuns(ctx, `SELECT `+runColumns+` FROM dag_runs AS r`+where+` ORDER BY logical_date, id LIMIT ?`, append(args, limit)...)
}

// CountOldRuns counts the runs OldRuns would return with no limit.
func (s *Store) CountOldRuns(ctx context.Context, dagID string, before time.Time) (int, error) {
	where, args := oldRuns(dagID, before)
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM dag_runs AS r`+where, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count old runs: %w", err)
	}
	return n, nil
}

// oldRuns is the WHERE clause of OldRuns and CountOldRuns.
func oldRuns(dagID string, before time.Time) (string, []any) {
	done := []any{string(task.RunSuccess), string(task.RunFailed)}
	where := ` WHERE logical_date < ? AND state IN (?, ?)
		AND id <> (SELECT id FROM dag_runs AS n WHERE n.dag_id = r.dag_id AND n.state IN (?, ?)
			ORDER BY n.logical_date DESC, n.id DESC LIMIT 1)`
	args := append(append([]any{before.UnixMicro()}, done...), done...)
	if dagID != "" {
		where += ` AND dag_id = ?`
		args = append(args, dagID)
	}
	return where, args
}
