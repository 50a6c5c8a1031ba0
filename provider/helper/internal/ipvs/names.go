package ipvs

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// HostPort renders an address and port like ipvsadm -n does: a.b.c.d:p or [v6]:p.
func HostPort(a netip.Addr, port uint16) string {
	if a.Is6() {
		return "[" + a.String() + "]:" + strconv.Itoa(int(port))
	}
	return a.String() + ":" + strconv.Itoa(int(port))
}

// String names a service for messages: "service tcp 192.0.2.10:80", "service fwmark 5 (ipv6)".
func (k ServiceKey) String() string {
	if k.IsFWMark() {
		return fmt.Sprintf("service fwmark %d (%s)", k.FWMark, FamilyName(k.AF))
	}
	return fmt.Sprintf("service %s %s", ProtocolName(k.Protocol), HostPort(k.Addr, k.Port))
}

// String names a real server for messages.
func (d DestKey) String() string { return "real server " + HostPort(d.Addr, d.Port) }

// SchedFlagNames names the scheduler flag bits the way ipvsadm does for this scheduler
// (sh and mh name their first two flags; flag-3 is not printed for them).
func SchedFlagNames(sched string, flags uint32) []string {
	var out []string
	switch sched {
	case "sh", "mh":
		if flags&FlagSched1 != 0 {
			out = append(out, sched+"-fallback")
		}
		if flags&FlagSched2 != 0 {
			out = append(out, sched+"-port")
		}
	default:
		if flags&FlagSched1 != 0 {
			out = append(out, "flag-1")
		}
		if flags&FlagSched2 != 0 {
			out = append(out, "flag-2")
		}
	}
	if flags&FlagSched3 != 0 && sched != "sh" && sched != "mh" {
		out = append(out, "flag-3")
	}
	return out
}

// SchedFlagsFromNames turns flag names into bits; sh-*/mh-* only with their scheduler, as ipvsadm insists.
func SchedFlagsFromNames(sched string, names []string) (uint32, error) {
	var f uint32
	for _, n := range names {
		switch n {
		case "flag-1":
			f |= FlagSched1
		case "flag-2":
			f |= FlagSched2
		case "flag-3":
			f |= FlagSched3
		case "sh-fallback", "mh-fallback", "sh-port", "mh-port":
			if n[:2] != sched {
				return 0, fmt.Errorf("scheduler flag %q needs scheduler %s, not %s", n, n[:2], sched)
			}
			if n[3:] == "fallback" {
				f |= FlagSched1
			} else {
				f |= FlagSched2
			}
		default:
			return 0, fmt.Errorf("unknown scheduler flag %q (known: %s)", n, strings.Join(SchedFlags, ", "))
		}
	}
	return f, nil
}

// NetmaskString renders a persistence netmask: dotted for IPv4, the prefix length for IPv6.
func NetmaskString(af uint16, m uint32) string {
	if af == AFInet6 {
		return strconv.Itoa(int(m))
	}
	return netip.AddrFrom4([4]byte{byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)}).String()
}

// ParseNetmask reads a persistence netmask: a contiguous dotted mask for IPv4, a prefix 1..128 for IPv6.
func ParseNetmask(af uint16, s string) (uint32, error) {
	if af == AFInet6 {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 128 {
			return 0, fmt.Errorf("IPv6 persistence netmask %q must be a prefix length 1..128", s)
		}
		return uint32(n), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return 0, fmt.Errorf("IPv4 persistence netmask %q must be a dotted mask like 255.255.255.0", s)
	}
	b := a.As4()
	m := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	if m == 0 || m|(m-1) != 0xffffffff {
		return 0, fmt.Errorf("IPv4 persistence netmask %q is not a contiguous non-empty mask", s)
	}
	return m, nil
}
