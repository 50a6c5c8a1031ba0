// Package flock takes an exclusive flock(2) on a file, waiting for it until a deadline: the ledger's lock (held for
// every request with an owner) and the health checker's (held while a checker runs) are waited for the same way.
package flock

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// poll is how often a held lock is tried again until the deadline: flock has no timed wait, and a blocking one in a
// goroutine could not be given up on.
const poll = 20 * time.Millisecond

// HeldError is a lock another process held until the deadline: what timed out (the wait, and how long it took) and
// where (the lock file). Callers say what the holder is and what to do.
type HeldError struct {
	Path   string
	Waited time.Duration
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("%s was held by another process for %s, past the deadline", e.Path, e.Waited)
}

// Exclusive opens path (created 0600) and takes flock(LOCK_EX) on it, trying again until deadline at most; the file
// returned holds the lock until it is closed or the process ends. what names the lock in errors ("the ledger lock").
// Still held when the next try would be past deadline: a *HeldError.
func Exclusive(path, what string, deadline time.Time) (*os.File, error) {
	// O_NOFOLLOW: a symlink planted at the lock path must not make root create or lock another file.
	fd, err := syscall.Open(path, syscall.O_RDWR|syscall.O_CREAT|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening %s %s failed: %v", what, path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	start := time.Now()
	for {
		err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("locking %s failed: %v", path, err)
		}
		if !time.Now().Add(poll).Before(deadline) {
			f.Close()
			return nil, &HeldError{Path: path, Waited: time.Since(start).Round(time.Millisecond)}
		}
		time.Sleep(poll)
	}
}
