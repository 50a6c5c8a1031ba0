package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ledger"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/savefmt"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/sysctl"
)

// settingsKernel is the fake kernel with connection timeouts and sync daemons.
type settingsKernel struct {
	*fakeKernel
	timeouts ipvs.Timeouts
	daemons  map[uint32]ipvs.Daemon
}

func (k *settingsKernel) Timeouts() (ipvs.Timeouts, error) { return k.timeouts, nil }
func (k *settingsKernel) SetTimeouts(t ipvs.Timeouts) error {
	for _, f := range []struct{ from, to *uint32 }{{&t.TCP, &k.timeouts.TCP}, {&t.TCPFin, &k.timeouts.TCPFin}, {&t.UDP, &k.timeouts.UDP}} {
		if *f.from != 0 {
			*f.to = *f.from
		}
	}
	return nil
}
func (k *settingsKernel) Daemons() ([]ipvs.Daemon, error) {
	var out []ipvs.Daemon
	for _, d := range k.daemons {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].State < out[j].State })
	return out, nil
}
func (k *settingsKernel) NewDaemon(d ipvs.Daemon) error {
	if _, ok := k.daemons[d.State]; ok {
		return syscall.EEXIST
	}
	k.daemons[d.State] = d
	return nil
}
func (k *settingsKernel) DelDaemon(state uint32) error {
	if _, ok := k.daemons[state]; !ok {
		return syscall.ESRCH
	}
	delete(k.daemons, state)
	return nil
}

// procSys makes a fake /proc/sys with the given files.
func procSys(t *testing.T, files map[string]string) string {
	root := t.TempDir()
	for name, v := range files {
		p := filepath.Join(root, strings.ReplaceAll(name, ".", "/"))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func readSys(t *testing.T, root, name string) string {
	b, err := os.ReadFile(filepath.Join(root, strings.ReplaceAll(name, ".", "/")))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func newSettingsEngine(t *testing.T) (*settingsKernel, *Engine, string) {
	t.Helper()
	_, e := newOwnedEngine(t)
	k := &settingsKernel{fakeKernel: newFake(), timeouts: ipvs.Timeouts{TCP: 900, TCPFin: 120, UDP: 300}, daemons: map[uint32]ipvs.Daemon{}}
	e.k = k
	sys := procSys(t, map[string]string{"net.ipv4.vs.conntrack": "0", "net.ipv4.vs.expire_nodest_conn": "0", "net.ipv4.ip_forward": "0",
		"net.ipv4.vs.sync_threshold": "3\t50"})
	e.Sysctl = sysctl.Proc(sys)
	// Not the test machine's /sys/module: ip_vs_ftp starts unloaded.
	e.Modules = &fakeModules{}
	return k, e, sys
}

func ensureSettings(o, settings string) string {
	return `{"op":"ensureSettings",` + owner(o) + `,"settings":` + settings + `}`
}

// ensureSettings records originals before the first change, puts back items it stops managing, refuses a second
// stack; deleteSettings puts everything back; a sysctl the kernel lacks changes nothing.
func TestDirectorSettings(t *testing.T) {
	k, e, sys := newSettingsEngine(t)
	res := run(t, e, ensureSettings(stackA, `{"sysctls":{"net.ipv4.vs.conntrack":1,"net.ipv4.ip_forward":1,"net.ipv4.vs.sync_threshold":[4,60]},
		"timeouts":{"tcp":600},"daemons":[{"state":"master","interface":"eth0","syncId":7}]}`))
	wantCode(t, "ensure", res[0], "ok")
	if res[0]["changed"] != true || readSys(t, sys, "net.ipv4.vs.conntrack") != "1" || readSys(t, sys, "net.ipv4.vs.sync_threshold") != "4 60" ||
		k.timeouts != (ipvs.Timeouts{TCP: 600, TCPFin: 120, UDP: 300}) || k.daemons[ipvs.DaemonMaster].SyncID != 7 {
		t.Fatalf("after ensure: %v, timeouts %v, daemons %v", res[0], k.timeouts, k.daemons)
	}
	out := res[0]["settings"].(protocol.SettingsOut)
	if out.Timeouts != (protocol.TimeoutsOut{TCP: 600}) || len(out.Sysctls) != 3 || len(out.Daemons) != 1 {
		t.Errorf("result settings %+v", out)
	}
	res = run(t, e, ensureSettings(stackA, `{"sysctls":{"net.ipv4.vs.conntrack":1,"net.ipv4.ip_forward":1,"net.ipv4.vs.sync_threshold":[4,60]},
		"timeouts":{"tcp":600},"daemons":[{"state":"master","interface":"eth0","syncId":7}]}`))
	if code(res[0]) != "ok" || res[0]["changed"] != false {
		t.Errorf("same settings again: %v", res[0])
	}

	// Another stack is refused; a missing sysctl is UNSUPPORTED_KERNEL and changes nothing.
	wantCode(t, "other stack", run(t, e, ensureSettings(stackB, `{"sysctls":{"net.ipv4.vs.conntrack":0}}`))[0], protocol.CodeOwned, stackA)
	wantCode(t, "missing sysctl", run(t, e, ensureSettings(stackA, `{"sysctls":{"net.ipv4.vs.conntrack":0,"net.ipv4.vs.sloppy_tcp":1}}`))[0],
		protocol.CodeUnsupported, "net.ipv4.vs.sloppy_tcp")
	if readSys(t, sys, "net.ipv4.vs.conntrack") != "1" {
		t.Error("a refused ensureSettings changed a sysctl")
	}
	wantCode(t, "out of range", run(t, e, ensureSettings(stackA, `{"sysctls":{"net.ipv4.vs.conntrack":2}}`))[0], protocol.CodeBadRequest, "net.ipv4.vs.conntrack")

	// Dropping items puts them back to what they were before the stack first set them.
	os.WriteFile(filepath.Join(sys, "net/ipv4/vs/expire_nodest_conn"), []byte("0\n"), 0o644)
	res = run(t, e, ensureSettings(stackA, `{"sysctls":{"net.ipv4.vs.conntrack":1,"net.ipv4.vs.expire_nodest_conn":1}}`))
	wantCode(t, "drop items", res[0], "ok")
	if readSys(t, sys, "net.ipv4.ip_forward") != "0" || readSys(t, sys, "net.ipv4.vs.sync_threshold") != "3 50" || k.timeouts.TCP != 900 ||
		len(k.daemons) != 0 || readSys(t, sys, "net.ipv4.vs.expire_nodest_conn") != "1" {
		t.Fatalf("after dropping: timeouts %v daemons %v", k.timeouts, k.daemons)
	}
	got := run(t, e, `{"op":"getSettings","sysctls":["net.ipv4.vs.conntrack"]}`)[0]
	if got["owner"] != stackA || got["settings"].(protocol.SettingsOut).Timeouts.TCP != 900 {
		t.Errorf("getSettings %v", got)
	}

	res = run(t, e, `{"op":"deleteSettings",`+owner(stackA)+`}`)
	if code(res[0]) != "ok" || res[0]["changed"] != true || readSys(t, sys, "net.ipv4.vs.conntrack") != "0" || readSys(t, sys, "net.ipv4.vs.expire_nodest_conn") != "0" {
		t.Fatalf("deleteSettings: %v", res[0])
	}
	if _, err := os.Stat(ledger.Dir); !os.IsNotExist(err) {
		t.Errorf("ledger left after the last record: %v", err)
	}
	if got := run(t, e, `{"op":"getSettings"}`)[0]; got["owner"] != nil {
		t.Errorf("owner after delete: %v", got)
	}
	// Now another stack may hold them.
	wantCode(t, "other stack after delete", run(t, e, ensureSettings(stackB, `{"sysctls":{"net.ipv4.vs.conntrack":1}}`))[0], "ok")
}

// boot restores exactly the ledger's records after the table was flushed and the settings lost: settings first,
// then services, then real servers, leaving unowned entries alone.
func TestBootRestoresTheLedger(t *testing.T) {
	k, e, sys := newSettingsEngine(t)
	res := run(t, e,
		ensureSettings(stackA, `{"sysctls":{"net.ipv4.vs.conntrack":1},"timeouts":{"udp":60},"daemons":[{"state":"backup","interface":"eth1","syncId":3}]}`),
		as(svcJSON("192.0.2.1", "rr"), owner(stackA)), as(destJSON("ensureDest", "192.0.2.1", "10.0.0.1", 3), owner(stackA)),
		as(destJSON("ensureDest", "192.0.2.1", "10.0.0.2", 4), owner(stackB)), as(`{"op":"ensureService","service":{"family":"ipv4","fwmark":9,"scheduler":"wlc","persistence":{"timeout":60}}}`, owner(stackB)),
		svcJSON("192.0.2.9", "rr"))
	for i, r := range res {
		wantCode(t, fmt.Sprint("setup ", i), r, "ok")
	}
	before := func() string {
		tbl, _ := ReadTable(k)
		var b strings.Builder
		for _, sd := range tbl {
			b.WriteString(savefmt.ServiceLine(sd.Service) + "\n")
			for _, d := range sd.Dests {
				b.WriteString(savefmt.DestLine(sd.Service.ServiceKey, d) + "\n")
			}
		}
		return b.String()
	}
	want := before()
	// A reboot: the table is empty but for an unowned entry made at boot by someone else; settings are defaults.
	k.fakeKernel.svcs, k.fakeKernel.dests = map[ipvs.ServiceKey]ipvs.Service{}, map[ipvs.ServiceKey]map[ipvs.DestKey]ipvs.Dest{}
	run(t, e, svcJSON("192.0.2.9", "wlc"))
	k.timeouts, k.daemons = ipvs.Timeouts{TCP: 900, TCPFin: 120, UDP: 300}, map[uint32]ipvs.Daemon{}
	os.WriteFile(filepath.Join(sys, "net/ipv4/vs/conntrack"), []byte("0\n"), 0o644)

	lines, failures := e.Boot(time.Now().Add(time.Second))
	if len(failures) != 0 {
		t.Fatalf("boot failures: %v", failures)
	}
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "set net.ipv4.vs.conntrack=1, timeouts udp 60, backup sync daemon on eth1 (stack "+stackA+")") ||
		!strings.Contains(strings.Join(lines, "\n"), "add -a -t 192.0.2.1:80 -r 10.0.0.2:8080 -m -w 4 (stack "+stackB+")") {
		t.Errorf("boot lines:\n%s", strings.Join(lines, "\n"))
	}
	got := before()
	wantNow := strings.Replace(want, "-A -t 192.0.2.9:80 -s rr", "-A -t 192.0.2.9:80 -s wlc", 1)
	if got != wantNow {
		t.Errorf("table after boot:\n%s\nwant:\n%s", got, wantNow)
	}
	if readSys(t, sys, "net.ipv4.vs.conntrack") != "1" || k.timeouts.UDP != 60 || k.daemons[ipvs.DaemonBackup].SyncID != 3 {
		t.Errorf("settings after boot: timeouts %v daemons %v", k.timeouts, k.daemons)
	}
	// A second boot changes nothing.
	if lines, failures := e.Boot(time.Now().Add(time.Second)); len(lines) != 0 || len(failures) != 0 {
		t.Errorf("second boot: %v %v", lines, failures)
	}
	text := func() string {
		l, err := ledger.Open(time.Now().Add(time.Second), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return LedgerText(l)
	}()
	for _, s := range []string{"  -A -t 192.0.2.1:80 -s rr", "  -a -t 192.0.2.1:80 -r 10.0.0.1:8080 -m -w 3",
		"  settings: net.ipv4.vs.conntrack=1, timeouts udp 60, backup sync daemon on eth1 (before: net.ipv4.vs.conntrack=0, timeouts udp 300)",
		"  -A -f 9 -s wlc -p 60", "stack " + stackB + " (" + filepath.Join(ledger.Dir, "stacks", ledger.FileName(stackB)) + ")"} {
		if !strings.Contains(text, s+"\n") {
			t.Errorf("owners text lacks %q:\n%s", s, text)
		}
	}
}
