//go:build linux

package netif

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// RTNL is Net on the running kernel; every call gets its own rtnetlink socket, bounded by Timeout.
type RTNL struct{ Timeout time.Duration }

// do sends one rtnetlink request and returns its answers within the deadline.
func (r RTNL) do(typ netlink.HeaderType, flags netlink.HeaderFlags, body []byte) ([]netlink.Message, error) {
	c, err := netlink.Dial(unix.NETLINK_ROUTE, nil)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(r.Timeout)); err != nil {
		return nil, err
	}
	return c.Execute(netlink.Message{Header: netlink.Header{Type: typ, Flags: netlink.Request | flags}, Data: body})
}

// ifinfomsg: family, pad, type, index, flags, change.
func ifinfo(index int32, flags, change uint32) []byte {
	b := make([]byte, 16)
	binary.NativeEndian.PutUint32(b[4:], uint32(index))
	binary.NativeEndian.PutUint32(b[8:], flags)
	binary.NativeEndian.PutUint32(b[12:], change)
	return b
}

// index is the interface's index, 0 when there is none of that name.
func (r RTNL) index(name string) (int32, error) {
	ae := netlink.NewAttributeEncoder()
	ae.String(unix.IFLA_IFNAME, name)
	attrs, err := ae.Encode()
	if err != nil {
		return 0, err
	}
	msgs, err := r.do(unix.RTM_GETLINK, 0, append(ifinfo(0, 0, 0), attrs...))
	if errors.Is(err, unix.ENODEV) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("looking up interface %s: %w", name, err)
	}
	if len(msgs) == 0 || len(msgs[0].Data) < 16 {
		return 0, fmt.Errorf("looking up interface %s: the kernel's answer is too short", name)
	}
	return int32(binary.NativeEndian.Uint32(msgs[0].Data[4:])), nil
}

// dumpAddrs lists every address of the host with the index of its interface.
func (r RTNL) dumpAddrs() (map[netip.Addr][]int32, error) {
	msgs, err := r.do(unix.RTM_GETADDR, netlink.Dump, make([]byte, 8))
	if err != nil {
		return nil, fmt.Errorf("listing the director's addresses: %w", err)
	}
	out := map[netip.Addr][]int32{}
	for _, m := range msgs {
		if m.Header.Type != unix.RTM_NEWADDR || len(m.Data) < 8 {
			continue
		}
		idx := int32(binary.NativeEndian.Uint32(m.Data[4:]))
		ad, err := netlink.NewAttributeDecoder(m.Data[8:])
		if err != nil {
			return nil, err
		}
		var local, addr netip.Addr
		for ad.Next() {
			switch ad.Type() {
			case unix.IFA_LOCAL:
				local, _ = netip.AddrFromSlice(ad.Bytes())
			case unix.IFA_ADDRESS:
				addr, _ = netip.AddrFromSlice(ad.Bytes())
			}
		}
		// IFA_LOCAL is the interface's own address where a peer address is set (point-to-point); IPv6 has only IFA_ADDRESS.
		if local.IsValid() {
			addr = local
		}
		if addr.IsValid() {
			out[addr.Unmap()] = append(out[addr.Unmap()], idx)
		}
	}
	return out, nil
}

func (r RTNL) Addrs(name string) ([]netip.Addr, bool, error) {
	idx, err := r.index(name)
	if err != nil || idx == 0 {
		return nil, false, err
	}
	all, err := r.dumpAddrs()
	if err != nil {
		return nil, true, err
	}
	var out []netip.Addr
	for a, idxs := range all {
		for _, i := range idxs {
			if i == idx {
				out = append(out, a)
			}
		}
	}
	return out, true, nil
}

func (r RTNL) Holders(a netip.Addr) ([]string, error) {
	all, err := r.dumpAddrs()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, idx := range all[a] {
		ifi, err := net.InterfaceByIndex(int(idx))
		if err != nil {
			return nil, fmt.Errorf("naming interface %d: %w", idx, err)
		}
		out = append(out, ifi.Name)
	}
	return out, nil
}

func (r RTNL) EnsureDummy(name string) error {
	idx, err := r.index(name)
	if err != nil {
		return err
	}
	if idx == 0 {
		ae := netlink.NewAttributeEncoder()
		ae.String(unix.IFLA_IFNAME, name)
		ae.Nested(unix.IFLA_LINKINFO, func(nae *netlink.AttributeEncoder) error {
			nae.String(unix.IFLA_INFO_KIND, "dummy")
			return nil
		})
		attrs, err := ae.Encode()
		if err != nil {
			return err
		}
		if _, err := r.do(unix.RTM_NEWLINK, netlink.Acknowledge|netlink.Create|netlink.Excl, append(ifinfo(0, 0, 0), attrs...)); err != nil {
			return fmt.Errorf("creating dummy interface %s: %w (the kernel needs the dummy module)", name, err)
		}
		if idx, err = r.index(name); err != nil || idx == 0 {
			return fmt.Errorf("creating dummy interface %s: it is not there after its creation (%v)", name, err)
		}
	}
	if _, err := r.do(unix.RTM_NEWLINK, netlink.Acknowledge, ifinfo(idx, unix.IFF_UP, unix.IFF_UP)); err != nil {
		return fmt.Errorf("bringing interface %s up: %w", name, err)
	}
	return nil
}

func (r RTNL) IsUp(name string) (up, exists bool, err error) {
	idx, err := r.index(name)
	if err != nil || idx == 0 {
		return false, false, err
	}
	ifi, err := net.InterfaceByIndex(int(idx))
	if err != nil {
		return false, true, fmt.Errorf("reading interface %s: %w", name, err)
	}
	return ifi.Flags&net.FlagUp != 0, true, nil
}

func (r RTNL) SetUp(name string, up bool) error {
	idx, err := r.index(name)
	if err != nil {
		return err
	}
	if idx == 0 {
		return fmt.Errorf("interface %s does not exist", name)
	}
	flags := uint32(0)
	if up {
		flags = unix.IFF_UP
	}
	if _, err := r.do(unix.RTM_NEWLINK, netlink.Acknowledge, ifinfo(idx, flags, unix.IFF_UP)); err != nil {
		return fmt.Errorf("setting interface %s %s: %w", name, map[bool]string{true: "up", false: "down"}[up], err)
	}
	return nil
}

func (r RTNL) DeleteLink(name string) error {
	idx, err := r.index(name)
	if err != nil || idx == 0 {
		return err
	}
	if _, err := r.do(unix.RTM_DELLINK, netlink.Acknowledge, ifinfo(idx, 0, 0)); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("removing interface %s: %w", name, err)
	}
	return nil
}

// addrMsg is an RTM_NEWADDR/RTM_DELADDR body for host address a on interface idx.
func addrMsg(idx int32, a netip.Addr) ([]byte, error) {
	b := make([]byte, 8)
	b[0], b[1] = unix.AF_INET, 32
	if a.Is6() {
		b[0], b[1], b[2] = unix.AF_INET6, 128, unix.IFA_F_NODAD
	}
	binary.NativeEndian.PutUint32(b[4:], uint32(idx))
	ae := netlink.NewAttributeEncoder()
	ae.Bytes(unix.IFA_LOCAL, a.AsSlice())
	ae.Bytes(unix.IFA_ADDRESS, a.AsSlice())
	if a.Is6() {
		ae.Uint32(unix.IFA_FLAGS, unix.IFA_F_NODAD) // answer for it at once: DAD would hold it tentative for a second or more
	}
	attrs, err := ae.Encode()
	return append(b, attrs...), err
}

func (r RTNL) addr(typ netlink.HeaderType, flags netlink.HeaderFlags, name string, a netip.Addr) error {
	idx, err := r.index(name)
	if err != nil {
		return err
	}
	if idx == 0 {
		if typ == unix.RTM_DELADDR {
			return nil
		}
		return fmt.Errorf("interface %s does not exist on this director", name)
	}
	body, err := addrMsg(idx, a)
	if err != nil {
		return err
	}
	_, err = r.do(typ, netlink.Acknowledge|flags, body)
	return err
}

func (r RTNL) AddAddr(name string, a netip.Addr) error {
	err := r.addr(unix.RTM_NEWADDR, netlink.Create|netlink.Replace, name, a)
	if err != nil {
		return fmt.Errorf("adding %s to interface %s: %w", a, name, err)
	}
	return nil
}

func (r RTNL) DelAddr(name string, a netip.Addr) error {
	err := r.addr(unix.RTM_DELADDR, 0, name, a)
	if err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("removing %s from interface %s: %w", a, name, err)
	}
	return nil
}
