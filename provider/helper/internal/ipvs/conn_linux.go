//go:build linux

package ipvs

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"syscall"
	"time"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Conn is one generic netlink socket bound to the IPVS family, resolved once and reused for a whole batch.
type Conn struct {
	c         *genetlink.Conn
	raw       syscall.RawConn
	family    uint16
	seq       uint32        // next pipeline sequence number
	chunkMsgs int           // writes per pipelined sendmsg, from the receive buffer size
	limit     time.Duration // socket deadline of each kernel call
}

// pipelineRcvBuf is the receive buffer asked for (SO_RCVBUFFORCE; root may exceed net.core.rmem_max): room for
// the ACKs of a full chunk, which the kernel queues all at once.
const pipelineRcvBuf = 4 << 20

// Open dials generic netlink and resolves the IPVS family. ErrNoFamily when ip_vs is not loaded. Every kernel call
// waits for its answer at most limit: past it the call fails with an error matching os.ErrDeadlineExceeded. (A
// sendmsg the kernel blocks in, e.g. on its own module autoload, is beyond a socket deadline's reach.)
func Open(limit time.Duration) (*Conn, error) {
	c, err := genetlink.Dial(nil)
	if err != nil {
		return nil, fmt.Errorf("opening a generic netlink socket: %w", err)
	}
	_ = c.SetDeadline(time.Now().Add(limit))
	f, err := c.GetFamily("IPVS")
	if err != nil {
		c.Close()
		if errors.Is(err, os.ErrNotExist) || Errno(err) == unix.ENOENT {
			return nil, ErrNoFamily
		}
		return nil, fmt.Errorf("resolving the IPVS generic netlink family: %w", bounded(err, limit))
	}
	raw, err := c.SyscallConn()
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("reaching the generic netlink socket: %w", err)
	}
	conn := &Conn{c: c, raw: raw, family: f.ID, seq: rand.Uint32(), limit: limit}
	conn.chunkMsgs = ChunkMsgs(conn.growReceiveBuffer())
	return conn, nil
}

// growReceiveBuffer raises SO_RCVBUF as far as allowed and returns the buffer size in effect.
func (c *Conn) growReceiveBuffer() int {
	size := 0
	_ = c.raw.Control(func(fd uintptr) {
		if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, pipelineRcvBuf) != nil {
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, pipelineRcvBuf)
		}
		size, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
	})
	return size
}

// Close releases the socket.
func (c *Conn) Close() error { return c.c.Close() }

// KernelRelease is uname -r, used to refuse features the running kernel lacks.
func KernelRelease() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

// deadline bounds the kernel call about to start.
func (c *Conn) deadline() { _ = c.c.SetDeadline(time.Now().Add(c.limit)) }

// bounded names the deadline in the error of a kernel call that ran past it.
func bounded(err error, limit time.Duration) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("the kernel did not answer within %s: %w", limit, err)
	}
	return err
}

func (c *Conn) do(cmd uint8, payload []byte) error {
	c.deadline()
	_, err := c.c.Execute(genetlink.Message{
		Header: genetlink.Header{Command: cmd, Version: 1},
		Data:   payload,
	}, c.family, netlink.Request|netlink.Acknowledge)
	return bounded(err, c.limit)
}

func (c *Conn) query(cmd uint8, payload []byte, dump bool) ([]genetlink.Message, error) {
	flags := netlink.Request
	if dump {
		flags |= netlink.Dump
	}
	c.deadline()
	msgs, err := c.c.Execute(genetlink.Message{
		Header: genetlink.Header{Command: cmd, Version: 1},
		Data:   payload,
	}, c.family, flags)
	return msgs, bounded(err, c.limit)
}

// Pipeline sends writes many to a sendmsg, in order, and returns each one's outcome (nil, or the kernel's errno as a
// syscall.Errno): the same as running them one by one, with a fraction of the system calls and round trips.
func (c *Conn) Pipeline(ws []Write) []error {
	errs := make([]error, len(ws))
	for _, r := range chunkRanges(ws, c.chunkMsgs, MaxChunkBytes) {
		copy(errs[r[0]:r[1]], c.pipelineChunk(ws[r[0]:r[1]]))
	}
	return errs
}

// pipelineChunk sends one chunk in one sendmsg and collects its ACKs.
func (c *Conn) pipelineChunk(ws []Write) []error {
	base := c.seq
	c.seq += uint32(len(ws))
	a := newAcks(base, len(ws))
	c.deadline()
	if err := c.send(encodeChunk(c.family, base, ws)); err != nil {
		a.fail(fmt.Errorf("sending %d IPVS commands: %w", len(ws), bounded(err, c.limit)))
		return a.errs
	}
	buf := make([]byte, os.Getpagesize())
	for a.left > 0 {
		n, err := c.recv(buf)
		if err == nil {
			err = a.record(buf[:n])
		}
		if errors.Is(err, unix.ENOBUFS) {
			// Some ACKs were dropped; those already queued still arrive and are read before giving up on the rest.
			c.drain(buf, a)
			err = ErrAckLost
		}
		if err != nil {
			a.fail(bounded(err, c.limit))
		}
	}
	return a.errs
}

func (c *Conn) send(b []byte) error {
	var serr error
	err := c.raw.Write(func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		return serr != unix.EAGAIN
	})
	if err != nil {
		return err
	}
	return serr
}

// recv reads one datagram, waiting for it until the read deadline.
func (c *Conn) recv(buf []byte) (int, error) {
	var n int
	var rerr error
	err := c.raw.Read(func(fd uintptr) bool {
		n, _, rerr = unix.Recvfrom(int(fd), buf, unix.MSG_DONTWAIT)
		return rerr != unix.EAGAIN
	})
	if err != nil {
		return 0, err
	}
	return n, rerr
}

// drain records the datagrams already queued, without waiting.
func (c *Conn) drain(buf []byte, a *acks) {
	for a.left > 0 {
		n, _, err := unix.Recvfrom(c.fd(), buf, unix.MSG_DONTWAIT)
		if err != nil || a.record(buf[:n]) != nil {
			return
		}
	}
}

func (c *Conn) fd() int {
	fd := -1
	_ = c.raw.Control(func(f uintptr) { fd = int(f) })
	return fd
}

// NewService creates a service (EEXIST if present, ENOENT if its scheduler/PE module is missing).
func (c *Conn) NewService(s Service) error {
	b, err := EncodeService(s)
	if err != nil {
		return err
	}
	return c.do(CmdNewService, b)
}

// SetService replaces a service's settings with s (ESRCH if absent).
func (c *Conn) SetService(s Service) error {
	b, err := EncodeService(s)
	if err != nil {
		return err
	}
	return c.do(CmdSetService, b)
}

// DelService deletes a service and its dests (ESRCH if absent).
func (c *Conn) DelService(k ServiceKey) error {
	b, err := EncodeServiceKeyOnly(k)
	if err != nil {
		return err
	}
	return c.do(CmdDelService, b)
}

// GetService reads one service; found=false when absent.
func (c *Conn) GetService(k ServiceKey) (Service, bool, error) {
	b, err := EncodeServiceKeyOnly(k)
	if err != nil {
		return Service{}, false, err
	}
	msgs, err := c.query(CmdGetService, b, false)
	if err != nil {
		if e := Errno(err); e == unix.ESRCH || e == unix.ENOENT {
			return Service{}, false, nil
		}
		return Service{}, false, err
	}
	if len(msgs) == 0 {
		return Service{}, false, nil
	}
	s, err := DecodeService(msgs[0].Data)
	return s, err == nil, err
}

// Services dumps every service (unsorted, as the kernel lists them).
func (c *Conn) Services() ([]Service, error) {
	msgs, err := c.query(CmdGetService, nil, true)
	if err != nil {
		return nil, err
	}
	out := make([]Service, 0, len(msgs))
	for _, m := range msgs {
		s, err := DecodeService(m.Data)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// Dests dumps a service's dests. The kernel answers an unknown service with an empty list: callers check first.
func (c *Conn) Dests(k ServiceKey) ([]Dest, error) {
	b, err := EncodeServiceKeyOnly(k)
	if err != nil {
		return nil, err
	}
	msgs, err := c.query(CmdGetDest, b, true)
	if err != nil {
		return nil, err
	}
	out := make([]Dest, 0, len(msgs))
	for _, m := range msgs {
		d, err := DecodeDest(m.Data, k.AF)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// NewDest adds a dest to service k.
func (c *Conn) NewDest(k ServiceKey, d Dest) error {
	b, err := EncodeDest(k, d)
	if err != nil {
		return err
	}
	return c.do(CmdNewDest, b)
}

// SetDest replaces a dest's settings with d.
func (c *Conn) SetDest(k ServiceKey, d Dest) error {
	b, err := EncodeDest(k, d)
	if err != nil {
		return err
	}
	return c.do(CmdSetDest, b)
}

// DelDest removes a dest from service k.
func (c *Conn) DelDest(k ServiceKey, d DestKey) error {
	b, err := EncodeDestKeyOnly(k, d)
	if err != nil {
		return err
	}
	return c.do(CmdDelDest, b)
}

// Daemons lists the running sync daemons.
func (c *Conn) Daemons() ([]Daemon, error) {
	msgs, err := c.query(CmdGetDaemon, nil, true)
	if err != nil {
		return nil, err
	}
	out := make([]Daemon, 0, len(msgs))
	for _, m := range msgs {
		d, err := DecodeDaemon(m.Data)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// NewDaemon starts a sync daemon.
func (c *Conn) NewDaemon(d Daemon) error {
	b, err := EncodeDaemon(d, false)
	if err != nil {
		return err
	}
	return c.do(CmdNewDaemon, b)
}

// DelDaemon stops the sync daemon in the given state.
func (c *Conn) DelDaemon(state uint32) error {
	b, err := EncodeDaemon(Daemon{State: state}, true)
	if err != nil {
		return err
	}
	return c.do(CmdDelDaemon, b)
}

// Timeouts reads the connection timeouts.
func (c *Conn) Timeouts() (Timeouts, error) {
	msgs, err := c.query(CmdGetConfig, nil, false)
	if err != nil {
		return Timeouts{}, err
	}
	if len(msgs) == 0 {
		return Timeouts{}, errors.New("GET_CONFIG returned no reply")
	}
	return DecodeTimeouts(msgs[0].Data)
}

// SetTimeouts changes the non-zero timeouts.
func (c *Conn) SetTimeouts(t Timeouts) error {
	b, err := EncodeTimeouts(t)
	if err != nil {
		return err
	}
	return c.do(CmdSetConfig, b)
}

// Info reads the IPVS version and connection table size.
func (c *Conn) Info() (Info, error) {
	msgs, err := c.query(CmdGetInfo, nil, false)
	if err != nil {
		return Info{}, err
	}
	if len(msgs) == 0 {
		return Info{}, errors.New("GET_INFO returned no reply")
	}
	return DecodeInfo(msgs[0].Data)
}

// Zero clears the counters of one service, or of all when k is nil.
func (c *Conn) Zero(k *ServiceKey) error {
	var b []byte
	if k != nil {
		var err error
		if b, err = EncodeServiceKeyOnly(*k); err != nil {
			return err
		}
	}
	return c.do(CmdZero, b)
}

// Flush removes every service.
func (c *Conn) Flush() error { return c.do(CmdFlush, nil) }
