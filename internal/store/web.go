package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/trellisdag/trellis/storage"
	"github.com/trellisdag/trellis/task"
)

// This file holds what the web server and REST API need beyond the scheduler's
// reads and writes: marking task instances, run counts and state counts for
// pagination and metrics, the task instances of many runs at once (the grid), and
// the audit log.

// MarkTask sets a finished or waiting task instance of a run to success or failed,
// as a person's "mark" in the UI does, and returns the state it was in. The change
// must be a legal transition (task.CheckTransition; an illegal one wraps
// ErrConflict); a task with a try in flight (queued or running) is ErrActive, since
// its try would go on running. The run's version is bumped so that a running
// scheduler reloads it, and a finished run goes back to queued so that the
// scheduler evaluates the downstream tasks and decides the run's state again. note
// is recorded as the task's error when it is marked failed.
func (s *Store) MarkTask(ctx context.Context, run int64, taskID string, to task.State, note string) (from task.State, err error) {
	if to != task.StateSuccess && to != task.StateFailed {
		return "", fmt.Errorf("mark task %q: state %q: %w", taskID, to, ErrConflict)
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		var state string
		var runState string
		err := tx.QueryRowContext(ctx, `SELECT t.state, r.state FROM task_instances t JOIN dag_runs r ON r.id = t.run
			WHERE t.run = ? AND t.task_id = ?`, run, taskID).Scan(&state, &runState)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("task %q in run #%d: %w", taskID, run, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("mark task %q in run #%d: %w", taskID, run, err)
		}
		from = task.State(state)
		if err := task.CheckTransition(from, to); err != nil {
			return &ConflictError{Run: run, TaskID: taskID, Reason: err.Error()}
		}
		msg := ""
		if to == task.StateFailed {
			msg = note
		}
		now := time.Now().UnixMicro()
		res, err := tx.ExecContext(ctx, `UPDATE task_instances SET state = ?, ended_at = COALESCE(ended_at, ?), next_retry_at = NULL,
			error = ? WHERE run = ? AND task_id = ? AND state = ?`, string(to), now, msg, run, taskID, state)
		if err != nil {
			return fmt.Errorf("mark task %q in run #%d: %w", taskID, run, err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return &ConflictError{Run: run, TaskID: taskID, Reason: "changed concurrently"}
		}
		if from.Active() || from == task.StateDeferred {
			// A try in flight (or a sensor's deferred try) ends here; the
			// scheduler stops it when it reloads the run.
			if _, err := tx.ExecContext(ctx, `UPDATE task_tries SET state = ?, ended_at = ?, error = ?
				WHERE run = ? AND task_id = ? AND try_number = (SELECT try_number FROM task_instances WHERE run = ? AND task_id = ?)`,
				string(to), now, "marked "+string(to)+" while it ran", run, taskID, run, taskID); err != nil {
				return fmt.Errorf("mark task %q in run #%d: end its try: %w", taskID, run, err)
			}
		}
		q := `UPDATE dag_runs SET version = version + 1 WHERE id = ?`
		if task.RunState(runState).Finished() {
			q = `UPDATE dag_runs SET state = 'queued', ended_at = NULL, version = version + 1 WHERE id = ?`
		}
		if _, err := tx.ExecContext(ctx, q, run); err != nil {
			return fmt.Errorf("mark task %q in run #%d: requeue the run: %w", taskID, run, err)
		}
		return nil
	})
	return from, err
}

// CountRuns returns how many runs the filter selects, ignoring its Limit and
// Offset.
func (s *Store) CountRuns(ctx context.Context, f RunFilter) (int, error) {
	where, args := whereOf(f)
	q := `SELECT count(*) FROM dag_runs` + where
	var n int
	if err := s.r.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count runs: %w", err)
	}
	return n, nil
}

// TaskInstancesOfRuns returns the task instances of the given runs, by run key.
func (s *Store) TaskInstancesOfRuns(ctx context.Context, runs []int64) (map[int64][]TaskInstance, error) {
	out := make(map[int64][]TaskInstance, len(runs))
	if len(runs) == 0 {
		return out, nil
	}
	args := make([]any, len(runs))
	for i, r := range runs {
		args[i] = r
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+tiColumns+` FROM task_instances WHERE run IN (?`+
		strings.Repeat(",?", len(runs)-1)+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("task instances of %d runs: %w", len(runs), err)
	}
	defer rows.Close()
	for rows.Next() {
		ti, err := scanTI(rows)
		if err != nil {
			return nil, fmt.Errorf("task instances of %d runs: %w", len(runs), err)
		}
		out[ti.Run] = append(out[ti.Run], ti)
	}
	return out, rows.Err()
}

// StateCounts is storage.StateCounts.
type StateCounts = storage.StateCounts

// CountStates returns how many runs, task instances and tries are in each state.
func (s *Store) CountStates(ctx context.Context) (StateCounts, error) {
	c := StateCounts{Runs: map[task.RunState]int{}, TaskInstances: map[task.State]int{}, Tries: map[task.State]int{}}
	for _, q := range []struct {
		table string
		add   func(string, int)
	}{
		{"dag_runs", func(s string, n int) { c.Runs[task.RunState(s)] = n }},
		{"task_instances", func(s string, n int) { c.TaskInstances[task.State(s)] = n }},
		{"task_tries", func(s string, n int) { c.Tries[task.State(s)] = n }},
	} {
		rows, err := s.r.QueryContext(ctx, `SELECT state, count(*) FROM `+q.table+` GROUP BY state`)
		if err != nil {
			return StateCounts{}, fmt.Errorf("count %s by state: %w", q.table, err)
		}
		for rows.Next() {
			var st string
			var n int
			if err := rows.Scan(&st, &n); err != nil {
				rows.Close()
				return StateCounts{}, fmt.Errorf("count %s by state: %w", q.table, err)
			}
			q.add(st, n)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return StateCounts{}, fmt.Errorf("count %s by state: %w", q.table, err)
		}
	}
	return c, nil
}

// Ping checks that the database answers a read.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.r.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		return fmt.Errorf("database %q: %w", s.path, err)
	}
	return nil
}

// AuditEntry is storage.AuditEntry.
type AuditEntry = storage.AuditEntry

// AddAudit appends an entry to the audit log and returns its id.
func (s *Store) AddAudit(ctx context.Context, e AuditEntry) (int64, error) {
	if e.At.IsZero() {
		e.At = time.Now()
	}
	var id int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `INSERT INTO audit_log (at, actor, role, action, dag_id, run_id, task_id, detail, outcome)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, e.At.UnixMicro(), e.Actor, e.Role, e.Action, e.DAGID, e.RunID, e.TaskID,
			e.Detail, e.Outcome).Scan(&id)
	})
	if err != nil {
		return 0, fmt.Errorf("audit %s by %s: %w", e.Action, e.Actor, err)
	}
	return id, nil
}

// AuditFilter is storage.AuditFilter.
type AuditFilter = storage.AuditFilter

// Audit returns audit entries, newest first, and how many the filter selects in
// all.
func (s *Store) Audit(ctx context.Context, f AuditFilter) ([]AuditEntry, int, error) {
	where := ` WHERE 1=1`
	var args []any
	if f.DAGID != "" {
		where += ` AND dag_id = ?`
		args = append(args, f.DAGID)
	}
	var total int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM audit_log`+where, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("audit log: %w", err)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.r.QueryContext(ctx, `SELECT id, at, actor, role, action, dag_id, run_id, task_id, detail, outcome
		FROM audit_log`+where+` ORDER BY id DESC LIMIT ? OFFSET ?`, append(args, limit, f.Offset)...)
	if err != nil {
		return nil, 0, fmt.Errorf("audit log: %w", err)
	}
	defer rows.Close()
	out := []AuditEntry{}
	for rows.Next() {
		var e AuditEntry
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Role, &e.Action, &e.DAGID, &e.RunID, &e.TaskID, &e.Detail, &e.Outcome); err != nil {
			return nil, 0, fmt.Errorf("audit log: %w", err)
		}
		e.At = time.UnixMicro(at).UTC()
		out = append(out, e)
	}
	return out, total, rows.Err()
}

// TriesOfRun returns every try of every task of a run, by task id and try number.
func (s *Store) TriesOfRun(ctx context.Context, run int64) ([]Try, error) {
	tries, err := s.queryTries(ctx, `WHERE run = ? ORDER BY task_id, try_number`, run)
	if err != nil {
		return nil, fmt.Errorf("tries of run #%d: %w", run, err)
	}
	return tries, nil
}
