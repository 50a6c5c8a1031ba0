package ipvs

import (
	"fmt"
	"strconv"
	"strings"
)

// RuleError is an entry that breaks ipvsadm's rules (or needs a newer kernel); nothing was sent to the kernel.
type RuleError struct {
	Unsupported bool // the running kernel lacks the feature
	Msg         string
}

func (e *RuleError) Error() string { return e.Msg }

func rule(format string, a ...any) error { return &RuleError{Msg: fmt.Sprintf(format, a...)} }

// Schedulers ipvsadm knows, with the kernel release that brought each one when newer than 4.19.
var Schedulers = map[string]KernelVersion{
	"rr": {}, "wrr": {}, "lc": {}, "wlc": {}, "lblc": {}, "lblcr": {}, "dh": {}, "sh": {},
	"sed": {}, "nq": {}, "fo": {}, "ovf": {}, "mh": {4, 18}, "twos": {6, 2},
}

// KernelVersion is major.minor of the running kernel; zero means unknown (no feature is refused).
type KernelVersion struct{ Major, Minor int }

// ParseKernelRelease reads "6.1.0-18-amd64" as 6.1.
func ParseKernelRelease(rel string) KernelVersion {
	parts := strings.SplitN(rel, ".", 3)
	if len(parts) < 2 {
		return KernelVersion{}
	}
	maj, err1 := strconv.Atoi(parts[0])
	minor := parts[1]
	if i := strings.IndexFunc(minor, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		minor = minor[:i]
	}
	mnr, err2 := strconv.Atoi(minor)
	if err1 != nil || err2 != nil {
		return KernelVersion{}
	}
	return KernelVersion{maj, mnr}
}

func (k KernelVersion) String() string { return fmt.Sprintf("%d.%d", k.Major, k.Minor) }

// Lacks reports whether a kernel known to be k is older than need.
func (k KernelVersion) Lacks(need KernelVersion) bool {
	if k.Major == 0 {
		return false
	}
	return k.Major < need.Major || (k.Major == need.Major && k.Minor < need.Minor)
}

func (k KernelVersion) require(need KernelVersion, what string) error {
	if k.Lacks(need) {
		return &RuleError{Unsupported: true, Msg: fmt.Sprintf("%s needs Linux %s or newer; this director runs %s", what, need, k)}
	}
	return nil
}

// ValidateService checks a complete service entry against ipvsadm's rules and the kernel's features.
func ValidateService(s Service, k KernelVersion) error {
	name := s.ServiceKey.String()
	switch s.AF {
	case AFInet, AFInet6:
	default:
		return rule("%s: unknown address family %d", name, s.AF)
	}
	if s.IsFWMark() {
		if s.Protocol != 0 || s.Port != 0 || s.Addr.IsValid() {
			return rule("%s: a fwmark service has no protocol, address or port", name)
		}
	} else {
		if _, ok := Protocols.Word(s.Protocol); !ok {
			return rule("%s: protocol must be %s", name, Protocols.OneOf())
		}
		if !s.Addr.IsValid() || s.Addr.Is4() != (s.AF == AFInet) || s.Addr.Is4In6() {
			return rule("%s: address %v is not an %s address", name, s.Addr, FamilyName(s.AF))
		}
		if s.Port == 0 && s.Flags&FlagPersistent == 0 {
			return rule("%s: port 0 is only allowed for persistent services", name)
		}
	}
	need, ok := Schedulers[s.Sched]
	if !ok {
		return rule("%s: unknown scheduler %q (known: rr wrr lc wlc lblc lblcr dh sh sed nq fo ovf mh twos)", name, s.Sched)
	}
	if err := k.require(need, "scheduler "+s.Sched); err != nil {
		return err
	}
	if s.Flags&^(FlagPersistent|FlagOnePacket|FlagSched1|FlagSched2|FlagSched3) != 0 {
		return rule("%s: unknown service flags %#x", name, s.Flags)
	}
	if s.Flags&FlagPersistent != 0 {
		if !PersistenceRange.In(int64(s.Timeout)) {
			return rule("%s: %s seconds", name, PersistenceRange.Refusal(int64(s.Timeout)))
		}
	} else {
		if s.Timeout != 0 {
			return rule("%s: a persistence timeout needs persistence", name)
		}
		if s.Netmask != DefaultNetmask(s.AF) {
			return rule("%s: a persistence netmask needs persistence", name)
		}
	}
	if _, err := ParseNetmask(s.AF, NetmaskString(s.AF, s.Netmask)); err != nil {
		return rule("%s: %v", name, err)
	}
	if s.Flags&FlagOnePacket != 0 && !s.IsFWMark() && s.Protocol != ProtoUDP {
		return rule("%s: one-packet scheduling is only for UDP and fwmark services", name)
	}
	if s.PE != "" && s.PE != "sip" {
		return rule("%s: unknown persistence engine %q (the only one is sip)", name, s.PE)
	}
	return nil
}

// ValidateDest checks a complete real server entry of service svc against ipvsadm's rules and the kernel's features.
func ValidateDest(svc ServiceKey, d Dest, k KernelVersion) error {
	name := fmt.Sprintf("%s of %s", d.DestKey, svc)
	if !d.Addr.IsValid() || d.Addr.Is4In6() || d.Addr.Is4() != (d.AF == AFInet) {
		return rule("%s: address %v does not match family %s", name, d.Addr, FamilyName(d.AF))
	}
	fwd := d.Fwd & FwdMask
	switch fwd {
	case FwdMasq, FwdRoute, FwdTunnel:
	default:
		return rule("%s: forwarding %s cannot be set (ipvsadm sets only nat, dr and tunnel)", name, FwdName(fwd))
	}
	if d.AF != svc.AF && fwd != FwdTunnel {
		return rule("%s: a real server of another address family than its service needs tunnel forwarding", name)
	}
	if !svc.IsFWMark() && (fwd == FwdRoute || fwd == FwdTunnel) && d.Port != svc.Port {
		return rule("%s: with %s forwarding the real server port must equal the service port %d (ipvsadm would silently change it)", name, FwdName(fwd), svc.Port)
	}
	if !WeightRange.In(int64(d.Weight)) {
		return rule("%s: %s", name, WeightRange.Refusal(int64(d.Weight)))
	}
	// One message for both thresholds, as ipvsadm gives; the two ranges are the same.
	if !UThreshRange.In(int64(d.UThresh)) || !LThreshRange.In(int64(d.LThresh)) {
		return rule("%s: thresholds must be 0..%d", name, UThreshRange.Max)
	}
	if fwd != FwdTunnel {
		if d.TunType != 0 || d.TunPort != 0 || d.TunFlags != 0 {
			return rule("%s: tunnel options need tunnel forwarding", name)
		}
		return nil
	}
	switch d.TunType {
	case TunIPIP:
		if d.TunPort != 0 || d.TunFlags != TunNoCsum {
			return rule("%s: an ipip tunnel takes no port and no checksum option", name)
		}
	case TunGUE:
		if err := k.require(KernelVersion{5, 2}, "GUE tunnels"); err != nil {
			return err
		}
		if d.TunPort == 0 {
			return rule("%s: a gue tunnel needs a port 1..%d", name, TunnelPortRange.Max) // 0 is no port
		}
	case TunGRE:
		if err := k.require(KernelVersion{5, 3}, "GRE tunnels"); err != nil {
			return err
		}
		if d.TunPort != 0 {
			return rule("%s: a gre tunnel takes no port", name)
		}
		if d.TunFlags == TunRemCsum {
			return rule("%s: a gre tunnel takes nocsum or csum, not remcsum", name)
		}
	default:
		return rule("%s: unknown tunnel type %d", name, d.TunType)
	}
	if d.TunFlags > TunRemCsum {
		return rule("%s: unknown tunnel checksum mode %d", name, d.TunFlags)
	}
	if d.TunFlags != TunNoCsum {
		return k.require(KernelVersion{5, 3}, "tunnel checksum options")
	}
	return nil
}

// ValidateDaemon checks a sync daemon against ipvsadm's ranges.
func ValidateDaemon(d Daemon) error {
	state, ok := DaemonStates.Word(d.State)
	if !ok {
		return rule("sync daemon: state must be %s", DaemonStates.OneOf())
	}
	if d.Interface == "" || len(d.Interface) > 15 {
		return rule("%s sync daemon: interface name %q must be 1..15 characters", state, d.Interface)
	}
	if !SyncIDRange.In(int64(d.SyncID)) {
		return rule("%s sync daemon: %s", state, SyncIDRange.Refusal(int64(d.SyncID)))
	}
	// MaxLen 0 is the kernel's default, not a value.
	if d.MaxLen != 0 && !MaxLenRange.In(int64(d.MaxLen)) {
		return rule("%s sync daemon: %s", state, MaxLenRange.Refusal(int64(d.MaxLen)))
	}
	if d.Group.IsValid() && !d.Group.IsMulticast() {
		return rule("%s sync daemon: group %v is not a multicast address", state, d.Group)
	}
	return nil
}
