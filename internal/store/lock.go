package store

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/trellisdag/trellis/storage"
)

// ErrLocked is returned by Lock when another process holds the scheduler lock.
var ErrLocked = storage.ErrLocked

// Lock takes the scheduler lock of the database at path: an exclusive flock on the
// file (SQLite itself uses fcntl locks, which flock does not disturb), or for a
// PostgreSQL DSN a session advisory lock of the store's schema, held by a
// connection of its own. Only the holder schedules runs. It does not wait: a held
// lock is ErrLocked. The lock is released by the returned function, or when the
// process dies.
func Lock(path string) (unlock func() error, err error) {
	if IsPostgres(path) {
		return pgLock(path, false, nil)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %q: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%q: %w", path, ErrLocked)
		}
		return nil, fmt.Errorf("lock %q: %w", path, err)
	}
	return func() error {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		return f.Close()
	}, nil
}

// WaitLock takes the scheduler lock, waiting for the holder to release it.
func WaitLock(path string) (unlock func() error, err error) {
	if IsPostgres(path) {
		return pgLock(path, true, nil)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %q: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %q: %w", path, err)
	}
	return func() error {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		return f.Close()
	}, nil
}

// LockCheckInterval is how often a held PostgreSQL scheduler lock's connection
// is checked (Hold): its loss is noticed within about this long.
const LockCheckInterval = time.Second

// Held is a scheduler lock this process holds (Hold).
type Held struct {
	unlock func() error
	lost   chan struct{}
}

// Lost is closed when the lock is lost while held: the PostgreSQL connection
// that holds it died, so the server has released it and another process may
// take it. The holder must stop scheduling. A flock is never lost.
func (h *Held) Lost() <-chan struct{} { return h.lost }

// Unlock releases the lock.
func (h *Held) Unlock() error { return h.unlock() }

// Hold takes the scheduler lock as Lock does (ErrLocked when another process
// holds it) and watches it: Lost says when it is gone.
func Hold(path string) (*Held, error) {
	h := &Held{lost: make(chan struct{})}
	var err error
	if IsPostgres(path) {
		h.unlock, err = pgLock(path, false, h.lost)
	} else {
		h.unlock, err = Lock(path)
	}
	if err != nil {
		return nil, err
	}
	return h, nil
}

// Redact returns a database fit for a message: a PostgreSQL DSN with its
// password hidden (as Store.Path), a file path as it is.
func Redact(db string) string {
	if !IsPostgres(db) {
		return db
	}
	return redactDSN(db)
}
