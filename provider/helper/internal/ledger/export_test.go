package ledger

import (
	"os"
	"slices"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
)

// FailSyncForTest makes the fsync of every written temp file fail until the returned function is called.
func FailSyncForTest(err error) (restore func()) {
	saved := syncFile
	syncFile = func(*os.File) error { return err }
	return func() { syncFile = saved }
}

// FreshEncodeForTest is owner's stack file as a fresh load encodes it, every record rendered anew (nil: no stack).
func FreshEncodeForTest(owner string) ([]byte, error) {
	l, err := Load()
	if err != nil || l.stacks[owner] == nil {
		return nil, err
	}
	return l.stacks[owner].encode(nil), nil
}

// InOrderForTest tells whether the stack's records are in ipvsadm's order.
func (s *Stack) InOrderForTest() bool {
	return slices.IsSortedFunc(s.svcLines.order, func(a, b *line[ipvs.ServiceKey]) int { return cmpKeys(a.key, b.key) }) &&
		slices.IsSortedFunc(s.destLines.order, func(a, b *line[DestID]) int { return cmpDestIDs(a.key, b.key) })
}
