package ledger

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/flock"
)

// lock takes flock(LOCK_EX) on LockPath, waiting until deadline at most.
func lock(deadline time.Time) (*os.File, error) {
	f, err := flock.Exclusive(LockPath, "the ledger lock", deadline)
	if held := (*flock.HeldError)(nil); errors.As(err, &held) {
		return nil, fmt.Errorf("another ipvs-helper held %s for %s, longer than this request may wait; nothing was changed (try again when it is done)",
			held.Path, held.Waited)
	}
	return f, err
}
