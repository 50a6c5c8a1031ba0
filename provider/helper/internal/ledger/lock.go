package ledger

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// lockPoll is how often a held lock is tried again until the deadline.
const lockPoll = 20 * time.Millisecond

// lock takes flock(LOCK_EX) on LockPath, waiting until deadline at most.
func lock(deadline time.Time) (*os.File, error) {
	// O_NOFOLLOW: a symlink planted at the lock path must not make root create or lock another file.
	fd, err := syscall.Open(LockPath, syscall.O_RDWR|syscall.O_CREAT|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the ledger lock %s failed: %v", LockPath, err)
	}
	f := os.NewFile(uintptr(fd), LockPath)
	start := time.Now()
	for {
		err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("locking %s failed: %v", LockPath, err)
		}
		if !time.Now().Add(lockPoll).Before(deadline) {
			f.Close()
			return nil, fmt.Errorf("another ipvs-helper held %s for %s, longer than this request may wait; nothing was changed (try again when it is done)",
				LockPath, time.Since(start).Round(time.Millisecond))
		}
		time.Sleep(lockPoll)
	}
}
