package ledger

import (
	"os"
	"slices"
	"time"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
)

// FailSyncForTest makes the fsync of every written temp file fail until the returned function is called.
func FailSyncForTest(err error) (restore func()) {
	saved := syncFile
	syncFile = func(*os.File) error { return err }
	return func() { syncFile = saved }
}

// FreshEncodeForTest is owner's stack file as a fresh load rewrites it, every record rendered anew (nil: no stack).
func FreshEncodeForTest(owner string) ([]byte, error) {
	l, err := Load()
	if err != nil {
		return nil, err
	}
	return l.EncodeForTest(owner), nil
}

// EncodeForTest is owner's stack file as this ledger would rewrite it from its lines (nil: no records).
func (l *Ledger) EncodeForTest(owner string) []byte {
	if s := l.stacks[owner]; s != nil && !s.empty() {
		return s.encode(nil)
	}
	return nil
}

// CompactAtForTest sets how many bytes of change lines a small file may carry (see compactAt) for one test.
func CompactAtForTest(t interface{ Cleanup(func()) }, n int) int {
	saved := compactAt
	compactAt = n
	t.Cleanup(func() { compactAt = saved })
	return n
}

// ChangeLinesForTest is the size of owner's snapshot and of the change lines after it, as a fresh load reads them.
func ChangeLinesForTest(owner string) (snap, changeBytes int, err error) {
	l, err := Load()
	if err != nil || l.stacks[owner] == nil {
		return 0, 0, err
	}
	return l.stacks[owner].snap, l.stacks[owner].changeBytes, nil
}

// InOrderForTest tells whether the stack's records are in ipvsadm's order.
func (s *Stack) InOrderForTest() bool {
	return slices.IsSortedFunc(s.svcLines.order, func(a, b *line[ipvs.ServiceKey]) int { return cmpKeys(a.key, b.key) }) &&
		slices.IsSortedFunc(s.destLines.order, func(a, b *line[DestID]) int { return cmpDestIDs(a.key, b.key) })
}

// FailRemoveDirForTest makes removing a state directory fail with err for one test (as rmdir of a mount point does).
func FailRemoveDirForTest(t interface{ Cleanup(func()) }, err error) {
	saved := removeDir
	removeDir = func(string) error { return err }
	t.Cleanup(func() { removeDir = saved })
}

// LoadProblemForTest is Load's error, or else the first stack file the load could not read.
func LoadProblemForTest() error {
	l, err := Load()
	if err != nil {
		return err
	}
	return firstUnreadable(l)
}

// OpenProblemForTest is Open's error, or else the first stack file it could not read (the lock is released).
func OpenProblemForTest(prev *Ledger) error {
	l, err := Open(time.Now().Add(time.Second), prev)
	if err != nil {
		return err
	}
	defer l.Close()
	return firstUnreadable(l)
}

func firstUnreadable(l *Ledger) error {
	if list := l.Unreadable(); len(list) > 0 {
		return list[0]
	}
	return nil
}
