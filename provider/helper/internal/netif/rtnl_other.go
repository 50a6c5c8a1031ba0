//go:build !linux

package netif

import (
	"errors"
	"net/netip"
	"time"
)

// RTNL is Net on the running kernel: Linux only.
type RTNL struct{ Timeout time.Duration }

var errNotLinux = errors.New("binding addresses needs Linux")

func (RTNL) Addrs(string) ([]netip.Addr, bool, error) { return nil, false, errNotLinux }
func (RTNL) Holders(netip.Addr) ([]string, error)     { return nil, errNotLinux }
func (RTNL) EnsureDummy(string) error                 { return errNotLinux }
func (RTNL) DeleteLink(string) error                  { return errNotLinux }
func (RTNL) IsUp(string) (bool, bool, error)          { return false, false, errNotLinux }
func (RTNL) SetUp(string, bool) error                 { return errNotLinux }
func (RTNL) AddAddr(string, netip.Addr) error         { return errNotLinux }
func (RTNL) DelAddr(string, netip.Addr) error         { return errNotLinux }
func (RTNL) Announce(string, netip.Addr) error        { return errNotLinux }
