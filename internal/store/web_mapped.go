package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/trellisdag/trellis/storage"
	"github.com/trellisdag/trellis/task"
)

// This file holds the read-only queries the web server needs for mapped
// tasks: a page of a mapped task's instances, their counts by state, and the
// grid's per-task summary of many runs, each computed by SQLite so that a
// mapped task of many instances costs one row per state, not one per
// instance.

// InstancesPage returns at most limit mapped instances of taskID in a run,
// by map index, skipping the first offset (removed ones included, as
// Instances). An instance id is taskID followed by "[k]": within the range of
// one task, ordering by length then text is ordering by k.
func (s *Store) InstancesPage(ctx context.Context, run int64, taskID string, offset, limit int) ([]TaskInstance, error) {
	lo, hi := instanceRange(taskID)
	out, err := queryAll(ctx, s.r, scanTI, `SELECT `+tiColumns+` FROM task_instances WHERE run = ? AND task_id >= ? AND task_id < ?
		ORDER BY length(task_id), task_id LIMIT ? OFFSET ?`, run, lo, hi, limit, offset)
	if err != nil {
		return nil, fmt.Errorf("instances of task %q in run #%d: %w", taskID, run, err)
	}
	return out, nil
}

// InstanceCounts counts the mapped instances of taskID in a run by state.
func (s *Store) InstanceCounts(ctx context.Context, run int64, taskID string) (map[task.State]int, error) {
	lo, hi := instanceRange(taskID)
	rows, err := s.r.QueryContext(ctx, `SELECT state, count(*) FROM task_instances WHERE run = ? AND task_id >= ? AND task_id < ?
		GROUP BY state`, run, lo, hi)
	if err != nil {
		return nil, fmt.Errorf("count instances of task %q in run #%d: %w", taskID, run, err)
	}
	defer rows.Close()
	out := map[task.State]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("count instances of task %q in run #%d: %w", taskID, run, err)
		}
		out[task.State(st)] = n
	}
	return out, rows.Err()
}

// GridCell is storage.GridCell.
type GridCell = storage.GridCell

// GridCells returns the grid's cells of the given runs: every task instance
// of a task that is not mapped, and the instances of mapped tasks grouped by
// task and state, in one query.
func (s *Store) GridCells(ctx context.Context, runs []int64) ([]GridCell, error) {
	if len(runs) == 0 {
		return nil, nil
	}
	args := make([]any, len(runs))
	for i, r := range runs {
		args[i] = r
	}
	rows, err := s.r.QueryContext(ctx, `SELECT run, base, mapped, state, max(try_number), count(*) FROM (
			SELECT run, state, try_number,
				CASE WHEN instr(task_id, '[') > 0 THEN substr(task_id, 1, instr(task_id, '[') - 1) ELSE task_id END AS base,
				instr(task_id, '[') > 0 AS mapped
			FROM task_instances WHERE run IN (?`+strings.Repeat(",?", len(runs)-1)+`))
		GROUP BY run, base, mapped, state`, args...)
	if err != nil {
		return nil, fmt.Errorf("grid cells of %d runs: %w", len(runs), err)
	}
	defer rows.Close()
	var out []GridCell
	for rows.Next() {
		var c GridCell
		var st string
		if err := rows.Scan(&c.Run, &c.TaskID, &c.MapIndexed, &st, &c.Try, &c.Count); err != nil {
			return nil, fmt.Errorf("grid cells of %d runs: %w", len(runs), err)
		}
		c.State = task.State(st)
		out = append(out, c)
	}
	return out, rows.Err()
}
