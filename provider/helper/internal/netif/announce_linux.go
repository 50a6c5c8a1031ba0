//go:build linux

package netif

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// Announce sends, once each, a gratuitous ARP request and reply (some hosts heed only one kind; arping -U and
// keepalived send requests) or an unsolicited neighbour advertisement with the override flag to all nodes. The
// sends do not wait for anyone: the neighbours' caches update when the packets arrive.
func (r RTNL) Announce(name string, a netip.Addr) error {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return fmt.Errorf("announcing %s on interface %s: %w", a, name, err)
	}
	if len(ifi.HardwareAddr) != 6 {
		return nil // no Ethernet link layer: nobody resolves addresses there
	}
	if a.Is4() {
		err = garp(ifi, a)
	} else {
		err = unsolicitedNA(ifi, a, r.Timeout)
	}
	if err != nil {
		return fmt.Errorf("announcing %s on interface %s: %w", a, name, err)
	}
	return nil
}

func garp(ifi *net.Interface, a netip.Addr) error {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ARP)))
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	to := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: ifi.Index, Halen: 6,
		Addr: [8]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
	ip := a.As4()
	for _, opcode := range []byte{1, 2} {
		// htype Ethernet, ptype IPv4, hlen 6, plen 4, opcode; sender = target = the address, from our MAC.
		pkt := []byte{0, 1, 8, 0, 6, 4, 0, opcode}
		pkt = append(pkt, ifi.HardwareAddr...)
		pkt = append(pkt, ip[:]...)
		if opcode == 1 {
			pkt = append(pkt, 0, 0, 0, 0, 0, 0)
		} else {
			pkt = append(pkt, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
		}
		pkt = append(pkt, ip[:]...)
		if err := unix.Sendto(fd, pkt, 0, to); err != nil {
			return err
		}
	}
	return nil
}

func unsolicitedNA(ifi *net.Interface, a netip.Addr, timeout time.Duration) error {
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMPV6)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	// Neighbour discovery packets must carry hop limit 255 (RFC 4861 §7.1.2), or receivers drop them.
	for _, opt := range []int{unix.IPV6_MULTICAST_HOPS, unix.IPV6_UNICAST_HOPS} {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, opt, 255); err != nil {
			return err
		}
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_IF, ifi.Index); err != nil {
		return err
	}
	tv := unix.NsecToTimeval(timeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err != nil {
		return err
	}
	if err := unix.Bind(fd, &unix.SockaddrInet6{Addr: a.As16(), ZoneId: uint32(ifi.Index)}); err != nil {
		return err
	}
	// Type 136, code 0, checksum (the kernel fills it in for ICMPv6 raw sockets), flags: override; the target; the
	// target link-layer address option (type 2, 1 × 8 bytes).
	target := a.As16()
	pkt := []byte{136, 0, 0, 0, 0x20, 0, 0, 0}
	pkt = append(pkt, target[:]...)
	pkt = append(append(pkt, 2, 1), ifi.HardwareAddr...)
	allNodes := netip.MustParseAddr("ff02::1").As16()
	return unix.Sendto(fd, pkt, 0, &unix.SockaddrInet6{Addr: allNodes, ZoneId: uint32(ifi.Index)})
}
