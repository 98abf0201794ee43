package store

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"sync"
	"time"
)

// LogFlushInterval is how long written log output may wait in memory before it is
// appended to the database, so that readers can follow a running try's log.
const LogFlushInterval = 200 * time.Millisecond

const logChunk = 32 << 10

// TryLog returns a writer that appends to a try's log. Output is buffered and
// appended in chunks: when 32 KiB are pending, LogFlushInterval after the first
// pending byte, and on Close. It is safe for concurrent use (a child process's
// stdout and stderr may share it).
//
// The log is bounded by Options.MaxLogBytes: the first half of the limit is
// kept as written (the head); past it, a marker line follows the head and only
// the latest half of the limit is kept after it (the tail: older tail chunks
// are deleted as new ones come), and at Close the marker says how many bytes
// were dropped and how to keep more. Readers following a running try see the
// head, the marker and the tail as they are at that moment. A writer for a try
// that already has a log (a restarted runner resuming a pod's log) counts
// what is there as head.
func (s *Store) TryLog(run int64, taskID string, try int) io.WriteCloser {
	return &tryLog{s: s, run: run, task: taskID, try: try, limit: s.logMax}
}

type tryLog struct {
	s    *Store
	run  int64
	task string
	try  int

	mu     sync.Mutex
	buf    []byte
	timer  *time.Timer
	err    error
	closed bool

	limit      int64   // 0: unbounded
	started    bool    // the rows already there were counted
	written    int64   // bytes given to Write
	headChunks int     // rows of the head (every row before the marker)
	marked     bool    // the marker row follows the head
	tail       []int64 // sizes of the tail's rows, oldest first
	tailBytes  int64
	dropped    int64 // bytes dropped so far
	shown      int64 // bytes dropped as the marker row says
}

func (l *tryLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, io.ErrClosedPipe
	}
	n := len(p)
	if l.limit > 0 && !l.marked {
		if !l.started {
			l.start()
		}
		if room := l.limit/2 - l.written; int64(len(p)) > room {
			// The head fills up here: flush it, then the marker, then the tail.
			head := p[:max(room, 0)]
			l.buf = append(l.buf, head...)
			l.written += int64(len(head))
			l.flushLocked()
			l.mark()
			p = p[len(head):]
		}
	}
	l.written += int64(len(p))
	if l.marked {
		// The tail never holds more than half the limit, buffer included: what
		// a long write pushes out of it is dropped before it is stored.
		half := int(l.limit / 2)
		if len(p) > half {
			l.dropped += int64(len(l.buf) + len(p) - half)
			l.buf, p = l.buf[:0], p[len(p)-half:]
		} else if over := len(l.buf) + len(p) - half; over > 0 {
			l.dropped += int64(over)
			l.buf = append(l.buf[:0], l.buf[over:]...)
		}
	}
	l.buf = append(l.buf, p...)
	if len(l.buf) >= logChunk {
		l.flushLocked()
	} else if l.timer == nil {
		l.timer = time.AfterFunc(LogFlushInterval, func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.timer = nil
			l.flushLocked()
		})
	}
	return n, nil
}

// start counts the rows the try's log already has as head.
func (l *tryLog) start() {
	l.started = true
	err := l.s.r.QueryRowContext(context.Background(), `SELECT count(*), coalesce(sum(length(data)), 0) FROM task_logs
		WHERE run = ? AND task_id = ? AND try_number = ?`, l.run, l.task, l.try).Scan(&l.headChunks, &l.written)
	if err != nil && l.err == nil {
		l.err = fmt.Errorf("log of task %q try %d: %w", l.task, l.try, err)
	}
}

// marker is the line between the head and the tail.
func (l *tryLog) marker() []byte {
	if l.dropped == 0 {
		return fmt.Appendf(nil, "\n[trellis: this log reached half its limit of %d bytes; past here only the last %d bytes are kept]\n",
			l.limit, l.limit/2)
	}
	return fmt.Appendf(nil, "\n[trellis: %d bytes of this log were dropped here: it is limited to %d bytes, the first and the last half kept "+
		"(store.Options.MaxLogBytes, runner.Config.MaxLogBytes; default %d)]\n", l.dropped, l.limit, DefaultMaxLogBytes)
}

func (l *tryLog) mark() {
	l.marked = true
	if err := l.s.AppendLog(context.Background(), l.run, l.task, l.try, l.marker()); err != nil && l.err == nil {
		l.err = err
	}
}

func (l *tryLog) flushLocked() {
	if len(l.buf) == 0 {
		return
	}
	if err := l.s.AppendLog(context.Background(), l.run, l.task, l.try, l.buf); err != nil && l.err == nil {
		l.err = err
	}
	// AppendLog stores the buffer as rows of at most logChunk bytes.
	switch {
	case l.limit == 0:
	case !l.marked:
		l.headChunks += (len(l.buf) + logChunk - 1) / logChunk
	default:
		for d := l.buf; len(d) > 0; d = d[min(len(d), logChunk):] {
			l.tail = append(l.tail, int64(min(len(d), logChunk)))
		}
		l.tailBytes += int64(len(l.buf))
		l.trim()
	}
	l.buf = l.buf[:0]
}

// trim deletes the oldest tail rows while the tail is over half the limit
// (the newest row always stays), and rewrites the marker with the count of
// bytes dropped when it changed.
func (l *tryLog) trim() {
	n := 0
	for n < len(l.tail)-1 && l.tailBytes > l.limit/2 {
		l.tailBytes -= l.tail[n]
		l.dropped += l.tail[n]
		n++
	}
	if n == 0 && l.dropped == l.shown {
		return
	}
	l.tail = l.tail[n:]
	l.shown = l.dropped
	ctx := context.Background()
	// Rows of this try in order: the head, the marker, then the tail.
	err := l.s.tx(ctx, func(tx *sql.Tx) error {
		if n > 0 {
			if _, err := tx.ExecContext(ctx, `DELETE FROM task_logs WHERE id IN (SELECT id FROM task_logs
				WHERE run = ? AND task_id = ? AND try_number = ? ORDER BY id LIMIT ? OFFSET ?)`,
				l.run, l.task, l.try, n, l.headChunks+1); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `UPDATE task_logs SET data = ? WHERE id = (SELECT id FROM task_logs
			WHERE run = ? AND task_id = ? AND try_number = ? ORDER BY id LIMIT 1 OFFSET ?)`,
			l.marker(), l.run, l.task, l.try, l.headChunks)
		return err
	})
	if err != nil && l.err == nil {
		l.err = fmt.Errorf("log of task %q try %d: drop its middle: %w", l.task, l.try, err)
	}
}

// Close appends what is pending and returns the first error met while appending.
func (l *tryLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return l.err
	}
	l.closed = true
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	l.flushLocked()
	return l.err
}
