//go:build linux

package ledger

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"syscall"
)

// changeMask is every way a request changes the stacks directory: stack files appended to by whole lines, replaced
// by rename (a temp file created, written, moved in) or removed; and IN_ATTRIB, since an owner or mode change alters
// what refresh trusts.
const changeMask = syscall.IN_MODIFY | syscall.IN_CLOSE_WRITE | syscall.IN_MOVED_TO | syscall.IN_MOVED_FROM |
	syscall.IN_CREATE | syscall.IN_DELETE | syscall.IN_ATTRIB

// lostMask ends a watch: events were dropped (queue overflow), or the watch no longer sees the directory at
// stacksDir() (removed, moved away: a watch follows the inode, not the path; unmounted).
const lostMask = syscall.IN_Q_OVERFLOW | syscall.IN_IGNORED | syscall.IN_DELETE_SELF | syscall.IN_MOVE_SELF | syscall.IN_UNMOUNT

// Watch watches the ledger's stacks directory with inotify, so that the health checker re-reads the ledger when it
// changes rather than every second. The channel receives a value after changes (a burst coalesces into one: it holds
// one at most) and is closed when the watch is lost or ctx ends, its file descriptor closed with it. An error (no
// inotify, no stacks directory yet) means no watch.
func Watch(ctx context.Context) (<-chan struct{}, error) {
	fd, err := syscall.InotifyInit1(syscall.IN_NONBLOCK | syscall.IN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("inotify is unavailable: %v", err)
	}
	// IN_DONT_FOLLOW, IN_ONLYDIR: never what a symbolic link points to (refresh refuses one anyway).
	if _, err := syscall.InotifyAddWatch(fd, stacksDir(), changeMask|syscall.IN_DELETE_SELF|syscall.IN_MOVE_SELF|
		syscall.IN_DONT_FOLLOW|syscall.IN_ONLYDIR); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("watching %s failed: %v", stacksDir(), err)
	}
	// Non-blocking, so the read below parks on Go's poller (no thread, no CPU) and Close from ctx's end wakes it.
	f := os.NewFile(uintptr(fd), "inotify")
	ch := make(chan struct{}, 1)
	stop := context.AfterFunc(ctx, func() { f.Close() })
	go func() {
		defer close(ch)
		defer stop()
		defer f.Close()
		buf := make([]byte, 4096) // more than one event with the longest name (16 + 256 bytes)
		for {
			n, err := f.Read(buf)
			if err != nil {
				return // closed at ctx's end, or broken: no watch either way
			}
			for off := 0; off+syscall.SizeofInotifyEvent <= n; {
				if binary.NativeEndian.Uint32(buf[off+4:])&lostMask != 0 { // inotify_event: wd, mask, cookie, len, name
					return
				}
				off += syscall.SizeofInotifyEvent + int(binary.NativeEndian.Uint32(buf[off+12:]))
			}
			select {
			case ch <- struct{}{}:
			default: // one is pending already
			}
		}
	}()
	return ch, nil
}
