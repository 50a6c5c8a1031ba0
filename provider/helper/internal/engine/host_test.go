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
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ledger"
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
	return n, e, useArpSysctls(t, e)
}

// useArpSysctls gives e a /proc/sys tree of plain files with the ARP sysctls at the kernel's defaults; dir is its
// net/ipv4/conf/all.
func useArpSysctls(t *testing.T, e *Engine) (dir string) {
	sys := t.TempDir()
	dir = filepath.Join(sys, "net", "ipv4", "conf", "all")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"arp_ignore", "arp_announce"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("0\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e.Sysctl = sysctl.Proc(sys)
	return dir
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
		"gue":       {op(`{"forwarding":"tunnel","tunnel":{"type":"gue"},"vips":["192.0.2.1"]}`), `must be "ipip" or "gre" (gue real servers are not prepared by this helper), not "gue"`},
		"dr tunnel": {op(`{"forwarding":"dr","tunnel":{"type":"ipip"},"vips":["192.0.2.1"]}`), `host.tunnel is only for forwarding "tunnel"`},
		"ipip v6":   {op(`{"forwarding":"tunnel","tunnel":{"type":"ipip"},"vips":["2001:db8::1"]}`), "ipip carries IPv4 only"},
		"gre v6":    {op(`{"forwarding":"tunnel","tunnel":{"type":"gre"},"vips":["2001:db8::1"]}`), "ip_gre carries IPv4 only"},
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

// tunnelKernel is a tunnel module as the kernel holds it: loading it creates its fallback device (down, with
// rp_filter from default: strict here), unloading removes it.
type tunnelKernel struct {
	n      *fakeNet
	sys    string
	device string
	loaded bool
	log    []string
}

func (k *tunnelKernel) Param(string, string) (string, bool, error) { return "", k.loaded, nil }
func (k *tunnelKernel) Refs(string) (int, error)                   { return 0, nil }
func (k *tunnelKernel) Unload(module string) error {
	k.log = append(k.log, "unload "+module)
	k.loaded = false
	delete(k.n.ifs, k.device)
	return os.RemoveAll(filepath.Join(k.sys, "net", "ipv4", "conf", k.device))
}
func (k *tunnelKernel) load(module string, _ ...string) error {
	k.log = append(k.log, "load "+module)
	k.loaded = true
	k.n.ifs[k.device] = []netip.Addr{}
	dir := filepath.Join(k.sys, "net", "ipv4", "conf", k.device)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "rp_filter"), []byte("1\n"), 0o644)
}

// newTunnelEngine is newHostEngine with a strict all.rp_filter and the tunnel module that creates device.
func newTunnelEngine(t *testing.T, device string) (*fakeNet, *Engine, string, string, *tunnelKernel) {
	n, e, dir := newHostEngine(t)
	sys := filepath.Dir(filepath.Dir(filepath.Dir(filepath.Dir(dir)))) // dir is sys/net/ipv4/conf/all
	if err := os.WriteFile(filepath.Join(dir, "rp_filter"), []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	k := &tunnelKernel{n: n, sys: sys, device: device}
	e.Modules, e.modprobe = k, k.load
	return n, e, dir, sys, k
}

func ensureTunnelHost(typ, owner, holder, vip string) string {
	return fmt.Sprintf(`{"op":"ensureHost","owner":%q,"holder":%q,"host":{"forwarding":"tunnel","tunnel":{"type":%q},"vips":[%q]}}`, owner, holder, typ, vip)
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
	for _, c := range []struct{ typ, device, module string }{{"ipip", "tunl0", "ipip"}, {"gre", "gre0", "ip_gre"}} {
		t.Run(c.typ, func(t *testing.T) {
			n, e, dir, sys, k := newTunnelEngine(t, c.device)
			tunnel := ensureTunnelHost(c.typ, stackA, hostA, "192.0.2.10")
			r := run(t, e, tunnel)[0]
			wantCode(t, "ensure", r, "ok")
			if !has(n, c.device, "192.0.2.10") || !n.up[c.device] || rpf(t, sys, c.device) != "0" || rpf(t, sys, "all") != "2" || arp(t, dir) != "1/2" {
				t.Fatalf("after ensure: ifs %v up %v, rp_filter %s %s all %s, arp %s", n.ifs, n.up, c.device, rpf(t, sys, c.device), rpf(t, sys, "all"), arp(t, dir))
			}
			got := r["host"].(protocol.HostOut)
			if len(got.VIPs) != 1 || !got.VIPs[0].Present || got.VIPs[0].Interface != c.device || string(got.Sysctls["net.ipv4.conf."+c.device+".rp_filter"]) != "0" {
				t.Fatalf("read-back: %+v", got)
			}
			if again := run(t, e, tunnel)[0]; again["changed"] != false {
				t.Fatalf("a second ensure changed something: %v", again)
			}
			wantCode(t, "delete", run(t, e, hostOp("deleteHost", stackA, hostA))[0], "ok")
			if _, ok := n.ifs[c.device]; ok || rpf(t, sys, "all") != "1" || arp(t, dir) != "0/0" || strings.Join(k.log, ",") != "load "+c.module+",unload "+c.module {
				t.Fatalf("after delete: ifs %v, rp_filter all %s, arp %s, modules %v", n.ifs, rpf(t, sys, "all"), arp(t, dir), k.log)
			}
		})
	}
}

// gre0 already there (ip_gre loaded by someone else) but down: it is brought up and put down again, the module left
// loaded; its rp_filter gets its value back. An ipip record on the same host keeps what it shares (all.rp_filter,
// the ARP settings) until it goes too.
func TestRealServerHostGREDeviceFoundIsPutBackAsFound(t *testing.T) {
	n, e, dir, sys, k := newTunnelEngine(t, "gre0")
	if err := k.load("ip_gre"); err != nil {
		t.Fatal(err)
	}
	k.log = nil
	ipip := &tunnelKernel{n: n, sys: sys, device: "tunl0"}
	wantCode(t, "ensure gre", run(t, e, ensureTunnelHost("gre", stackA, hostA, "192.0.2.10"))[0], "ok")
	if len(k.log) != 0 || !n.up["gre0"] || !has(n, "gre0", "192.0.2.10") || rpf(t, sys, "gre0") != "0" {
		t.Fatalf("after ensure gre: modules %v, up %v, gre0 %v, rp_filter gre0 %s", k.log, n.up, n.ifs["gre0"], rpf(t, sys, "gre0"))
	}
	e.Modules, e.modprobe = ipip, ipip.load
	wantCode(t, "ensure ipip", run(t, e, ensureTunnelHost("ipip", stackB, hostB, "192.0.2.20"))[0], "ok")

	wantCode(t, "delete gre", run(t, e, hostOp("deleteHost", stackA, hostA))[0], "ok")
	if n.up["gre0"] || has(n, "gre0", "192.0.2.10") || rpf(t, sys, "gre0") != "1" || len(k.log) != 0 {
		t.Fatalf("after delete gre: up %v, gre0 %v, rp_filter gre0 %s, modules %v", n.up, n.ifs["gre0"], rpf(t, sys, "gre0"), k.log)
	}
	if !has(n, "tunl0", "192.0.2.20") || rpf(t, sys, "all") != "2" || arp(t, dir) != "1/2" {
		t.Fatalf("deleting the gre record put back what the ipip record still needs: tunl0 %v, rp_filter all %s, arp %s", n.ifs["tunl0"], rpf(t, sys, "all"), arp(t, dir))
	}
	wantCode(t, "delete ipip", run(t, e, hostOp("deleteHost", stackB, hostB))[0], "ok")
	if rpf(t, sys, "all") != "1" || arp(t, dir) != "0/0" || strings.Join(ipip.log, ",") != "load ipip,unload ipip" {
		t.Fatalf("after the last delete: rp_filter all %s, arp %s, modules %v", rpf(t, sys, "all"), arp(t, dir), ipip.log)
	}
}

// After a reboot (ip_gre not loaded, no gre0) boot prepares a gre record again: the module, gre0 up with the VIP; a
// delete afterwards still unloads the module and puts back the pre-stack values.
func TestRealServerHostGREIsPreparedAgainAtBoot(t *testing.T) {
	n, e, dir, sys, k := newTunnelEngine(t, "gre0")
	wantCode(t, "ensure", run(t, e, ensureTunnelHost("gre", stackA, hostA, "192.0.2.10"))[0], "ok")
	if err := k.Unload("ip_gre"); err != nil { // the reboot
		t.Fatal(err)
	}
	for f, v := range map[string]string{"rp_filter": "1", "arp_ignore": "0", "arp_announce": "0"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if lines, failures := e.BootHosts(time.Now().Add(5 * time.Second)); len(failures) != 0 || len(lines) != 1 {
		t.Fatalf("boot: lines %q, failures %q", lines, failures)
	}
	if !has(n, "gre0", "192.0.2.10") || !n.up["gre0"] || rpf(t, sys, "gre0") != "0" || rpf(t, sys, "all") != "2" || arp(t, dir) != "1/2" {
		t.Fatalf("after boot: gre0 %v up %v, rp_filter gre0 %s all %s, arp %s", n.ifs["gre0"], n.up, rpf(t, sys, "gre0"), rpf(t, sys, "all"), arp(t, dir))
	}
	wantCode(t, "delete", run(t, e, hostOp("deleteHost", stackA, hostA))[0], "ok")
	if _, ok := n.ifs["gre0"]; ok || rpf(t, sys, "all") != "1" || arp(t, dir) != "0/0" || !strings.HasSuffix(strings.Join(k.log, ","), "load ip_gre,unload ip_gre") {
		t.Fatalf("after delete: ifs %v, rp_filter all %s, arp %s, modules %v", n.ifs, rpf(t, sys, "all"), arp(t, dir), k.log)
	}
}

// A VIP found on lo is the user's for good: after a reboot boot puts it back (the real server needs it), and so
// does an ensure after it was removed by hand, yet the records still say found, so no delete removes it; another
// stack listing it later inherits that. An address pulumi-ipvs added goes with the last record, reboot or not.
func TestRealServerHostFoundVIPStaysTheUsersAcrossReboots(t *testing.T) {
	n, e, _ := newHostEngine(t)
	n.ifs["lo"] = append(n.ifs["lo"], netip.MustParseAddr("192.0.2.99"))
	wantCode(t, "ensure A", run(t, e, ensureHost(stackA, hostA, "192.0.2.99", "192.0.2.10"))[0], "ok")
	n.ifs["lo"] = []netip.Addr{netip.MustParseAddr("127.0.0.1")} // the reboot: lo as the kernel makes it
	if lines, failures := e.BootHosts(time.Now().Add(5 * time.Second)); len(failures) != 0 || len(lines) != 1 {
		t.Fatalf("boot: lines %q, failures %q", lines, failures)
	}
	if !has(n, "lo", "192.0.2.99") || !has(n, "lo", "192.0.2.10") {
		t.Fatalf("boot did not put both VIPs back: %v", n.ifs["lo"])
	}
	got := run(t, e, hostOp("getHost", stackA, hostA))[0]["host"].(protocol.HostOut)
	if len(got.VIPs) != 2 || got.VIPs[0].Added || !got.VIPs[1].Added {
		t.Fatalf("after boot the record lost what was found: %+v", got.VIPs)
	}
	n.DelAddr("lo", netip.MustParseAddr("192.0.2.99"))
	wantCode(t, "heal A", run(t, e, ensureHost(stackA, hostA, "192.0.2.99", "192.0.2.10"))[0], "ok")
	wantCode(t, "ensure B", run(t, e, ensureHost(stackB, hostB, "192.0.2.99"))[0], "ok")
	wantCode(t, "delete A", run(t, e, hostOp("deleteHost", stackA, hostA))[0], "ok")
	wantCode(t, "delete B", run(t, e, hostOp("deleteHost", stackB, hostB))[0], "ok")
	if !has(n, "lo", "192.0.2.99") || has(n, "lo", "192.0.2.10") {
		t.Fatalf("after the last delete the found VIP must stay and the added one go: %v", n.ifs["lo"])
	}
}

// The ipip module found loaded is the user's too: after a reboot boot loads it again, and delete leaves it loaded.
func TestRealServerHostFoundModuleStaysLoadedAcrossReboots(t *testing.T) {
	n, e, _, sys, k := newTunnelEngine(t, "tunl0")
	k.load("ipip") // loaded by the user before any stack
	tunnel := ensureTunnelHost("ipip", stackA, hostA, "192.0.2.10")
	wantCode(t, "ensure", run(t, e, tunnel)[0], "ok")
	k.Unload("ipip") // the reboot, before anything loaded it
	k.log = nil
	if lines, failures := e.BootHosts(time.Now().Add(5 * time.Second)); len(failures) != 0 || len(lines) != 1 {
		t.Fatalf("boot: lines %q, failures %q", lines, failures)
	}
	if !has(n, "tunl0", "192.0.2.10") || !n.up["tunl0"] || rpf(t, sys, "tunl0") != "0" {
		t.Fatalf("after boot: ifs %v up %v rp_filter tunl0 %s", n.ifs, n.up, rpf(t, sys, "tunl0"))
	}
	wantCode(t, "delete", run(t, e, hostOp("deleteHost", stackA, hostA))[0], "ok")
	if strings.Join(k.log, ",") != "load ipip" || has(n, "tunl0", "192.0.2.10") {
		t.Fatalf("after delete: modules %v, tunl0 %v (the module was the user's: it stays loaded)", k.log, n.ifs["tunl0"])
	}
}

// One machine can be a director and a real server's host at once (a sorry server on the director): the boot unit
// stays while anything at all is to be restored — a service with its bound address after the last host record goes,
// a host record after the last service goes — and goes with the last of them.
func TestBootUnitStaysWhileDirectorOrHostNeedsIt(t *testing.T) {
	n, e := newVipEngine(t)
	useArpSysctls(t, e)
	os.MkdirAll(ledger.SystemdRun, 0o755)
	e.Exe = "/usr/local/bin/ipvs-helper"
	unit := filepath.Join(ledger.UnitDir, ledger.UnitName)
	installed := func() bool { _, err := os.Lstat(unit); return err == nil }

	wantCode(t, "bind", run(t, e, bindSvc("192.0.2.10", 80, "true", stackA))[0], "ok")
	wantCode(t, "host", run(t, e, ensureHost(stackB, hostB, "192.0.2.20"))[0], "ok")
	wantCode(t, "delete host", run(t, e, hostOp("deleteHost", stackB, hostB))[0], "ok")
	if !installed() || !has(n, "ipvs0", "192.0.2.10") {
		t.Fatalf("the last host record went and took the boot unit (%v) that the bound service still needs", installed())
	}
	wantCode(t, "host again", run(t, e, ensureHost(stackB, hostB, "192.0.2.20"))[0], "ok")
	wantCode(t, "delete service", run(t, e, delSvc("192.0.2.10", 80, stackA))[0], "ok")
	if !installed() {
		t.Fatal("the last service went and took the boot unit the host record still needs")
	}
	wantCode(t, "delete host again", run(t, e, hostOp("deleteHost", stackB, hostB))[0], "ok")
	if installed() {
		t.Fatal("the boot unit stayed with nothing left to restore")
	}
}
