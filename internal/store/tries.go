package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/trellisdag/trellis/task"
)

// InterruptedStreak counts the latest ended tries of a task instance whose
// error starts with prefix, one after the other (the tries a crash of the
// runner interrupted in a row); tries still in flight are passed over.
func (s *Store) InterruptedStreak(ctx context.Context, run int64, taskID, prefix string) (int, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT state, error FROM task_tries WHERE run = ? AND task_id = ? ORDER BY try_number DESC`, run, taskID)
	if err != nil {
		return 0, fmt.Errorf("tries of task %q: %w", taskID, err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var state, msg string
		if err := rows.Scan(&state, &msg); err != nil {
			return 0, err
		}
		if task.State(state).Active() {
			continue
		}
		if !strings.HasPrefix(msg, prefix) {
			break
		}
		n++
	}
	return n, rows.Err()
}
