package health

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/flock"
)

// Whether the checker runs, as read-back (dump) reports it: the checker holds an exclusive flock on LockFile in its
// state directory for as long as it runs, and a reader tries a non-blocking shared lock on it — it gets it only when
// no checker holds it. The kernel drops the lock with the process however it ends (SIGKILL, a crash, an OOM kill), so
// a dead checker never reads as running, and no pid file can go stale or name a recycled pid.

// LockFile is the checker's lock, in StateDir.
const LockFile = "checker.lock"

// startWait bounds how long a starting checker waits for the lock: a reader holds it for microseconds, so only
// another running checker holds it longer.
const startWait = 2 * time.Second

// HoldRunning takes the checker's lock at path (creating its directory and file) and returns the file holding it:
// closed (or the process ending) releases it. Another checker holding it is an error naming the file: two checkers
// would each depool and restore on their own.
func HoldRunning(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("creating the checker's state directory: %v", err)
	}
	f, err := flock.Exclusive(path, "the checker's lock", time.Now().Add(startWait))
	if held := (*flock.HeldError)(nil); errors.As(err, &held) {
		return nil, fmt.Errorf("another ipvs-helper health is running here (it holds %s): stop it first, only one checker may change the kernel", held.Path)
	}
	return f, err
}

// Running tells whether a checker holds the lock at path. No file: none ever ran here (or its state was wiped).
func Running(path string) (bool, error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if errors.Is(err, syscall.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("opening the checker's lock %s: %v", path, err)
	}
	defer syscall.Close(fd)
	for {
		err = syscall.Flock(fd, syscall.LOCK_SH|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	switch {
	case err == nil:
		return false, nil // got it: nobody holds it (closing fd releases it)
	case errors.Is(err, syscall.EWOULDBLOCK):
		return true, nil
	default:
		return false, fmt.Errorf("locking %s: %v", path, err)
	}
}
