package engine

import (
	"fmt"
	"net/netip"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ledger"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
)

// fakeNet is the director's interfaces: name → addresses (nil map entry: the interface exists with none).
type fakeNet struct {
	ifs       map[string][]netip.Addr
	announced []string
	up        map[string]bool
}

func (n *fakeNet) IsUp(name string) (bool, bool, error) {
	_, ok := n.ifs[name]
	return n.up[name], ok, nil
}
func (n *fakeNet) SetUp(name string, up bool) error {
	if _, ok := n.ifs[name]; !ok {
		return fmt.Errorf("no interface %s", name)
	}
	if n.up == nil {
		n.up = map[string]bool{}
	}
	n.up[name] = up
	return nil
}

func (n *fakeNet) Addrs(name string) ([]netip.Addr, bool, error) {
	a, ok := n.ifs[name]
	return slices.Clone(a), ok, nil
}
func (n *fakeNet) Holders(a netip.Addr) ([]string, error) {
	var out []string
	for name, list := range n.ifs {
		if slices.Contains(list, a) {
			out = append(out, name)
		}
	}
	return out, nil
}
func (n *fakeNet) EnsureDummy(name string) error {
	if _, ok := n.ifs[name]; !ok {
		n.ifs[name] = []netip.Addr{}
	}
	return nil
}
func (n *fakeNet) DeleteLink(name string) error { delete(n.ifs, name); return nil }
func (n *fakeNet) AddAddr(name string, a netip.Addr) error {
	if _, ok := n.ifs[name]; !ok {
		return fmt.Errorf("no interface %s", name)
	}
	n.ifs[name] = append(n.ifs[name], a)
	return nil
}
func (n *fakeNet) DelAddr(name string, a netip.Addr) error {
	n.ifs[name] = slices.DeleteFunc(n.ifs[name], func(x netip.Addr) bool { return x == a })
	return nil
}
func (n *fakeNet) Announce(name string, a netip.Addr) error {
	n.announced = append(n.announced, name+" "+a.String())
	return nil
}

func bindSvc(ip string, port int, bind, o string) string {
	return fmt.Sprintf(`{"op":"ensureService","service":{"family":"ipv4","protocol":"tcp","address":%q,"port":%d},"owner":%q,"bindAddress":%s}`, ip, port, o, bind)
}

func delSvc(ip string, port int, o string) string {
	return fmt.Sprintf(`{"op":"deleteService","service":{"family":"ipv4","protocol":"tcp","address":%q,"port":%d},"owner":%q}`, ip, port, o)
}

func newVipEngine(t *testing.T) (*fakeNet, *Engine) {
	_, e := newOwnedEngine(t)
	n := &fakeNet{ifs: map[string][]netip.Addr{"eth0": {netip.MustParseAddr("10.0.2.15")}, "lo": {netip.MustParseAddr("127.0.0.1")}}}
	e.Net = n
	return n, e
}

func has(n *fakeNet, iface, a string) bool {
	return slices.Contains(n.ifs[iface], netip.MustParseAddr(a))
}

// An address is counted across services and stacks: added with the first binder (on ipvs0, created for it), kept
// while any service binds it, removed with the last (and ipvs0 with its last address).
func TestBindAddressIsCountedAcrossServicesAndStacks(t *testing.T) {
	n, e := newVipEngine(t)
	wantCode(t, "first", run(t, e, bindSvc("192.0.2.10", 80, "true", stackA))[0], "ok")
	if !has(n, "ipvs0", "192.0.2.10") {
		t.Fatalf("not bound: %v", n.ifs)
	}
	wantCode(t, "second service, other stack", run(t, e, bindSvc("192.0.2.10", 443, "true", stackB))[0], "ok")
	wantCode(t, "other interface refused", run(t, e, bindSvc("192.0.2.10", 8080, `{"interface":"eth0"}`, stackA))[0], protocol.CodeBadRequest,
		"binds it on interface ipvs0", "same interface")
	wantCode(t, "first goes", run(t, e, delSvc("192.0.2.10", 80, stackA))[0], "ok")
	if !has(n, "ipvs0", "192.0.2.10") {
		t.Fatal("the address went while another service binds it")
	}
	// Removed by hand: read back as not present (drift), healed by the next ensure.
	n.DelAddr("ipvs0", netip.MustParseAddr("192.0.2.10"))
	got := run(t, e, `{"op":"getService","service":{"family":"ipv4","protocol":"tcp","address":"192.0.2.10","port":443},"withDests":false}`)[0]
	if b := got["service"].(protocol.ServiceOut).BindAddress; b == nil || *b.Present || b.Interface != "ipvs0" || !b.Dummy {
		t.Fatalf("read-back of a removed address: %+v", b)
	}
	wantCode(t, "heal", run(t, e, bindSvc("192.0.2.10", 443, "true", stackB))[0], "ok")
	if !has(n, "ipvs0", "192.0.2.10") {
		t.Fatal("the next ensure did not put the address back")
	}
	wantCode(t, "unbind (bindAddress false)", run(t, e, bindSvc("192.0.2.10", 443, "false", stackB))[0], "ok")
	if _, ok := n.ifs["ipvs0"]; ok {
		t.Fatalf("ipvs0 stayed after its last address: %v", n.ifs)
	}
	wantCode(t, "last goes", run(t, e, delSvc("192.0.2.10", 443, stackB))[0], "ok")
	if _, err := os.Stat(ledger.Dir); !os.IsNotExist(err) {
		t.Fatal("the ledger stayed after the last entry")
	}
}

// An address already there that no stack added is used and left alone; on a named interface a new address is
// announced; the boot restore puts bound addresses back.
func TestBindAddressFoundAnnouncedAndRestored(t *testing.T) {
	n, e := newVipEngine(t)
	n.ifs["eth0"] = append(n.ifs["eth0"], netip.MustParseAddr("192.0.2.20"))
	wantCode(t, "found", run(t, e, bindSvc("192.0.2.20", 80, `{"interface":"eth0"}`, stackA))[0], "ok")
	wantCode(t, "on another interface", run(t, e, bindSvc("192.0.2.20", 81, "true", stackB))[0], protocol.CodeBadRequest)
	wantCode(t, "missing interface", run(t, e, bindSvc("192.0.2.21", 80, `{"interface":"eth9"}`, stackA))[0], protocol.CodeNotFound, "no interface eth9")
	wantCode(t, "found, delete", run(t, e, delSvc("192.0.2.20", 80, stackA))[0], "ok")
	if !has(n, "eth0", "192.0.2.20") {
		t.Fatal("an address found there was removed")
	}
	if len(n.announced) != 0 {
		t.Fatalf("an address found there was announced: %v", n.announced)
	}
	wantCode(t, "added on eth0", run(t, e, bindSvc("192.0.2.30", 80, `{"interface":"eth0"}`, stackA))[0], "ok")
	if !has(n, "eth0", "192.0.2.30") || !slices.Equal(n.announced, []string{"eth0 192.0.2.30"}) {
		t.Fatalf("added %v, announced %v", n.ifs, n.announced)
	}
	wantCode(t, "dummy", run(t, e, bindSvc("192.0.2.31", 80, "true", stackA))[0], "ok")

	// A reboot: no addresses, no ipvs0, no table; boot restores both addresses before the entries.
	n.ifs = map[string][]netip.Addr{"eth0": {netip.MustParseAddr("10.0.2.15")}}
	f := newFake()
	e2 := New(f, e.kv, nil)
	e2.Net = n
	if _, failures := e2.Boot(time.Now().Add(10 * time.Second)); len(failures) != 0 {
		t.Fatal(failures)
	}
	if !has(n, "eth0", "192.0.2.30") || !has(n, "ipvs0", "192.0.2.31") || len(f.svcs) != 2 {
		t.Fatalf("after boot: %v, %d services", n.ifs, len(f.svcs))
	}
}

// Refused before anything is done: no owner, a fwmark service, a bad interface name, ipvs0 by name.
func TestBindAddressRequestRules(t *testing.T) {
	_, e := newVipEngine(t)
	for what, c := range map[string]struct{ op, msg string }{
		"no owner": {`{"op":"ensureService","service":{"family":"ipv4","protocol":"tcp","address":"192.0.2.1","port":80},"bindAddress":true}`, `needs "owner"`},
		"fwmark":   {`{"op":"ensureService","service":{"family":"ipv4","fwmark":7},"owner":"a/b/c","bindAddress":true}`, "fwmark"},
		"long":     {bindSvc("192.0.2.1", 80, `{"interface":"abcdefghijklmnop"}`, stackA), "1 to 15"},
		"slash":    {bindSvc("192.0.2.1", 80, `{"interface":"a/b"}`, stackA), "'/'"},
		"dots":     {bindSvc("192.0.2.1", 80, `{"interface":".."}`, stackA), `".."`},
		"ipvs0":    {bindSvc("192.0.2.1", 80, `{"interface":"ipvs0"}`, stackA), "bindAddress true"},
		"shape":    {bindSvc("192.0.2.1", 80, `"eth0"`, stackA), "false, true or"},
	} {
		wantCode(t, what, run(t, e, c.op)[0], protocol.CodeBadRequest, c.msg)
	}
}
