package health

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"
	"unsafe"
)

// sockConn is a probe's TCP connection: a nonblocking socket in Go's poller (an *os.File), opened by connect. It
// does less per probe than net.Dialer, which matters at thousands of probes a second on a small director: no
// resolver, no keep-alive and no-delay options, no local/remote address lookups after connecting (about half the
// system calls of a net.Dial + Close), and no goroutine per dial.
//
// Its reads take what already arrived even past the deadline: on a starved CPU a probe can be scheduled only after
// its deadline although the answer came in time, and Go's poller refuses any read once the deadline has passed;
// such a probe is not a failure of the real server.
type sockConn struct {
	*os.File
	raddr net.Addr
}

// connect opens a TCP connection to target by deadline. A connection that completed by the time the probe looks,
// however late, counts: see sockConn.
func connect(target netip.AddrPort, deadline time.Time) (*sockConn, error) {
	fd, inProgress, err := openProbe(target)
	if err != nil {
		return nil, err
	}
	c := &sockConn{File: os.NewFile(uintptr(fd), "probe"), raddr: net.TCPAddrFromAddrPort(target)}
	c.SetDeadline(deadline)
	if !inProgress {
		return c, nil
	}
	rc, err := c.SyscallConn()
	if err != nil {
		c.Close()
		return nil, err
	}
	// Asked before each wait, the first time too: the poller forgets a readiness that came before the wait began
	// (RawWrite resets it), so a connection made meanwhile is seen only by asking.
	var result error
	wait := rc.Write(func(fd uintptr) bool { return connected(fd, &result) })
	if wait != nil {
		// The deadline: it may have passed while the connection was long established (a late probe), so look once.
		done := false
		if rc.Control(func(fd uintptr) { done = connected(fd, &result) }) != nil || !done {
			c.Close()
			return nil, os.ErrDeadlineExceeded
		}
	}
	if result != nil {
		c.Close()
		return nil, result
	}
	return c, nil
}

// openProbe opens a probe's socket and starts its connection to target: inProgress while the handshake goes on.
// An error (the socket then closed) when none could be had or the connection failed at once (refused, unreachable).
func openProbe(target netip.AddrPort) (fd int, inProgress bool, err error) {
	family, sa, salen := sockaddrOf(target)
	if fd, err = probeSocket(family, syscall.SOCK_STREAM); err != nil {
		return -1, false, errors.New("no socket for the probe: " + err.Error()) // EMFILE: more probes than the fd limit
	}
	// Closed with a reset, as HAProxy's checks close: a probe's connection has nothing left to deliver once judged,
	// and a graceful close (keepalived's) left one TIME_WAIT socket per probe on the director for 60 s (2,000 tcp
	// checks a second: 120,000 of them; the lab director's table, 4,096, was full with keepalived at 200), and cost
	// two more packets each.
	//
	// Every system call on a probe's way is raw (no entersyscall): a Go system call wakes the runtime's sysmon
	// thread from its deep sleep, and sysmon then polls, from every 20 µs to every 10 ms, until the checker is idle
	// again. This setsockopt as a Go system call made sysmon wake 3 times as often (BenchmarkRunner tcp × 20: 369
	// against 118 voluntary switches of its thread in 6 s), each wake a thread switch on a small director.
	linger := syscall.Linger{Onoff: 1}
	if _, _, errno := syscall.RawSyscall6(syscall.SYS_SETSOCKOPT, uintptr(fd), syscall.SOL_SOCKET, syscall.SO_LINGER, uintptr(unsafe.Pointer(&linger)), unsafe.Sizeof(linger), 0); errno != 0 {
		closeSocket(fd)
		return -1, false, errors.New("no socket for the probe: " + errno.Error())
	}
	// connect is raw for another reason too: it runs the TCP handshake's first steps in the kernel, long enough on a
	// slow director (software emulation) that Go's sysmon took the P from the thread in syscall.Connect and woke
	// another thread to run it, then the first had to wait for a P back: thread switches on every probe. A
	// nonblocking connect does not block, so nothing needs the P meanwhile.
	_, _, errno := syscall.RawSyscall(syscall.SYS_CONNECT, uintptr(fd), uintptr(sa), salen)
	switch errno {
	case 0:
		return fd, false, nil
	case syscall.EINPROGRESS, syscall.EINTR:
		return fd, true, nil
	}
	closeSocket(fd)
	return -1, false, short(errno) // refused or unreachable at once
}

// sockaddrOf is target as connect(2) takes it: the family, the raw address and its size.
func sockaddrOf(target netip.AddrPort) (family int, sa unsafe.Pointer, salen uintptr) {
	port := target.Port()
	if a := target.Addr().Unmap(); a.Is4() {
		raw := &syscall.RawSockaddrInet4{Family: syscall.AF_INET, Addr: a.As4()}
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&raw.Port))[:], port)
		return syscall.AF_INET, unsafe.Pointer(raw), unsafe.Sizeof(*raw)
	}
	raw := &syscall.RawSockaddrInet6{Family: syscall.AF_INET6, Addr: target.Addr().As16()}
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&raw.Port))[:], port)
	return syscall.AF_INET6, unsafe.Pointer(raw), unsafe.Sizeof(*raw)
}

// Write writes p whole by raw system calls (a probe writes one small request, which the socket's buffer takes at
// once): as for connect, sending on a slow director's TCP stack took long enough in a Go system call that the
// runtime switched threads around it.
func (c *sockConn) Write(p []byte) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	n := 0
	var werr error
	err = rc.Write(func(fd uintptr) bool {
		for n < len(p) {
			m, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[n])), uintptr(len(p)-n))
			switch e {
			case 0:
				n += int(m)
			case syscall.EINTR:
			case syscall.EAGAIN:
				return false // the buffer is full: wait until it is writable
			default:
				werr = e
				return true
			}
		}
		return true
	})
	if werr != nil {
		return n, &os.PathError{Op: "write", Path: "probe", Err: werr}
	}
	if err != nil {
		return n, err
	}
	return n, nil
}

// connected tells whether the nonblocking connect on fd has finished, with its error in *result.
func connected(fd uintptr, result *error) bool {
	if _, err := syscall.Getpeername(int(fd)); err == nil {
		return true
	}
	if errno := soError(int(fd)); errno != 0 {
		*result = short(errno)
		return true
	}
	return false // still in progress
}

// soError is a socket's pending error (SO_ERROR): how its connect ended.
func soError(fd int) syscall.Errno {
	var v int32
	l := uint32(unsafe.Sizeof(v))
	_, _, errno := syscall.RawSyscall6(syscall.SYS_GETSOCKOPT, uintptr(fd), syscall.SOL_SOCKET, syscall.SO_ERROR, uintptr(unsafe.Pointer(&v)), uintptr(unsafe.Pointer(&l)), 0)
	if errno != 0 {
		return errno
	}
	return syscall.Errno(v)
}

// closeSocket closes a probe's socket that is not an *os.File (which also takes it out of an epoll set). With
// SO_LINGER 0 the close sends a reset and returns at once.
func closeSocket(fd int) { syscall.RawSyscall(syscall.SYS_CLOSE, uintptr(fd), 0, 0) }

// Read reads as the socket's, and past the deadline takes what is already in the socket's buffer (see sockConn).
func (c *sockConn) Read(p []byte) (int, error) {
	n, err := c.File.Read(p)
	if !errors.Is(err, os.ErrDeadlineExceeded) || len(p) == 0 {
		return n, err
	}
	rc, rerr := c.SyscallConn()
	if rerr != nil {
		return n, err
	}
	var m int
	var e error
	if rc.Control(func(fd uintptr) { m, e = syscall.Read(int(fd), p) }) != nil || e != nil {
		return n, err // nothing there (EAGAIN): a real timeout
	}
	if m == 0 {
		return 0, io.EOF
	}
	return m, nil
}

// LocalAddr and RemoteAddr make it a net.Conn (for crypto/tls). The local address is never looked up: nothing
// asks for it, and it would cost a system call per probe.
func (c *sockConn) LocalAddr() net.Addr  { return nil }
func (c *sockConn) RemoteAddr() net.Addr { return c.raddr }
