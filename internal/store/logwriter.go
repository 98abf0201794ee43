package store

import (
	"context"
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
func (s *Store) TryLog(run int64, taskID string, try int) io.WriteCloser {
	return &tryLog{s: s, run: run, task: taskID, try: try}
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
}

func (l *tryLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, io.ErrClosedPipe
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
	return len(p), nil
}

func (l *tryLog) flushLocked() {
	if len(l.buf) == 0 {
		return
	}
	if err := l.s.AppendLog(context.Background(), l.run, l.task, l.try, l.buf); err != nil && l.err == nil {
		l.err = err
	}
	l.buf = l.buf[:0]
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
