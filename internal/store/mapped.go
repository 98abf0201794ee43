package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/trellisdag/trellis/storage"
	"github.com/trellisdag/trellis/task"
)

// Expansion is storage.Expansion.
type Expansion = storage.Expansion

// instanceRange is the range of task ids that holds exactly the mapped
// instances of taskID ("id[0]", "id[1]", ...): task ids never contain '[' or '\'.
func instanceRange(taskID string) (lo, hi string) { return taskID + "[", taskID + `\` }

func applyExpansion(ctx context.Context, tx *sql.Tx, e Expansion) error {
	conflict := func(reason string) error { return &ConflictError{Run: e.Run, TaskID: e.TaskID, Reason: reason} }
	if e.Count == 0 {
		// The task's own row comes back for the scheduler to skip or fail.
		if _, err := tx.ExecContext(ctx, `INSERT INTO task_instances (run, task_id, state, max_tries) VALUES (?, ?, 'none', ?)
			ON CONFLICT (run, task_id) DO NOTHING`, e.Run, e.TaskID, max(e.MaxTries, 1)); err != nil {
			return fmt.Errorf("unexpand task %q in run #%d: %w", e.TaskID, e.Run, err)
		}
	}
	if e.Count > 0 {
		if _, err := tx.ExecContext(ctx, `DELETE FROM task_instances WHERE run = ? AND task_id = ? AND state = 'none'`, e.Run, e.TaskID); err != nil {
			return fmt.Errorf("expand task %q in run #%d: %w", e.TaskID, e.Run, err)
		}
		var state string
		err := tx.QueryRowContext(ctx, `SELECT state FROM task_instances WHERE run = ? AND task_id = ?`, e.Run, e.TaskID).Scan(&state)
		if err == nil {
			return conflict(fmt.Sprintf("cannot expand: its unexpanded instance is %s, not none", state))
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
	}
	lo, hi := instanceRange(e.TaskID)
	rows, err := tx.QueryContext(ctx, `SELECT task_id, state FROM task_instances WHERE run = ? AND task_id >= ? AND task_id < ?`, e.Run, lo, hi)
	if err != nil {
		return fmt.Errorf("expand task %q in run #%d: %w", e.TaskID, e.Run, err)
	}
	have := map[int]task.State{}
	for rows.Next() {
		var id, state string
		if err := rows.Scan(&id, &state); err != nil {
			rows.Close()
			return err
		}
		if base, i := task.ParseInstanceID(id); base == e.TaskID && i >= 0 {
			have[i] = task.State(state)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	type seed struct {
		T string `json:"t"`
		M int    `json:"m"`
	}
	var add []seed
	for i := 0; i < e.Count; i++ {
		id := task.InstanceID(e.TaskID, i)
		switch st, ok := have[i]; {
		case !ok:
			add = append(add, seed{id, e.MaxTries})
		case st == task.StateRemoved:
			if _, err := tx.ExecContext(ctx, `UPDATE task_instances SET state = 'none', max_tries = try_number + ?, next_retry_at = NULL, error = ''
				WHERE run = ? AND task_id = ? AND state = 'removed'`, e.MaxTries, e.Run, id); err != nil {
				return fmt.Errorf("restore %q in run #%d: %w", id, e.Run, err)
			}
		}
	}
	if len(add) > 0 {
		b, err := json.Marshal(add)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO task_instances (run, task_id, state, max_tries)
			SELECT CAST(? AS BIGINT), c.value->>'t', 'none', CAST(c.value->>'m' AS BIGINT) FROM json_each(?) AS c WHERE true
			ON CONFLICT (run, task_id) DO NOTHING`, e.Run, string(b)); err != nil {
			return fmt.Errorf("expand task %q in run #%d: %w", e.TaskID, e.Run, err)
		}
	}
	for i, st := range have {
		if i < e.Count || st == task.StateRemoved {
			continue
		}
		id := task.InstanceID(e.TaskID, i)
		if err := task.CheckTransition(st, task.StateRemoved); err != nil || st.Active() || st == task.StateDeferred {
			return &ConflictError{Run: e.Run, TaskID: id, Reason: fmt.Sprintf("past the new list of %d elements but %s", e.Count, st)}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE task_instances SET state = 'removed', next_retry_at = NULL WHERE run = ? AND task_id = ?`, e.Run, id); err != nil {
			return fmt.Errorf("remove %q in run #%d: %w", id, e.Run, err)
		}
	}
	return nil
}

// Instances returns the mapped instances of taskID in a run, by map index
// (removed ones included); none for a task that is not mapped or not yet
// expanded.
func (s *Store) Instances(ctx context.Context, run int64, taskID string) ([]TaskInstance, error) {
	lo, hi := instanceRange(taskID)
	out, err := queryAll(ctx, s.r, scanTI, `SELECT `+tiColumns+` FROM task_instances WHERE run = ? AND task_id >= ? AND task_id < ?`, run, lo, hi)
	if err != nil {
		return nil, fmt.Errorf("instances of task %q in run #%d: %w", taskID, run, err)
	}
	slices.SortFunc(out, func(a, b TaskInstance) int {
		_, i := task.ParseInstanceID(a.TaskID)
		_, j := task.ParseInstanceID(b.TaskID)
		return i - j
	})
	return out, nil
}

// mappedXCom is the result of a mapped task: the JSON array of its instances'
// results by map index (null for an instance that stored none), removed
// instances left out. ok is false when the task has no instances.
func (s *Store) mappedXCom(ctx context.Context, run int64, taskID string) ([]byte, bool, error) {
	lo, hi := instanceRange(taskID)
	rows, err := s.r.QueryContext(ctx, `SELECT t.task_id, x.value FROM task_instances AS t
		LEFT JOIN xcom AS x ON x.run = t.run AND x.task_id = t.task_id
		WHERE t.run = ? AND t.task_id >= ? AND t.task_id < ? AND t.state != 'removed'`, run, lo, hi)
	if err != nil {
		return nil, false, fmt.Errorf("result of mapped task %q in run #%d: %w", taskID, run, err)
	}
	defer rows.Close()
	type elem struct {
		i int
		v []byte
	}
	var es []elem
	for rows.Next() {
		var id string
		var v []byte
		if err := rows.Scan(&id, &v); err != nil {
			return nil, false, err
		}
		_, i := task.ParseInstanceID(id)
		es = append(es, elem{i, v})
	}
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	if len(es) == 0 {
		return nil, false, nil
	}
	slices.SortFunc(es, func(a, b elem) int { return a.i - b.i })
	n := 2
	for _, e := range es {
		n += len(e.v) + 5
	}
	out := make([]byte, 0, n)
	out = append(out, '[')
	for k, e := range es {
		if k > 0 {
			out = append(out, ',')
		}
		if len(e.v) == 0 {
			out = append(out, "null"...)
		} else {
			out = append(out, e.v...)
		}
	}
	return append(out, ']'), true, nil
}
