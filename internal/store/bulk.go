package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/trellisdag/trellis/storage"
	"github.com/trellisdag/trellis/task"
)

// The SQLite driver parses a statement's text on every execution, so a batch is
// written with one statement per kind of change: the rows travel as one JSON array
// bound to a single parameter and are expanded by json_each (json_array_elements
// on PostgreSQL, see pgRewrites), each field cast to its column's type, as
// PostgreSQL wants.

// tiRow is a task-instance change as JSON for the bulk statements.
type tiRow struct {
	Run      int64  `json:"r"`
	Task     string `json:"t"`
	From     string `json:"f"`
	State    string `json:"s"`
	Try      int    `json:"n"`
	MaxTries int    `json:"m"`
	Started  *int64 `json:"st"`
	Ended    *int64 `json:"en"`
	Next     *int64 `json:"nr"`
	Exit     *int   `json:"ec"`
	Error    string `json:"e"`
	Executor string `json:"x"`
	Host     string `json:"h"`
	Pod      string `json:"p"`
	Pokes    int    `json:"pk"`
	At       *int64 `json:"at"`
	Value    string `json:"v,omitempty"` // a result's JSON text, compacted
}

func microsPtr(v any) *int64 {
	if v == nil {
		return nil
	}
	i := v.(int64)
	return &i
}

func rowOf(c TIChange) tiRow {
	ti := c.TI
	return tiRow{Run: ti.Run, Task: ti.TaskID, From: string(c.From), State: string(ti.State), Try: ti.Try,
		MaxTries: ti.MaxTries, Started: microsPtr(micros(ti.Started)), Ended: microsPtr(micros(ti.Ended)),
		Next: microsPtr(micros(ti.NextRetry)), Exit: ti.ExitCode, Error: ti.Error, Executor: ti.Executor,
		Host: ti.Host, Pod: ti.Pod, Pokes: ti.Pokes, At: microsPtr(micros(c.At))}
}

// prepare prepares the batch statements once: the driver keeps a prepared
// statement's compiled form, so executing it again costs no parsing.
func (s *Store) prepare(ctx context.Context) error {
	s.stmts = map[string]*sql.Stmt{}
	for _, q := range []string{bulkUpdateTI, bulkDeleteTry, bulkInsertTry, bulkStartTry, bulkEndTry, bulkXCom, bulkInsertTI, bulkInsertLogs, insertRun} {
		st, err := s.w.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("prepare %.40q: %w", q, err)
		}
		s.stmts[q] = st
	}
	return nil
}

func (s *Store) execJSON(ctx context.Context, tx *sql.Tx, q string, rows any, args ...any) (int64, error) {
	b, err := json.Marshal(rows)
	if err != nil {
		return 0, err
	}
	st, ok := s.stmts[q]
	if !ok {
		return 0, fmt.Errorf("statement %.40q is not prepared", q)
	}
	res, err := tx.StmtContext(ctx, st).ExecContext(ctx, append(args, string(b))...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

const (
	bulkUpdateTI = `WITH c AS MATERIALIZED (SELECT value FROM json_each(?))
		UPDATE task_instances AS t SET state = c.value->>'s', try_number = CAST(c.value->>'n' AS BIGINT),
		max_tries = CAST(c.value->>'m' AS BIGINT), started_at = CAST(c.value->>'st' AS BIGINT), ended_at = CAST(c.value->>'en' AS BIGINT),
		next_retry_at = CAST(c.value->>'nr' AS BIGINT), exit_code = CAST(c.value->>'ec' AS BIGINT), error = c.value->>'e',
		executor = c.value->>'x', host = c.value->>'h', pod = c.value->>'p', pokes = CAST(c.value->>'pk' AS BIGINT)
		FROM c
		WHERE t.run = CAST(c.value->>'r' AS BIGINT) AND t.task_id = c.value->>'t' AND t.state = c.value->>'f'`
	bulkDeleteTry = `DELETE FROM task_tries WHERE (run, task_id, try_number) IN
		(SELECT CAST(c.value->>'r' AS BIGINT), c.value->>'t', CAST(c.value->>'n' AS BIGINT) + 1 FROM json_each(?) AS c)`
	bulkInsertTry = `WITH c AS MATERIALIZED (SELECT value FROM json_each(?))
		INSERT INTO task_tries (run, task_id, try_number, state, queued_at, executor, pod)
		SELECT CAST(c.value->>'r' AS BIGINT), c.value->>'t', CAST(c.value->>'n' AS BIGINT), 'queued', CAST(c.value->>'at' AS BIGINT), c.value->>'x', c.value->>'p'
		FROM c WHERE true
		ON CONFLICT (run, task_id, try_number) DO UPDATE SET state = 'queued', queued_at = excluded.queued_at,
		started_at = NULL, ended_at = NULL, exit_code = NULL, error = '', executor = excluded.executor, pod = excluded.pod`
	bulkStartTry = `WITH c AS MATERIALIZED (SELECT value FROM json_each(?))
		UPDATE task_tries AS t SET state = 'running', started_at = CAST(c.value->>'st' AS BIGINT), host = c.value->>'h',
		pod = c.value->>'p' FROM c
		WHERE t.run = CAST(c.value->>'r' AS BIGINT) AND t.task_id = c.value->>'t' AND t.try_number = CAST(c.value->>'n' AS BIGINT)`
	bulkEndTry = `WITH c AS MATERIALIZED (SELECT value FROM json_each(?))
		UPDATE task_tries AS t SET state = c.value->>'s', started_at = COALESCE(t.started_at, CAST(c.value->>'st' AS BIGINT)),
		ended_at = CAST(c.value->>'en' AS BIGINT), exit_code = CAST(c.value->>'ec' AS BIGINT), error = c.value->>'e', host = c.value->>'h',
		pod = c.value->>'p' FROM c
		WHERE t.run = CAST(c.value->>'r' AS BIGINT) AND t.task_id = c.value->>'t' AND t.try_number = CAST(c.value->>'n' AS BIGINT)`
	bulkInsertTI = `INSERT INTO task_instances (run, task_id, state, max_tries)
		SELECT CAST(? AS BIGINT), c.value->>'t', 'none', CAST(c.value->>'m' AS BIGINT) FROM json_each(?) AS c`
	bulkInsertLogs = `INSERT INTO task_logs (run, task_id, try_number, data)
		SELECT CAST(c.value->>'r' AS BIGINT), c.value->>'t', CAST(c.value->>'n' AS BIGINT), unhex(c.value->>'d') FROM json_each(?) AS c`
	insertRun = `INSERT INTO dag_runs (dag_id, run_id, run_type, state, logical_date, interval_start,
		interval_end, conf, created_at, dag_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (dag_id, run_id) DO NOTHING RETURNING id`
	bulkXCom = `INSERT INTO xcom (run, task_id, value)
		SELECT CAST(c.value->>'r' AS BIGINT), c.value->>'t', CAST(c.value->>'v' AS BLOB) FROM json_each(?) AS c WHERE true
		ON CONFLICT (run, task_id) DO UPDATE SET value = excluded.value`
)

type tiKey struct {
	run  int64
	task string
}

// tiSteps write the task-instance changes of a batch. Several changes of one
// task instance (scheduled, then queued) collapse into one row update from the
// first expected state to the last values; the tries follow every change, in
// lifecycle order: removals, inserts, starts, ends.
func tiSteps(cs []TIChange) ([]step, error) {
	var updates []tiRow
	at := map[tiKey]int{}
	var dels, ins, starts, ends []tiRow
	for _, c := range cs {
		r := rowOf(c)
		k := tiKey{r.Run, r.Task}
		if i, ok := at[k]; ok {
			r.From = updates[i].From
			updates[i] = r
		} else {
			at[k] = len(updates)
			updates = append(updates, r)
		}
		switch to := c.TI.State; {
		case to == task.StateQueued:
			ins = append(ins, rowOf(c))
		case c.From.Active() && to == task.StateScheduled:
			dels = append(dels, rowOf(c))
		case to == task.StateRunning:
			starts = append(starts, rowOf(c))
		case c.From.Active() || c.From == task.StateDeferred:
			ends = append(ends, rowOf(c)) // a deferred try's row follows it too
		}
	}
	js, err := json.Marshal(updates)
	if err != nil {
		return nil, err
	}
	steps := []step{{q: bulkUpdateTI, args: []any{string(js)}, want: int64(len(updates)), what: "update task instances",
		fail: func(ctx context.Context, tx *sql.Tx) error { return conflictOf(ctx, tx, updates) }}}
	for _, op := range []struct {
		q    string
		rows []tiRow
	}{{bulkDeleteTry, dels}, {bulkInsertTry, ins}, {bulkStartTry, starts}, {bulkEndTry, ends}} {
		if len(op.rows) == 0 {
			continue
		}
		js, err := json.Marshal(op.rows)
		if err != nil {
			return nil, err
		}
		steps = append(steps, step{q: op.q, args: []any{string(js)}, want: -1, what: "record tries"})
	}
	return steps, nil
}

// conflictOf names the first change whose row was not in its expected state.
func conflictOf(ctx context.Context, tx *sql.Tx, rows []tiRow) error {
	for _, r := range rows {
		var state string
		err := tx.QueryRowContext(ctx, `SELECT state FROM task_instances WHERE run = ? AND task_id = ?`, r.Run, r.Task).Scan(&state)
		switch {
		case err == sql.ErrNoRows:
			return &ConflictError{Run: r.Run, TaskID: r.Task, Reason: "no such task instance"}
		case err != nil:
			return err
		case state != r.State && state != r.From:
			return &ConflictError{Run: r.Run, TaskID: r.Task, Reason: fmt.Sprintf("not in state %s (it is %s)", r.From, state)}
		}
	}
	return &ConflictError{Reason: "a task instance changed concurrently"}
}

// xcomStep stores a batch's results.
func xcomStep(xs []storage.Result) (step, error) {
	rows := make([]tiRow, 0, len(xs))
	for _, x := range xs {
		var v bytes.Buffer
		if err := json.Compact(&v, x.Value); err != nil {
			return step{}, fmt.Errorf("result of task %q is not valid JSON: %w", x.TaskID, err)
		}
		rows = append(rows, tiRow{Run: x.Run, Task: x.TaskID, Value: v.String()})
	}
	js, err := json.Marshal(rows)
	if err != nil {
		return step{}, err
	}
	return step{q: bulkXCom, args: []any{string(js)}, want: -1, what: "store results"}, nil
}
