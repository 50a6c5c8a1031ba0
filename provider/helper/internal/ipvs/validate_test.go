package ipvs

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestValidateService(t *testing.T) {
	k6 := KernelVersion{6, 1}
	base := svc("192.0.2.1", 80)
	base.Sched, base.Netmask = "wlc", 0xffffffff
	mod := func(f func(*Service)) Service { s := base; f(&s); return s }
	cases := []struct {
		s    Service
		kv   KernelVersion
		want string // "" = valid; "unsupported:" prefix = needs newer kernel
	}{
		{base, k6, ""},
		{mod(func(s *Service) { s.Port = 0 }), k6, "port 0 is only allowed for persistent"},
		{mod(func(s *Service) { s.Port = 0; s.Flags = FlagPersistent; s.Timeout = 360 }), k6, ""},
		{mod(func(s *Service) { s.Sched = "foo" }), k6, "unknown scheduler"},
		{mod(func(s *Service) { s.Sched = "twos" }), KernelVersion{6, 1}, "unsupported:scheduler twos needs Linux 6.2"},
		{mod(func(s *Service) { s.Sched = "twos" }), KernelVersion{6, 2}, ""},
		{mod(func(s *Service) { s.Flags = FlagPersistent; s.Timeout = MaxPersistence + 1 }), k6, "persistence timeout"},
		{mod(func(s *Service) { s.Netmask = 0xffffff00 }), k6, "netmask needs persistence"},
		{mod(func(s *Service) { s.Flags = FlagPersistent; s.Timeout = 1; s.Netmask = 0xff00ff00 }), k6, "contiguous"},
		{mod(func(s *Service) { s.Flags = FlagOnePacket }), k6, "one-packet"},
		{mod(func(s *Service) { s.Protocol = ProtoUDP; s.Flags = FlagOnePacket }), k6, ""},
		{mod(func(s *Service) { s.PE = "xyz" }), k6, "persistence engine"},
		{mod(func(s *Service) { s.Protocol = 99 }), k6, "protocol must be"},
		{mod(func(s *Service) { s.Addr = netip.MustParseAddr("2001:db8::1") }), k6, "not an ipv4 address"},
	}
	for i, c := range cases {
		err := ValidateService(c.s, c.kv)
		checkRule(t, i, err, c.want)
	}
}

func checkRule(t *testing.T, i int, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Errorf("case %d: unexpected %v", i, err)
		}
		return
	}
	var re *RuleError
	if !errors.As(err, &re) {
		t.Errorf("case %d: want %q, got %v", i, want, err)
		return
	}
	unsupported := strings.HasPrefix(want, "unsupported:")
	if re.Unsupported != unsupported || !strings.Contains(re.Msg, strings.TrimPrefix(want, "unsupported:")) {
		t.Errorf("case %d: want %q, got %q (unsupported=%v)", i, want, re.Msg, re.Unsupported)
	}
}

func TestValidateDest(t *testing.T) {
	k6 := KernelVersion{6, 1}
	s := svc("192.0.2.1", 80).ServiceKey
	fw := ServiceKey{AF: AFInet, FWMark: 3}
	d := func(addr string, port uint16, fwd uint32) Dest {
		a := netip.MustParseAddr(addr)
		af := AFInet
		if a.Is6() {
			af = AFInet6
		}
		return Dest{DestKey: DestKey{AF: af, Addr: a, Port: port}, DestSettings: DestSettings{Fwd: fwd, Weight: 1}}
	}
	tun := func(typ uint8, port, flags uint16) Dest {
		x := d("10.0.0.1", 80, FwdTunnel)
		x.TunType, x.TunPort, x.TunFlags = typ, port, flags
		return x
	}
	cases := []struct {
		svc  ServiceKey
		d    Dest
		kv   KernelVersion
		want string
	}{
		{s, d("10.0.0.1", 8080, FwdMasq), k6, ""},
		{s, d("10.0.0.1", 8080, FwdRoute), k6, "must equal the service port 80"},
		{fw, d("10.0.0.1", 8080, FwdRoute), k6, ""},
		{s, d("2001:db8::1", 80, FwdMasq), k6, "needs tunnel forwarding"},
		{s, d("2001:db8::1", 80, FwdTunnel), k6, ""},
		{s, d("10.0.0.1", 80, FwdBypass), k6, "cannot be set"},
		{s, func() Dest { x := d("10.0.0.1", 80, FwdMasq); x.Weight = 65536; return x }(), k6, "weight 65536"},
		{s, func() Dest { x := d("10.0.0.1", 80, FwdMasq); x.TunType = TunGUE; return x }(), k6, "need tunnel forwarding"},
		{s, tun(TunIPIP, 0, 0), k6, ""},
		{s, tun(TunIPIP, 10, 0), k6, "ipip tunnel takes no port"},
		{s, tun(TunGUE, 0, 0), k6, "needs a port"},
		{s, tun(TunGUE, 6080, TunRemCsum), k6, ""},
		{s, tun(TunGUE, 6080, 0), KernelVersion{5, 1}, "unsupported:GUE tunnels need"},
		{s, tun(TunGRE, 0, TunCsum), KernelVersion{5, 2}, "unsupported:GRE tunnels need"},
		{s, tun(TunGRE, 0, TunRemCsum), k6, "not remcsum"},
		{s, tun(TunGRE, 5, 0), k6, "takes no port"},
	}
	for i, c := range cases {
		checkRule(t, i, ValidateDest(c.svc, c.d, c.kv), c.want)
	}
}

func TestParseKernelRelease(t *testing.T) {
	for rel, want := range map[string]KernelVersion{"6.1.0-18-amd64": {6, 1}, "5.12": {5, 12}, "4.19.0+": {4, 19}, "weird": {}} {
		if got := ParseKernelRelease(rel); got != want {
			t.Errorf("%s: %v", rel, got)
		}
	}
	if (KernelVersion{}).Lacks(KernelVersion{9, 9}) {
		t.Error("an unknown kernel refuses nothing")
	}
}

func TestNetmaskAndFlags(t *testing.T) {
	if m, err := ParseNetmask(AFInet, "255.255.240.0"); err != nil || m != 0xfffff000 || NetmaskString(AFInet, m) != "255.255.240.0" {
		t.Errorf("v4 %x %v", m, err)
	}
	for _, bad := range []string{"255.0.255.0", "0.0.0.0", "24", "::1"} {
		if _, err := ParseNetmask(AFInet, bad); err == nil {
			t.Errorf("v4 netmask %q accepted", bad)
		}
	}
	if _, err := ParseNetmask(AFInet6, "129"); err == nil {
		t.Error("v6 prefix 129 accepted")
	}
	if f, err := SchedFlagsFromNames("sh", []string{"sh-fallback", "sh-port"}); err != nil || f != FlagSched1|FlagSched2 {
		t.Errorf("sh flags %x %v", f, err)
	}
	if _, err := SchedFlagsFromNames("rr", []string{"mh-port"}); err == nil || !strings.Contains(err.Error(), "needs scheduler mh") {
		t.Errorf("mh-port with rr: %v", err)
	}
	if got := strings.Join(SchedFlagNames("mh", FlagSched1|FlagSched2|FlagSched3), ","); got != "mh-fallback,mh-port" {
		t.Errorf("mh names %q (ipvsadm does not print flag-3 for mh)", got)
	}
	if got := strings.Join(SchedFlagNames("rr", FlagSched1|FlagSched3), ","); got != "flag-1,flag-3" {
		t.Errorf("rr names %q", got)
	}
}
