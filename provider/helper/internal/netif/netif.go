// Package netif puts virtual addresses on the director's interfaces for bindAddress: the helper's own dummy
// interface (ipvs0, as kube-proxy's kube-ipvs0) or a named one, where the address is announced to the LAN. It speaks
// rtnetlink itself (on github.com/mdlayher/netlink, as the IPVS side does), so the binary stays static.
package netif

import (
	"fmt"
	"net/netip"
	"strings"
	"unicode"
)

// Dummy is the interface the helper creates for bindAddress true and removes when its last address goes.
const Dummy = "ipvs0"

// Net is what the engine needs of the director's interfaces; tests use a fake.
type Net interface {
	// Addrs lists the addresses on interface name; exists is false when there is no such interface.
	Addrs(name string) (addrs []netip.Addr, exists bool, err error)
	// Holders lists the interfaces that hold address a.
	Holders(a netip.Addr) ([]string, error)
	// EnsureDummy creates the dummy interface name when it is missing and brings it up.
	EnsureDummy(name string) error
	// DeleteLink removes interface name (nothing when it is gone).
	DeleteLink(name string) error
	// IsUp tells whether interface name exists and is administratively up.
	IsUp(name string) (up, exists bool, err error)
	// SetUp brings interface name up or down.
	SetUp(name string, up bool) error
	// AddAddr adds a as a host address (/32, /128 without duplicate address detection) to interface name.
	AddAddr(name string, a netip.Addr) error
	// DelAddr removes host address a from interface name (nothing when it is not there).
	DelAddr(name string, a netip.Addr) error
	// Announce tells the interface's LAN that a is here: a gratuitous ARP (IPv4) or an unsolicited neighbour
	// advertisement (IPv6). Interfaces without a link-layer address (loopback, tunnels) have no one to tell.
	Announce(name string, a netip.Addr) error
}

// CheckName applies the kernel's rule for interface names (dev_valid_name): 1 to 15 bytes, not "." or "..", no
// '/', ':' or whitespace. The message names the rule; callers prefix the field.
func CheckName(name string) error {
	switch {
	case name == "" || len(name) > 15:
		return fmt.Errorf("interface name %q must be 1 to 15 characters (the kernel's IFNAMSIZ)", name)
	case name == "." || name == "..":
		return fmt.Errorf("interface name %q cannot be \".\" or \"..\"", name)
	case strings.ContainsAny(name, "/:") || strings.IndexFunc(name, unicode.IsSpace) >= 0:
		return fmt.Errorf("interface name %q cannot contain '/', ':' or whitespace", name)
	}
	return nil
}
