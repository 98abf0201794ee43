package store

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
)

// Log chunks of all running tries are appended by one goroutine, which writes
// whatever is queued in one transaction (group commit), so many tries that print
// at once cost one commit, not one each.

type logReq struct {
	run  int64
	task string
	try  int
	data []byte
	done chan error
}

type logRow struct {
	Run  int64  `json:"r"`
	Task string `json:"t"`
	Try  int    `json:"n"`
	Data string `json:"d"` // hex
}

const maxLogBatch = 256

func (s *Store) startLogAppender() {
	s.logs = make(chan logReq, maxLogBatch)
	s.logsDone = make(chan struct{})
	go func() {
		defer close(s.logsDone)
		for req := range s.logs {
			batch := []logReq{req}
		drain:
			for len(batch) < maxLogBatch {
				select {
				case r, ok := <-s.logs:
					if !ok {
						break drain
					}
					batch = append(batch, r)
				default:
					break drain
				}
			}
			err := s.writeLogs(batch)
			for _, r := range batch {
				r.done <- err
			}
		}
	}()
}

func (s *Store) writeLogs(batch []logReq) error {
	rows := make([]logRow, 0, len(batch))
	for _, r := range batch {
		for d := r.data; len(d) > 0; d = d[min(len(d), logChunk):] {
			rows = append(rows, logRow{r.run, r.task, r.try, hex.EncodeToString(d[:min(len(d), logChunk)])})
		}
	}
	s.stats.logCommits.Add(1)
	ctx := context.Background()
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := s.execJSON(ctx, tx, bulkInsertLogs, rows)
		return err
	})
}

// errClosed is returned by AppendLog after Close.
var errClosed = errors.New("store is closed")

// AppendLog appends a chunk to a try's log and returns once it is committed.
func (s *Store) AppendLog(ctx context.Context, run int64, taskID string, try int, data []byte) (err error) {
	if len(data) == 0 {
		return nil
	}
	if s.logs == nil {
		return errors.New("store is read-only")
	}
	defer func() {
		if recover() != nil { // the appender was closed
			err = errClosed
		}
	}()
	done := make(chan error, 1)
	s.logs <- logReq{run, taskID, try, append([]byte(nil), data...), done}
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("append log of task %q try %d: %w", taskID, try, err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
