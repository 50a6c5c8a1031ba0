package ipvs

import (
	"net/netip"
	"testing"
)

// Each range message names its own field and range: a message built from the wrong row of the table (a persistence
// timeout of 0 once reported the thresholds' range) fails here.
func TestRangeMessages(t *testing.T) {
	k := KernelVersion{6, 1}
	svcKey := ServiceKey{AF: AFInet, Protocol: ProtoTCP, Addr: netip.MustParseAddr("192.0.2.1"), Port: 80}
	persistent := func(timeout uint32) error {
		return ValidateService(Service{ServiceKey: svcKey, ServiceSettings: ServiceSettings{Sched: "wlc", Flags: FlagPersistent,
			Timeout: timeout, Netmask: 0xffffffff}}, k)
	}
	dest := func(f func(*DestSettings)) error {
		s := DefaultDest
		f(&s)
		return ValidateDest(svcKey, Dest{DestKey: DestKey{AF: AFInet, Addr: netip.MustParseAddr("10.0.0.1"), Port: 80}, DestSettings: s}, k)
	}
	daemon := func(f func(*Daemon)) error {
		d := Daemon{State: DaemonMaster, Interface: "eth0"}
		f(&d)
		return ValidateDaemon(d)
	}
	for _, c := range []struct {
		err  error
		want string
	}{
		{persistent(0), "service tcp 192.0.2.1:80: persistence timeout 0 must be 1..2678400 seconds"},
		{persistent(MaxPersistence + 1), "service tcp 192.0.2.1:80: persistence timeout 2678401 must be 1..2678400 seconds"},
		{dest(func(s *DestSettings) { s.Weight = 65536 }), "real server 10.0.0.1:80 of service tcp 192.0.2.1:80: weight 65536 must be 0..65535"},
		{dest(func(s *DestSettings) { s.UThresh = 1 << 31 }), "real server 10.0.0.1:80 of service tcp 192.0.2.1:80: thresholds must be 0..2147483647"},
		{dest(func(s *DestSettings) { s.LThresh = 1 << 31 }), "real server 10.0.0.1:80 of service tcp 192.0.2.1:80: thresholds must be 0..2147483647"},
		{daemon(func(d *Daemon) { d.SyncID = 256 }), "master sync daemon: syncid 256 must be 0..255"},
		{daemon(func(d *Daemon) { d.State = DaemonBackup; d.MaxLen = 65508 }), "backup sync daemon: maxlen 65508 must be 1..65507"},
		{daemon(func(d *Daemon) { d.State = 7 }), "sync daemon: state must be master or backup"},
	} {
		if c.err == nil || c.err.Error() != c.want {
			t.Errorf("got %v\nwant %s", c.err, c.want)
		}
	}
	// In range, including each bound: no message.
	for _, err := range []error{persistent(1), persistent(MaxPersistence), dest(func(s *DestSettings) { s.Weight = 65535 }),
		dest(func(s *DestSettings) { s.UThresh, s.LThresh = 1<<31-1, 1<<31-1 }), daemon(func(d *Daemon) { d.SyncID, d.MaxLen = 255, 65507 })} {
		if err != nil {
			t.Errorf("in range refused: %v", err)
		}
	}
}

func TestEnumWords(t *testing.T) {
	if got := TunnelTypes.OneOf(); got != "ipip, gue or gre" {
		t.Errorf("OneOf %q", got)
	}
	for _, f := range []uint32{FwdMasq, FwdLocalNode, FwdTunnel, FwdRoute, FwdBypass, 7} {
		want := map[uint32]string{FwdMasq: "nat", FwdLocalNode: "local", FwdTunnel: "tunnel", FwdRoute: "dr"}[f]
		if want == "" {
			want = "bypass"
		}
		if FwdName(f) != want {
			t.Errorf("FwdName(%d) = %q, want %q", f, FwdName(f), want)
		}
	}
	if n, ok := Forwardings.Num("local"); ok {
		t.Errorf("local is only read back, not accepted (%d)", n)
	}
}

// `ipvs-helper names` prints Ranges for the provider's vocabulary test, which looks fields up by key.
func TestRangesPrintable(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range Ranges {
		if r.Key == "" || r.What == "" || r.Min > r.Max || seen[r.Key] {
			t.Errorf("range %+v: needs a unique key, a name and min <= max", r)
		}
		seen[r.Key] = true
	}
	if DefaultDest.Weight != uint32(*WeightRange.Default) || *PersistenceRange.Default != DefaultPersistence {
		t.Error("the defaults of a new entry and of the range table differ")
	}
}
