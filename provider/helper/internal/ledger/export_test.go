package ledger

import "os"

// FailSyncForTest makes the fsync of every written temp file fail until the returned function is called.
func FailSyncForTest(err error) (restore func()) {
	saved := syncFile
	syncFile = func(*os.File) error { return err }
	return func() { syncFile = saved }
}
