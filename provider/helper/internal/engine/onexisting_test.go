package engine

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
)

func withOnExisting(op, onExisting string) string {
	return strings.TrimSuffix(op, "}") + fmt.Sprintf(`,"onExisting":%q}`, onExisting)
}

// "match" is the create that may be re-sent after its answer was lost: it creates an absent entry, accepts one that
// already holds every given setting without writing, and refuses (EXISTS) one that differs, like "fail".
func TestMatchCreatesAcceptsIdenticalRefusesDifferent(t *testing.T) {
	f := newFake()
	e := New(f, ipvs.KernelVersion{Major: 6, Minor: 1}, nil)
	svc := func(ip, sched string) string { return withOnExisting(svcJSON(ip, sched), "match") }
	dest := func(ip, rip string, w int) string { return withOnExisting(destJSON("ensureDest", ip, rip, w), "match") }

	res := run(t, e, svc("192.0.2.1", "rr"), dest("192.0.2.1", "10.0.0.1", 3))
	for i, r := range res {
		if code(r) != "ok" || r["created"] != true || r["changed"] != true {
			t.Fatalf("create op %d: %v", i, r)
		}
	}

	f.batches = nil
	res = run(t, e, svc("192.0.2.1", "rr"), dest("192.0.2.1", "10.0.0.1", 3))
	for i, r := range res {
		if code(r) != "ok" || r["created"] != false || r["changed"] != false {
			t.Errorf("identical op %d: %v", i, r)
		}
	}
	if len(f.batches) != 0 {
		t.Errorf("an identical entry was written: %v", f.batches)
	}

	res = run(t, e, svc("192.0.2.1", "wlc"), dest("192.0.2.1", "10.0.0.1", 4))
	for i, want := range []string{"192.0.2.1:80 already exists (now: -A -t 192.0.2.1:80 -s rr)", "already exists (now: -a -t 192.0.2.1:80 -r 10.0.0.1:8080 -m -w 3)"} {
		err, _ := res[i]["error"].(*protocol.Error)
		if code(res[i]) != protocol.CodeExists || !strings.Contains(err.Message, want) {
			t.Errorf("different op %d: %v, want EXISTS with %q", i, res[i], want)
		}
	}
	if len(f.batches) != 0 {
		t.Errorf("a different entry was written: %v", f.batches)
	}
	k := ipvs.ServiceKey{AF: ipvs.AFInet, Protocol: ipvs.ProtoTCP, Addr: mustAddr("192.0.2.1"), Port: 80}
	if f.svcs[k].Sched != "rr" || f.dests[k][ipvs.DestKey{AF: ipvs.AFInet, Addr: mustAddr("10.0.0.1"), Port: 8080}].Weight != 3 {
		t.Errorf("table changed: %v %v", f.svcs, f.dests)
	}
}

// "fail" still refuses an entry even when it holds exactly the given settings.
func TestFailRefusesIdentical(t *testing.T) {
	f := newFake()
	e := New(f, ipvs.KernelVersion{Major: 6, Minor: 1}, nil)
	run(t, e, svcJSON("192.0.2.1", "rr"), destJSON("ensureDest", "192.0.2.1", "10.0.0.1", 3))
	res := run(t, e, withOnExisting(svcJSON("192.0.2.1", "rr"), "fail"), withOnExisting(destJSON("ensureDest", "192.0.2.1", "10.0.0.1", 3), "fail"))
	for i, r := range res {
		if code(r) != protocol.CodeExists {
			t.Errorf("op %d: %v, want EXISTS", i, r)
		}
	}
}

// A create ("fail") reads neither its service nor the service's real servers to look for itself: the kernel's ESRCH
// and EEXIST say what is wrong, and only then are they read, so the refusal still names what is there.
func TestFailCreatesDoNotReadTheService(t *testing.T) {
	f := newFake()
	e := New(f, ipvs.KernelVersion{Major: 6, Minor: 1}, nil)
	run(t, e, svcJSON("192.0.2.1", "rr"))
	f.gets = 0
	for i, rip := range []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"} {
		if res := run(t, e, withOnExisting(destJSON("ensureDest", "192.0.2.1", rip, 3), "fail")); code(res[0]) != "ok" {
			t.Fatalf("create %d: %v", i, res[0])
		}
	}
	if f.dumps != 0 || f.gets != 0 {
		t.Errorf("three creates, each its own request, dumped the service's real servers %d times and read the service %d times, want 0 and 0", f.dumps, f.gets)
	}
	res := run(t, e, withOnExisting(destJSON("ensureDest", "192.0.2.9", "10.0.0.1", 3), "fail"))
	if code(res[0]) != protocol.CodeServiceNotFound || !strings.Contains(res[0]["error"].(*protocol.Error).Message, "the service does not exist") {
		t.Errorf("creating a dest of a missing service: %v, want %s saying the service does not exist", res[0], protocol.CodeServiceNotFound)
	}
	res = run(t, e, withOnExisting(destJSON("ensureDest", "192.0.2.1", "10.0.0.2", 5), "fail"))
	if code(res[0]) != protocol.CodeExists || !strings.Contains(res[0]["error"].(*protocol.Error).Message, "-r 10.0.0.2:8080 -m -w 3") {
		t.Errorf("creating an existing dest: %v, want EXISTS naming its weight 3", res[0])
	}
	if got := f.dests[svc1][ipvs.DestKey{AF: ipvs.AFInet, Addr: netip.MustParseAddr("10.0.0.2"), Port: 8080}].Weight; got != 3 {
		t.Errorf("the refused create changed the dest's weight to %d", got)
	}
}
