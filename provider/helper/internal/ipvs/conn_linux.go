//go:build linux

package ipvs

import (
	"errors"
	"fmt"
	"os"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Conn is one generic netlink socket bound to the IPVS family, resolved once and reused for a whole batch.
type Conn struct {
	c      *genetlink.Conn
	family uint16
}

// Open dials generic netlink and resolves the IPVS family. ErrNoFamily when ip_vs is not loaded.
func Open() (*Conn, error) {
	c, err := genetlink.Dial(nil)
	if err != nil {
		return nil, fmt.Errorf("opening a generic netlink socket: %w", err)
	}
	f, err := c.GetFamily("IPVS")
	if err != nil {
		c.Close()
		if errors.Is(err, os.ErrNotExist) || Errno(err) == unix.ENOENT {
			return nil, ErrNoFamily
		}
		return nil, fmt.Errorf("resolving the IPVS generic netlink family: %w", err)
	}
	return &Conn{c: c, family: f.ID}, nil
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

func (c *Conn) do(cmd uint8, payload []byte) error {
	_, err := c.c.Execute(genetlink.Message{
		Header: genetlink.Header{Command: cmd, Version: 1},
		Data:   payload,
	}, c.family, netlink.Request|netlink.Acknowledge)
	return err
}

func (c *Conn) query(cmd uint8, payload []byte, dump bool) ([]genetlink.Message, error) {
	flags := netlink.Request
	if dump {
		flags |= netlink.Dump
	}
	return c.c.Execute(genetlink.Message{
		Header: genetlink.Header{Command: cmd, Version: 1},
		Data:   payload,
	}, c.family, flags)
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
