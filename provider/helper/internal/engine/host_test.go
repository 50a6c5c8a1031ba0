package engine

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ledger/ledgertest"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/sysctl"
)

const hostA, hostB = "urn:pulumi:a::p::ipvs:index:RealServerHost::rs1", "urn:pulumi:b::p::ipvs:index:RealServerHost::rs1"

// newHostEngine is a real server's host: no IPVS at all (a nil kernel: any IPVS call would panic), lo and eth0,
// and the ARP sysctls at the kernel's defaults in a /proc/sys tree of plain files.
func newHostEngine(t *testing.T) (*fakeNet, *Engine, string) {
	ledgertest.Use(t)
	e := New(nil, ipvs.KernelVersion{}, nil)
	n := &fakeNet{ifs: map[string][]netip.Addr{"eth0": {netip.MustParseAddr("10.0.2.15")}, "lo": {netip.MustParseAddr("127.0.0.1")}}}
	e.Net = n
	sys := t.TempDir()
	dir := filepath.Join(sys, "net", "ipv4", "conf", "all")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"arp_ignore", "arp_announce"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("0\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e.Sysctl = sysctl.Proc(sys)
	return n, e, dir
}

func ensureHost(owner, holder string, vips ...string) string {
	return fmt.Sprintf(`{"op":"ensureHost","owner":%q,"holder":%q,"host":{"forwarding":"dr","vips":["%s"]}}`, owner, holder, strings.Join(vips, `","`))
}

func hostOp(name, owner, holder string) string {
	return fmt.Sprintf(`{"op":%q,"owner":%q,"holder":%q}`, name, owner, holder)
}

func arp(t *testing.T, dir string) string {
	t.Helper()
	a, err1 := os.ReadFile(filepath.Join(dir, "arp_ignore"))
	b, err2 := os.ReadFile(filepath.Join(dir, "arp_announce"))
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	return strings.TrimSpace(string(a)) + "/" + strings.TrimSpace(string(b))
}

// The VIPs go on lo and the ARP sysctls are set; a second stack preparing the same VIP shares it; each delete puts
// back only what no other record needs; a VIP found on lo stays; a VIP removed by hand reads back as absent.
func TestRealServerHostIsCountedAndPutBack(t *testing.T) {
	n, e, dir := newHostEngine(t)
	n.ifs["lo"] = append(n.ifs["lo"], netip.MustParseAddr("192.0.2.99")) // there before any stack
	r := run(t, e, ensureHost(stackA, hostA, "192.0.2.10", "192.0.2.99", "2001:db8::10"))[0]
	wantCode(t, "ensure A", r, "ok")
	if r["changed"] != true || !has(n, "lo", "192.0.2.10") || !has(n, "lo", "2001:db8::10") || arp(t, dir) != "1/2" {
		t.Fatalf("ensure A: changed %v, lo %v, arp %s", r["changed"], n.ifs["lo"], arp(t, dir))
	}
	if again := run(t, e, ensureHost(stackA, hostA, "192.0.2.10", "192.0.2.99", "2001:db8::10"))[0]; again["changed"] != false {
		t.Fatalf("a second ensure changed something: %v", again)
	}
	wantCode(t, "ensure B", run(t, e, ensureHost(stackB, hostB, "192.0.2.10"))[0], "ok")

	wantCode(t, "delete A", run(t, e, hostOp("deleteHost", stackA, hostA))[0], "ok")
	if !has(n, "lo", "192.0.2.10") || has(n, "lo", "2001:db8::10") || !has(n, "lo", "192.0.2.99") || arp(t, dir) != "1/2" {
		t.Fatalf("after delete A (B still prepares 192.0.2.10): lo %v, arp %s", n.ifs["lo"], arp(t, dir))
	}

	n.DelAddr("lo", netip.MustParseAddr("192.0.2.10"))
	got := run(t, e, hostOp("getHost", stackB, hostB))[0]["host"].(protocol.HostOut)
	if len(got.VIPs) != 1 || got.VIPs[0].Present || got.VIPs[0].Interface != "lo" || string(got.Sysctls["net.ipv4.conf.all.arp_ignore"]) != "1" {
		t.Fatalf("read-back after the VIP was removed by hand: %+v", got)
	}
	wantCode(t, "heal B", run(t, e, ensureHost(stackB, hostB, "192.0.2.10"))[0], "ok")
	if !has(n, "lo", "192.0.2.10") {
		t.Fatalf("ensure did not put the VIP back: %v", n.ifs["lo"])
	}

	wantCode(t, "delete B", run(t, e, hostOp("deleteHost", stackB, hostB))[0], "ok")
	if has(n, "lo", "192.0.2.10") || !has(n, "lo", "192.0.2.99") || arp(t, dir) != "0/0" {
		t.Fatalf("after the last delete: lo %v, arp %s", n.ifs["lo"], arp(t, dir))
	}
	if got := run(t, e, hostOp("getHost", stackB, hostB))[0]; got["host"] != nil {
		t.Fatalf("a deleted record still reads back: %v", got)
	}
	wantCode(t, "delete again", run(t, e, hostOp("deleteHost", stackB, hostB))[0], "ok")
}

// An update that drops a VIP removes it (and the ARP sysctls with the last IPv4 VIP).
func TestRealServerHostUpdateDropsWhatItNoLongerLists(t *testing.T) {
	n, e, dir := newHostEngine(t)
	wantCode(t, "ensure", run(t, e, ensureHost(stackA, hostA, "192.0.2.10", "2001:db8::10"))[0], "ok")
	wantCode(t, "update", run(t, e, ensureHost(stackA, hostA, "2001:db8::10"))[0], "ok")
	if has(n, "lo", "192.0.2.10") || !has(n, "lo", "2001:db8::10") || arp(t, dir) != "0/0" {
		t.Fatalf("after dropping the IPv4 VIP: lo %v, arp %s", n.ifs["lo"], arp(t, dir))
	}
}

// A VIP that is one of the host's own addresses (such as the one SSH reaches it by) is refused, and nothing changes.
func TestRealServerHostRefusesItsOwnAddress(t *testing.T) {
	n, e, dir := newHostEngine(t)
	wantCode(t, "own address", run(t, e, ensureHost(stackA, hostA, "192.0.2.10", "10.0.2.15"))[0], protocol.CodeBadRequest,
		"vips: 10.0.2.15 is an address of interface eth0 of this host")
	if has(n, "lo", "192.0.2.10") || arp(t, dir) != "0/0" {
		t.Fatalf("a refused ensure changed the host: lo %v, arp %s", n.ifs["lo"], arp(t, dir))
	}
}

func TestRealServerHostRequestRules(t *testing.T) {
	_, e, _ := newHostEngine(t)
	op := func(host string) string {
		return fmt.Sprintf(`{"op":"ensureHost","owner":%q,"holder":%q,"host":%s}`, stackA, hostA, host)
	}
	for name, c := range map[string][2]string{
		"nat":       {op(`{"forwarding":"nat","vips":["192.0.2.1"]}`), `host.forwarding must be "dr" or "tunnel", not "nat"`},
		"no type":   {op(`{"forwarding":"tunnel","vips":["192.0.2.1"]}`), `host.tunnel.type must be "ipip"`},
		"gre":       {op(`{"forwarding":"tunnel","tunnel":{"type":"gre"},"vips":["192.0.2.1"]}`), `not "gre"`},
		"dr tunnel": {op(`{"forwarding":"dr","tunnel":{"type":"ipip"},"vips":["192.0.2.1"]}`), `host.tunnel is only for forwarding "tunnel"`},
		"ipip v6":   {op(`{"forwarding":"tunnel","tunnel":{"type":"ipip"},"vips":["2001:db8::1"]}`), "ipip carries IPv4 only"},
		"no vips":   {op(`{"forwarding":"dr","vips":[]}`), "host.vips must list at least one address"},
		"loopback":  {op(`{"forwarding":"dr","vips":["127.0.0.2"]}`), "host.vips: 127.0.0.2 is not a unicast address"},
		"twice":     {op(`{"forwarding":"dr","vips":["192.0.2.1","192.0.2.1"]}`), "listed twice"},
		"not an IP": {op(`{"forwarding":"dr","vips":["vip.example"]}`), `"vip.example" is not an IP address`},
		"no holder": {fmt.Sprintf(`{"op":"deleteHost","owner":%q}`, stackA), `needs field "holder"`},
	} {
		wantCode(t, name, run(t, e, c[0])[0], protocol.CodeBadRequest, c[1])
	}
}

// After a reboot (no VIP on lo, the sysctls at the kernel's defaults) boot prepares every recorded host again, and
// the records keep the originals found before: a delete afterwards still puts back the pre-stack values.
func TestRealServerHostIsPreparedAgainAtBoot(t *testing.T) {
	n, e, dir := newHostEngine(t)
	wantCode(t, "ensure A", run(t, e, ensureHost(stackA, hostA, "192.0.2.10"))[0], "ok")
	wantCode(t, "ensure B", run(t, e, ensureHost(stackB, hostB, "2001:db8::10"))[0], "ok")
	n.ifs["lo"] = []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	for _, f := range []string{"arp_ignore", "arp_announce"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("0\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	lines, failures := e.BootHosts(time.Now().Add(5 * time.Second))
	if len(failures) != 0 || len(lines) != 2 {
		t.Fatalf("boot: lines %q, failures %q", lines, failures)
	}
	if !has(n, "lo", "192.0.2.10") || !has(n, "lo", "2001:db8::10") || arp(t, dir) != "1/2" {
		t.Fatalf("after boot: lo %v, arp %s", n.ifs["lo"], arp(t, dir))
	}
	wantCode(t, "delete A", run(t, e, hostOp("deleteHost", stackA, hostA))[0], "ok")
	if has(n, "lo", "192.0.2.10") || arp(t, dir) != "0/0" {
		t.Fatalf("delete after boot did not put the host back: lo %v, arp %s", n.ifs["lo"], arp(t, dir))
	}
}

// ipipKernel is the ipip module as the kernel holds it: loading it creates tunl0 (down, with rp_filter from default).
type ipipKernel struct {
	n      *fakeNet
	sys    string
	loaded bool
	log    []string
}

func (k *ipipKernel) Param(string, string) (string, bool, error) { return "", k.loaded, nil }
func (k *ipipKernel) Refs(string) (int, error)                   { return 0, nil }
func (k *ipipKernel) Unload(module string) error {
	k.log = append(k.log, "unload "+module)
	k.loaded = false
	delete(k.n.ifs, "tunl0")
	return os.RemoveAll(filepath.Join(k.sys, "net", "ipv4", "conf", "tunl0"))
}
func (k *ipipKernel) load(module string, _ ...string) error {
	k.log = append(k.log, "load "+module)
	k.loaded = true
	k.n.ifs["tunl0"] = []netip.Addr{}
	dir := filepath.Join(k.sys, "net", "ipv4", "conf", "tunl0")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "rp_filter"), []byte("1\n"), 0o644)
}

func rpf(t *testing.T, sys, iface string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(sys, "net", "ipv4", "conf", iface, "rp_filter"))
	if err != nil {
		return "absent"
	}
	return strings.TrimSpace(string(b))
}

// Tunnel (ipip): the module loaded for tunl0, tunl0 up with the VIP, rp_filter off on tunl0 and strict all loosened;
// delete puts all of it back, the module unloaded again.
func TestRealServerHostTunnelIsPreparedAndPutBack(t *testing.T) {
	n, e, dir := newHostEngine(t)
	sys := filepath.Dir(filepath.Dir(filepath.Dir(filepath.Dir(dir)))) // dir is sys/net/ipv4/conf/all
	if err := os.WriteFile(filepath.Join(dir, "rp_filter"), []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	k := &ipipKernel{n: n, sys: sys}
	e.Modules, e.modprobe = k, k.load
	tunnel := fmt.Sprintf(`{"op":"ensureHost","owner":%q,"holder":%q,"host":{"forwarding":"tunnel","tunnel":{"type":"ipip"},"vips":["192.0.2.10"]}}`, stackA, hostA)
	r := run(t, e, tunnel)[0]
	wantCode(t, "ensure", r, "ok")
	if !has(n, "tunl0", "192.0.2.10") || !n.up["tunl0"] || rpf(t, sys, "tunl0") != "0" || rpf(t, sys, "all") != "2" || arp(t, dir) != "1/2" {
		t.Fatalf("after ensure: ifs %v up %v, rp_filter tunl0 %s all %s, arp %s", n.ifs, n.up, rpf(t, sys, "tunl0"), rpf(t, sys, "all"), arp(t, dir))
	}
	got := r["host"].(protocol.HostOut)
	if len(got.VIPs) != 1 || !got.VIPs[0].Present || got.VIPs[0].Interface != "tunl0" || string(got.Sysctls["net.ipv4.conf.tunl0.rp_filter"]) != "0" {
		t.Fatalf("read-back: %+v", got)
	}
	if again := run(t, e, tunnel)[0]; again["changed"] != false {
		t.Fatalf("a second ensure changed something: %v", again)
	}
	wantCode(t, "delete", run(t, e, hostOp("deleteHost", stackA, hostA))[0], "ok")
	if _, ok := n.ifs["tunl0"]; ok || rpf(t, sys, "all") != "1" || arp(t, dir) != "0/0" || strings.Join(k.log, ",") != "load ipip,unload ipip" {
		t.Fatalf("after delete: ifs %v, rp_filter all %s, arp %s, modules %v", n.ifs, rpf(t, sys, "all"), arp(t, dir), k.log)
	}
}
