package store

import (
	"context"
	"fmt"
	"math"
)

// LogPageBefore returns the part of a try's log that ends just before the
// chunk position before (0: the end of the log), at most about maxBytes (at
// least one chunk): the tail, or an earlier page for a reader that scrolls
// back. first is the position of its first chunk (pass it as before for the
// page before); more says whether earlier chunks exist; last is the position
// of its last chunk (pass it to LogPage as after to follow what comes next).
func (s *Store) LogPageBefore(ctx context.Context, run int64, taskID string, try int, before int64, maxBytes int) (data []byte, first, last int64, more bool, err error) {
	if before <= 0 {
		before = math.MaxInt64
	}
	rows, err := s.r.QueryContext(ctx, `SELECT id, data FROM task_logs WHERE run = ? AND task_id = ? AND try_number = ? AND id < ?
		ORDER BY id DESC`, run, taskID, try, before)
	if err != nil {
		return nil, 0, 0, false, fmt.Errorf("log of task %q try %d: %w", taskID, try, err)
	}
	defer rows.Close()
	var chunks [][]byte
	n := 0
	for rows.Next() {
		var id int64
		var c []byte
		if err := rows.Scan(&id, &c); err != nil {
			return nil, 0, 0, false, err
		}
		if len(chunks) > 0 && n+len(c) > maxBytes {
			more = true
			break
		}
		if last == 0 {
			last = id
		}
		chunks = append(chunks, c)
		first = id
		n += len(c)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, 0, false, err
	}
	data = make([]byte, 0, n)
	for i := len(chunks) - 1; i >= 0; i-- {
		data = append(data, chunks[i]...)
	}
	return data, first, last, more, nil
}

// LogTail returns the end of a try's log, at most max bytes (from a line start
// when one is in reach): the pages LogPageBefore reads back from the end,
// until they hold max bytes.
func (s *Store) LogTail(ctx context.Context, run int64, taskID string, try, max int) ([]byte, error) {
	out, first, _, more, err := s.LogPageBefore(ctx, run, taskID, try, 0, max)
	for err == nil && more && len(out) < max {
		var page []byte
		page, first, _, more, err = s.LogPageBefore(ctx, run, taskID, try, first, max-len(out))
		out = append(page, out...)
	}
	if err != nil {
		return nil, err
	}
	if len(out) > max {
		out = out[len(out)-max:]
		for i, b := range out {
			if b == '\n' && i < len(out)-1 {
				out = out[i+1:]
				break
			}
		}
	}
	return out, nil
}
