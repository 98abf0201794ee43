package store

import (
	"errors"
	"fmt"
	"os"
	"syscall"

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
		return pgLock(path, false)
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
		return pgLock(path, true)
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
