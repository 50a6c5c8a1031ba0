package ledger

import (
	"os"
	"syscall"
)

// fileID tells whether a stack file changed since this process read or wrote it: helpers replace files by rename
// (a new inode), and a write in place changes the size or the times.
type fileID struct {
	dev, ino     uint64
	size         int64
	mtime, ctime int64 // ns
}

func fileIDOf(fi os.FileInfo) fileID {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}
	}
	return fileID{dev: uint64(st.Dev), ino: uint64(st.Ino), size: st.Size, mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano()}
}
