package engine

import (
	"net/netip"
	"testing"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
)

func ptr[T any](v T) *T { return &v }

var key = ipvs.ServiceKey{AF: ipvs.AFInet, Protocol: ipvs.ProtoUDP, Addr: netip.MustParseAddr("192.0.2.1"), Port: 53}

func TestMergeServiceDefaultsAndKeeps(t *testing.T) {
	s, err := mergeService(nil, key, protocol.ServiceChange{})
	if err != nil || s.Sched != "wlc" || s.Flags != 0 || s.Netmask != 0xffffffff || s.Timeout != 0 {
		t.Fatalf("defaults %+v %v", s, err)
	}
	cur := ipvs.Service{ServiceKey: key, ServiceSettings: ipvs.ServiceSettings{Sched: "sh", Flags: ipvs.FlagPersistent | ipvs.FlagSched1 | ipvs.FlagOnePacket, Timeout: 99, Netmask: 0xffffff00, PE: "sip"},
		Stats: ipvs.Stats{Conns: 5}}
	// Changing only the scheduler keeps every other field (unmentioned fields are never reset).
	s, _ = mergeService(&cur, key, protocol.ServiceChange{Scheduler: ptr("rr")})
	want := cur
	want.Sched, want.Stats = "rr", ipvs.Stats{}
	if s != want {
		t.Errorf("got %+v\nwant %+v", s, want)
	}
	if cur.ServiceSettings == s.ServiceSettings {
		t.Error("a scheduler change must be seen")
	}
	// Same settings again: equal, so no SET.
	s, _ = mergeService(&cur, key, protocol.ServiceChange{Scheduler: ptr("sh"), HasFlags: true, Flags: []string{"sh-fallback"}})
	if cur.ServiceSettings != s.ServiceSettings {
		t.Errorf("re-apply must compare equal: %+v", s)
	}
	// persistence null drops timeout and netmask; PE "" removes it.
	s, _ = mergeService(&cur, key, protocol.ServiceChange{Persistence: protocol.Opt[protocol.Persistence]{Set: true, Null: true}, PE: ptr("")})
	if s.Flags&ipvs.FlagPersistent != 0 || s.Timeout != 0 || s.Netmask != 0xffffffff || s.PE != "" || s.Flags&ipvs.FlagOnePacket == 0 {
		t.Errorf("unpersist %+v", s)
	}
	// {} persistence = ipvsadm's -p default.
	s, _ = mergeService(nil, key, protocol.ServiceChange{Persistence: protocol.Opt[protocol.Persistence]{Set: true}})
	if s.Timeout != 360 || s.Flags != ipvs.FlagPersistent {
		t.Errorf("-p default %+v", s)
	}
	if _, err := mergeService(&cur, key, protocol.ServiceChange{HasFlags: true, Flags: []string{"mh-port"}}); err == nil {
		t.Error("mh-port under sh accepted")
	}
}

func TestMergeDest(t *testing.T) {
	dk := ipvs.DestKey{AF: ipvs.AFInet, Addr: netip.MustParseAddr("10.0.0.1"), Port: 53}
	d, _ := mergeDest(nil, dk, protocol.DestChange{})
	if d.Fwd != ipvs.FwdRoute || d.Weight != 1 {
		t.Errorf("defaults %+v", d)
	}
	cur := ipvs.Dest{DestKey: dk, DestSettings: ipvs.DestSettings{Fwd: ipvs.FwdTunnel, Weight: 4, UThresh: 9, LThresh: 3, Tunnel: ipvs.Tunnel{TunType: ipvs.TunGUE, TunPort: 6080, TunFlags: ipvs.TunCsum}}, ActiveConns: 7}
	d, _ = mergeDest(&cur, dk, protocol.DestChange{Weight: ptr(uint32(8))})
	if d.Weight != 8 || d.TunType != ipvs.TunGUE || d.TunPort != 6080 || d.UThresh != 9 || d.LThresh != 3 {
		t.Errorf("weight change must keep the tunnel and thresholds: %+v", d)
	}
	d, _ = mergeDest(&cur, dk, protocol.DestChange{Weight: ptr(uint32(4))})
	if cur.DestSettings != d.DestSettings {
		t.Error("same settings must compare equal (counters do not count)")
	}
	d, _ = mergeDest(&cur, dk, protocol.DestChange{Fwd: ptr(ipvs.FwdMasq)})
	if d.TunType != 0 || d.TunPort != 0 || d.TunFlags != 0 {
		t.Errorf("leaving tunnel forwarding clears the tunnel: %+v", d)
	}
	if _, err := mergeDest(nil, dk, protocol.DestChange{Fwd: ptr(ipvs.FwdMasq), Tunnel: protocol.Opt[ipvs.Tunnel]{Set: true, Val: ipvs.Tunnel{TunType: ipvs.TunIPIP}}}); err == nil {
		t.Error("a tunnel with nat forwarding accepted")
	}
}
