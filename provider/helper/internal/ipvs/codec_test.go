package ipvs

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/mdlayher/netlink"
)

// attrs decodes one nesting level into type → payload.
func attrs(t *testing.T, b []byte) map[uint16][]byte {
	t.Helper()
	as, err := netlink.UnmarshalAttributes(b)
	if err != nil {
		t.Fatal(err)
	}
	m := map[uint16][]byte{}
	for _, a := range as {
		m[a.Type&^netlink.Nested] = a.Data
	}
	return m
}

func TestEncodeServiceIPv4(t *testing.T) {
	s := Service{ServiceKey: ServiceKey{AF: AFInet, Protocol: ProtoTCP, Addr: netip.MustParseAddr("192.0.2.10"), Port: 8080}, ServiceSettings: ServiceSettings{Sched: "sh", Flags: FlagPersistent | FlagSched1 | FlagHashed, Timeout: 300, Netmask: 0xffffff00, PE: "sip"}}
	b, err := EncodeService(s)
	if err != nil {
		t.Fatal(err)
	}
	svc := attrs(t, attrs(t, b)[attrService])
	check := func(typ uint16, want []byte) {
		t.Helper()
		if !bytes.Equal(svc[typ], want) {
			t.Errorf("attr %d = % x, want % x", typ, svc[typ], want)
		}
	}
	check(svcAF, binary.NativeEndian.AppendUint16(nil, AFInet))
	check(svcProtocol, binary.NativeEndian.AppendUint16(nil, ProtoTCP))
	check(svcAddr, []byte{192, 0, 2, 10})
	check(svcPort, []byte{0x1f, 0x90}) // 8080 big-endian
	check(svcSchedName, []byte("sh\x00"))
	// flags without HASHED, mask all ones
	check(svcFlags, append(binary.NativeEndian.AppendUint32(nil, FlagPersistent|FlagSched1), 0xff, 0xff, 0xff, 0xff))
	check(svcTimeout, binary.NativeEndian.AppendUint32(nil, 300))
	check(svcNetmask, []byte{0xff, 0xff, 0xff, 0x00}) // IPv4 mask in network order
	check(svcPEName, []byte("sip\x00"))
	if _, ok := svc[svcFWMark]; ok {
		t.Error("an address service must not carry FWMARK")
	}
}

func TestEncodeServiceFWMarkIPv6(t *testing.T) {
	s := Service{ServiceKey: ServiceKey{AF: AFInet6, FWMark: 7}, ServiceSettings: ServiceSettings{Sched: "rr", Netmask: 64}}
	b, _ := EncodeService(s)
	svc := attrs(t, attrs(t, b)[attrService])
	if !bytes.Equal(svc[svcFWMark], binary.NativeEndian.AppendUint32(nil, 7)) {
		t.Errorf("fwmark % x", svc[svcFWMark])
	}
	for _, typ := range []uint16{svcProtocol, svcAddr, svcPort, svcPEName} {
		if _, ok := svc[typ]; ok {
			t.Errorf("fwmark service carries attr %d", typ)
		}
	}
	// IPv6 netmask is a prefix length in host order
	if !bytes.Equal(svc[svcNetmask], binary.NativeEndian.AppendUint32(nil, 64)) {
		t.Errorf("netmask % x", svc[svcNetmask])
	}
}

func TestEncodeDestTunnel(t *testing.T) {
	k := ServiceKey{AF: AFInet6, FWMark: 5}
	d := Dest{DestKey: DestKey{AF: AFInet, Addr: netip.MustParseAddr("10.0.0.3"), Port: 0}, DestSettings: DestSettings{Fwd: FwdTunnel, Weight: 10, UThresh: 100, LThresh: 5, Tunnel: Tunnel{TunType: TunGUE, TunPort: 6080, TunFlags: TunCsum}}}
	b, _ := EncodeDest(k, d)
	top := attrs(t, b)
	dest := attrs(t, top[attrDest])
	if !bytes.Equal(dest[destTunPort], []byte{0x17, 0xc0}) { // 6080 big-endian
		t.Errorf("tun port % x", dest[destTunPort])
	}
	if !bytes.Equal(dest[destAF], binary.NativeEndian.AppendUint16(nil, AFInet)) {
		t.Errorf("dest af % x (mixed-family dest must name its own family)", dest[destAF])
	}
	if dest[destTunType][0] != TunGUE || binary.NativeEndian.Uint16(dest[destTunFlags]) != TunCsum {
		t.Error("tunnel type/flags")
	}
	if binary.NativeEndian.Uint32(dest[destUThresh]) != 100 || binary.NativeEndian.Uint32(dest[destLThresh]) != 5 {
		t.Error("thresholds")
	}
	// A non-tunnel dest sends no TUN_* attributes.
	d.Fwd, d.AF, d.Addr = FwdMasq, AFInet6, netip.MustParseAddr("2001:db8::3")
	b, _ = EncodeDest(k, d)
	dest = attrs(t, attrs(t, b)[attrDest])
	if _, ok := dest[destTunType]; ok {
		t.Error("masq dest carries TUN_TYPE")
	}
	if len(dest[destAddr]) != 16 {
		t.Errorf("v6 address of %d bytes", len(dest[destAddr]))
	}
}

func TestEncodeDaemonPortHostOrder(t *testing.T) {
	d := Daemon{State: DaemonBackup, Interface: "eth0", SyncID: 9, MaxLen: 1400, Group: netip.MustParseAddr("ff02::81"), Port: 8849, TTL: 3}
	b, _ := EncodeDaemon(d, false)
	a := attrs(t, attrs(t, b)[attrDaemon])
	if binary.NativeEndian.Uint16(a[daemonPort]) != 8849 {
		t.Errorf("daemon port must be host order: % x", a[daemonPort])
	}
	if len(a[daemonGroup6]) != 16 || a[daemonGroup] != nil {
		t.Error("IPv6 group must go in MCAST_GROUP6")
	}
	got, err := DecodeDaemon(b)
	if err != nil || got != d {
		t.Errorf("round trip %+v, %v", got, err)
	}
}

// kernelReply builds a NEW_SERVICE reply the way the kernel does: 16-byte address, HASHED flag, STATS and STATS64.
func kernelReply(t *testing.T) []byte {
	ae := netlink.NewAttributeEncoder()
	ae.Nested(attrService, func(n *netlink.AttributeEncoder) error {
		n.Uint16(svcAF, AFInet)
		n.Uint16(svcProtocol, ProtoUDP)
		n.Bytes(svcAddr, append([]byte{198, 51, 100, 1}, make([]byte, 12)...))
		n.Bytes(svcPort, []byte{0, 53})
		n.String(svcSchedName, "rr")
		n.Bytes(svcFlags, append(binary.NativeEndian.AppendUint32(nil, FlagHashed|FlagOnePacket), 0xff, 0xff, 0xff, 0xff))
		n.Uint32(svcTimeout, 0)
		n.Bytes(svcNetmask, []byte{0xff, 0xff, 0xff, 0xff})
		n.Nested(svcStats, func(s *netlink.AttributeEncoder) error {
			s.Uint32(statConns, 1)
			s.Uint64(statInBytes, 2)
			return nil
		})
		n.Nested(svcStats64, func(s *netlink.AttributeEncoder) error {
			s.Uint64(statConns, 1<<40)
			s.Uint64(statInBytes, 1<<50)
			s.Uint64(statOutBPS, 7)
			return nil
		})
		return nil
	})
	b, err := ae.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeServiceFromKernel(t *testing.T) {
	s, err := DecodeService(kernelReply(t))
	if err != nil {
		t.Fatal(err)
	}
	if s.Addr != netip.MustParseAddr("198.51.100.1") || s.Port != 53 || s.Protocol != ProtoUDP {
		t.Errorf("identity %v", s.ServiceKey)
	}
	if s.Flags != FlagOnePacket {
		t.Errorf("flags %#x: HASHED must be masked out", s.Flags)
	}
	if s.Netmask != 0xffffffff {
		t.Errorf("netmask %#x", s.Netmask)
	}
	if s.Stats.Conns != 1<<40 || s.Stats.InBytes != 1<<50 || s.Stats.OutBPS != 7 {
		t.Errorf("STATS64 must win: %+v", s.Stats)
	}
}

func TestServiceRoundTrip(t *testing.T) {
	for _, s := range []Service{
		{ServiceKey: ServiceKey{AF: AFInet6, Protocol: ProtoSCTP, Addr: netip.MustParseAddr("2001:db8::1"), Port: 443}, ServiceSettings: ServiceSettings{Sched: "mh", Flags: FlagPersistent, Timeout: 60, Netmask: 48}},
		{ServiceKey: ServiceKey{AF: AFInet, FWMark: 0xffffffff}, ServiceSettings: ServiceSettings{Sched: "twos", Netmask: 0xffffffff}},
	} {
		b, _ := EncodeService(s)
		got, err := DecodeService(b)
		if err != nil || got != s {
			t.Errorf("round trip:\n got %+v %v\nwant %+v", got, err, s)
		}
	}
}

func TestDestRoundTripAndOldKernelFamily(t *testing.T) {
	k := ServiceKey{AF: AFInet, Protocol: ProtoTCP, Addr: netip.MustParseAddr("192.0.2.1"), Port: 80}
	d := Dest{DestKey: DestKey{AF: AFInet, Addr: netip.MustParseAddr("10.0.0.1"), Port: 80}, DestSettings: DestSettings{Fwd: FwdTunnel, Weight: 3, Tunnel: Tunnel{TunType: TunGRE, TunFlags: TunCsum}}}
	b, _ := EncodeDest(k, d)
	got, err := DecodeDest(b, AFInet)
	if err != nil || got != d {
		t.Errorf("round trip %+v %v", got, err)
	}
	// Without ADDR_FAMILY (kernels < 3.18) the service family applies.
	ae := netlink.NewAttributeEncoder()
	ae.Nested(attrDest, func(n *netlink.AttributeEncoder) error {
		n.Bytes(destAddr, make([]byte, 16))
		n.Bytes(destPort, []byte{1, 0})
		return nil
	})
	b, _ = ae.Encode()
	got, err = DecodeDest(b, AFInet6)
	if err != nil || got.AF != AFInet6 || !got.Addr.Is6() || got.Port != 256 {
		t.Errorf("no-family dest: %+v %v", got, err)
	}
}

func TestDecodeRejectsGarbage(t *testing.T) {
	if _, err := DecodeService([]byte{1, 2, 3}); err == nil {
		t.Error("garbage decoded")
	}
	if _, err := DecodeDest(nil, AFInet); err == nil {
		t.Error("empty dest decoded")
	}
}

// kernelStats32 is a 32-bit STATS nest laid out as ip_vs_genl_fill_stats does: u32 counters and rates, the byte
// counters as u64 (nla_put_u64_64bit, with a PAD attribute before them when unaligned).
func kernelStats32(s *netlink.AttributeEncoder) error {
	s.Uint32(statConns, 1)
	s.Uint32(statInPkts, 2)
	s.Uint32(statOutPkts, 3)
	s.Bytes(11, nil) // IPVS_STATS_ATTR_PAD
	s.Uint64(statInBytes, 1<<33)
	s.Uint64(statOutBytes, 5)
	s.Uint32(statCPS, 6)
	s.Uint32(statInPPS, 7)
	s.Uint32(statOutPPS, 8)
	s.Uint32(statInBPS, 9)
	s.Uint32(statOutBPS, 10)
	return nil
}

// Regression: "decoding service: netlink: attribute 4 is not a uint32; length: 8". The first decoder (37422c3) told
// STATS from STATS64 by AttributeDecoder.Len(), which is the number of attributes, not the payload length, so it read
// INBYTES (attr 4, u64) of every 32-bit STATS as a u32 and failed every service read. A reply carrying only STATS,
// STATS before STATS64, or attributes this helper does not know must all decode.
func TestDecodeStats32InServiceAndDest(t *testing.T) {
	want := Stats{Conns: 1, InPkts: 2, OutPkts: 3, InBytes: 1 << 33, OutBytes: 5, CPS: 6, InPPS: 7, OutPPS: 8, InBPS: 9, OutBPS: 10}
	ae := netlink.NewAttributeEncoder()
	ae.Nested(attrService, func(n *netlink.AttributeEncoder) error {
		n.Uint16(svcAF, AFInet)
		n.Uint16(svcProtocol, ProtoTCP)
		n.Bytes(svcAddr, append([]byte{192, 0, 2, 1}, make([]byte, 12)...))
		n.Bytes(svcPort, []byte{0, 80})
		n.String(svcSchedName, "wlc")
		n.Bytes(svcFlags, make([]byte, 8))
		n.Uint32(svcTimeout, 0)
		n.Bytes(svcNetmask, []byte{0xff, 0xff, 0xff, 0xff})
		n.Nested(svcStats, kernelStats32)
		n.Uint64(40, 1) // an attribute of a newer kernel
		return nil
	})
	b, err := ae.Encode()
	if err != nil {
		t.Fatal(err)
	}
	s, err := DecodeService(b)
	if err != nil || s.Stats != want || s.Port != 80 {
		t.Fatalf("service with 32-bit STATS only: %+v %v", s, err)
	}

	ae = netlink.NewAttributeEncoder()
	ae.Nested(attrDest, func(n *netlink.AttributeEncoder) error {
		n.Bytes(destAddr, append([]byte{10, 0, 0, 1}, make([]byte, 12)...))
		n.Bytes(destPort, []byte{0x1f, 0x90})
		n.Uint32(destFwd, FwdMasq)
		n.Uint32(destWeight, 4)
		n.Uint32(destUThresh, 0)
		n.Uint32(destLThresh, 0)
		n.Uint32(destActive, 0)
		n.Uint32(destInact, 0)
		n.Uint32(destPersist, 0)
		n.Nested(destStats, kernelStats32)
		n.Uint16(destAF, AFInet)
		n.Nested(destStats64, func(s *netlink.AttributeEncoder) error {
			s.Uint64(statConns, 1)
			s.Uint64(statInBytes, 1<<33)
			return nil
		})
		return nil
	})
	if b, err = ae.Encode(); err != nil {
		t.Fatal(err)
	}
	d, err := DecodeDest(b, AFInet)
	if err != nil || d.Weight != 4 || d.Port != 8080 || d.Stats != (Stats{Conns: 1, InBytes: 1 << 33}) {
		t.Fatalf("dest with STATS then STATS64: %+v %v", d, err)
	}
}
