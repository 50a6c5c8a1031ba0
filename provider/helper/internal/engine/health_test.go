package engine

import (
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/health"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ledger"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
)

const httpCheck = `{"type":"http","port":80,"intervalSeconds":2,"timeoutSeconds":1,"rise":2,"fall":3,"onFailure":"quiesce",` +
	`"http":{"path":"/health","method":"GET","expectStatus":"200-399"}}`

// The checks a stack declares are recorded with its entries in the same request; an op that leaves them out keeps
// them (boot's ensures, a weight change), null clears them; a bad value is refused naming the field, and nothing
// is changed in the kernel for it.
func TestHealthSettingsAreRecordedWithTheEntries(t *testing.T) {
	f, e := newOwnedEngine(t)
	res := run(t, e,
		as(svcJSON("192.0.2.1", "rr"), owner(stackA)+`,"minHealthy":"50%","sorryServer":{"address":"10.0.0.99","port":80,"forwarding":"nat"}`),
		as(destJSON("ensureDest", "192.0.2.1", "10.0.0.1", 5), owner(stackA)+`,"healthCheck":`+httpCheck))
	for _, r := range res {
		wantCode(t, "create", r, "ok")
	}
	check := func(wantCheck, wantHealth bool) {
		t.Helper()
		l, err := ledger.Load()
		if err != nil {
			t.Fatal(err)
		}
		s := l.Stacks()[0]
		d := s.DestList()[0]
		if (d.HealthCheck != nil) != wantCheck || d.Dest.Weight != 5 {
			t.Fatalf("dest record %+v, want check %v at weight 5", d, wantCheck)
		}
		if h := l.ServiceHealth(stackA, svc1); (h != nil) != wantHealth {
			t.Fatalf("service health %+v, want %v", h, wantHealth)
		} else if h != nil && (h.MinHealthy.String() != "50%" || h.SorryServer.Address != "10.0.0.99") {
			t.Fatalf("service health %+v", h)
		}
	}
	check(true, true)
	// Left out: kept (this is what boot sends).
	wantCode(t, "keep", run(t, e, as(svcJSON("192.0.2.1", "rr"), owner(stackA)), as(destJSON("ensureDest", "192.0.2.1", "10.0.0.1", 5), owner(stackA)))[1], "ok")
	check(true, true)
	// A fresh load of the change lines reads them back.
	if l, err := ledger.Load(); err != nil || len(l.Stacks()) != 1 {
		t.Fatalf("reload: %v", err)
	}
	wantCode(t, "clear", run(t, e, as(svcJSON("192.0.2.1", "rr"), owner(stackA)+`,"minHealthy":null,"sorryServer":null`),
		as(destJSON("ensureDest", "192.0.2.1", "10.0.0.1", 5), owner(stackA)+`,"healthCheck":null`))[1], "ok")
	check(false, false)

	bad := map[string]string{
		`"healthCheck":{"type":"icmp"}`:                                                                                                                                           `healthCheck.type "icmp" must be "tcp", "http", "https" or "dns"`,
		`"healthCheck":` + strings.Replace(httpCheck, `"fall":3`, `"fall":0`, 1):                                                                                                  "healthCheck.fall 0 must be 1..100",
		`"healthCheck":` + strings.Replace(httpCheck, `"timeoutSeconds":1`, `"timeoutSeconds":2`, 1):                                                                              "healthCheck.timeoutSeconds 2 must be at least 0.001 and less than intervalSeconds (2)",
		`"healthCheck":` + strings.Replace(httpCheck, `"200-399"`, `"200-99"`, 1):                                                                                                 "healthCheck.http.expectStatus",
		`"healthCheck":` + strings.Replace(httpCheck, `"method":"GET"`, `"method":"POST"`, 1):                                                                                     `healthCheck.http.method "POST" must be "GET" or "HEAD"`,
		`"healthCheck":` + strings.Replace(httpCheck, `"type":"http"`, `"type":"tcp"`, 1):                                                                                         `healthCheck.http is only for type "http" or "https"`,
		`"healthCheck":` + strings.Replace(httpCheck, `,"onFailure":"quiesce"`, `,"onFailure":"drop"`, 1):                                                                         `healthCheck.onFailure "drop" must be "quiesce" or "remove"`,
		`"healthCheck":{"type":"dns","port":53,"intervalSeconds":2,"timeoutSeconds":1,"rise":1,"fall":1,"onFailure":"remove","dns":{"name":"x.","type":"PTR","transport":"udp"}}`: `healthCheck.dns.type "PTR"`,
	}
	for field, msg := range bad {
		wantCode(t, field, run(t, e, as(destJSON("ensureDest", "192.0.2.1", "10.0.0.1", 7), owner(stackA)+","+field))[0], protocol.CodeBadRequest, msg)
	}
	for field, msg := range map[string]string{
		`"minHealthy":"150%"`: "minHealthy percentage 150 must be 0..100",
		`"minHealthy":"x"`:    `minHealthy "x" must be a whole number`,
		`"sorryServer":{"address":"::1","port":80,"forwarding":"nat"}`:     "sorryServer.address ::1 is not an ipv4 address",
		`"sorryServer":{"address":"10.0.0.9","port":0,"forwarding":"nat"}`: "sorryServer.port 0 must be 1..65535",
	} {
		wantCode(t, field, run(t, e, as(svcJSON("192.0.2.1", "wlc"), owner(stackA)+","+field))[0], protocol.CodeBadRequest, msg)
	}
	wantCode(t, "no owner", run(t, e, strings.TrimSuffix(destJSON("ensureDest", "192.0.2.1", "10.0.0.1", 7), "}")+`,"healthCheck":`+httpCheck+"}")[0],
		protocol.CodeBadRequest, `only together with "owner"`)
	if f.svcs[svc1].Sched != "rr" {
		t.Fatal("a refused op changed the kernel")
	}
	for _, d := range f.dests[svc1] {
		if d.Weight != 5 {
			t.Fatalf("a refused op changed the kernel: %+v", d)
		}
	}
}

// The checker's unit is installed (and enabled) while some stack declares a check, and removed with the last one;
// the boot unit stays while records remain. Where the host has systemd-analyze, the unit passes its verify.
func TestHealthUnitFollowsTheChecks(t *testing.T) {
	_, e := newOwnedEngine(t)
	os.MkdirAll(ledger.SystemdRun, 0o755)
	os.MkdirAll(ledger.UnitDir, 0o755)
	e.Exe = "/usr/local/bin/ipvs-helper"
	unit := filepath.Join(ledger.UnitDir, ledger.HealthUnitName)
	link := filepath.Join(ledger.UnitDir, "multi-user.target.wants", ledger.HealthUnitName)
	exists := func(p string) bool { _, err := os.Lstat(p); return err == nil }
	run(t, e, as(svcJSON("192.0.2.1", "rr"), owner(stackA)), as(destJSON("ensureDest", "192.0.2.1", "10.0.0.1", 5), owner(stackA)))
	if exists(unit) || !exists(filepath.Join(ledger.UnitDir, ledger.UnitName)) {
		t.Fatal("a stack without checks got the checker's unit, or no boot unit")
	}
	wantCode(t, "check", run(t, e, as(destJSON("ensureDest", "192.0.2.1", "10.0.0.1", 5), owner(stackA)+`,"healthCheck":`+httpCheck))[0], "ok")
	text, err := os.ReadFile(unit)
	if err != nil || !exists(link) {
		t.Fatalf("no health unit after a check was declared: %v", err)
	}
	for _, want := range []string{"ExecStart=/usr/local/bin/ipvs-helper health\n", "After=network-online.target pulumi-ipvs.service\n",
		"CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW\n", "ProtectSystem=strict\n", "Restart=on-failure\n", "NoNewPrivileges=yes\n"} {
		if !strings.Contains(string(text), want) {
			t.Errorf("the unit lacks %q:\n%s", want, text)
		}
	}
	if analyze, err := exec.LookPath("systemd-analyze"); err == nil {
		dir := t.TempDir()
		exe, _ := os.Executable() // any executable: verify checks that ExecStart's exists
		os.WriteFile(filepath.Join(dir, ledger.HealthUnitName), []byte(ledger.HealthUnitText(exe, "/var/lib/node_exporter/textfile_collector")), 0o644)
		out, err := exec.Command(analyze, "verify", "--man=no", filepath.Join(dir, ledger.HealthUnitName)).CombinedOutput()
		// verify also reports the units it pulls in (After=pulumi-ipvs.service, absent here); only this unit's
		// own lines count.
		for _, l := range strings.Split(string(out), "\n") {
			if strings.Contains(l, ledger.HealthUnitName) && !strings.Contains(l, "pulumi-ipvs.service") {
				t.Errorf("systemd-analyze verify: %s (%v)", l, err)
			}
		}
	}
	wantCode(t, "no check", run(t, e, as(destJSON("ensureDest", "192.0.2.1", "10.0.0.1", 5), owner(stackA)+`,"healthCheck":null`))[0], "ok")
	if exists(unit) || exists(link) || !exists(filepath.Join(ledger.UnitDir, ledger.UnitName)) {
		t.Fatal("the checker's unit outlived the last check, or the boot unit went with it")
	}
}

// An `up` that changes a real server the checker holds out of the pool records the declared weight and leaves the
// kernel's 0 (or its absence, with onFailure remove): the checker applies it on recovery. The result says so.
func TestEnsureKeepsWhatTheCheckerHolds(t *testing.T) {
	f, e := newOwnedEngine(t)
	HealthStatePath = filepath.Join(t.TempDir(), "state.json")
	t.Cleanup(func() { HealthStatePath = filepath.Join(health.StateDir, "state.json") })
	removeCheck := strings.Replace(httpCheck, `"quiesce"`, `"remove"`, 1)
	run(t, e, as(svcJSON("192.0.2.1", "rr"), owner(stackA)),
		as(destJSON("ensureDest", "192.0.2.1", "10.0.0.1", 5), owner(stackA)+`,"healthCheck":`+httpCheck),
		as(destJSON("ensureDest", "192.0.2.1", "10.0.0.2", 5), owner(stackA)+`,"healthCheck":`+removeCheck))
	// What a checker leaves: 10.0.0.1 quiesced, 10.0.0.2 removed, both held.
	k1, k2 := ipvs.DestKey{AF: ipvs.AFInet, Addr: netip.MustParseAddr("10.0.0.1"), Port: 8080}, ipvs.DestKey{AF: ipvs.AFInet, Addr: netip.MustParseAddr("10.0.0.2"), Port: 8080}
	d := f.dests[svc1][k1]
	d.Weight = 0
	f.dests[svc1][k1] = d
	delete(f.dests[svc1], k2)
	state := `{"v":1,"dests":[` +
		`{"service":{"family":"ipv4","protocol":"tcp","address":"192.0.2.1","port":80},"address":"10.0.0.1","port":8080,"healthy":false,"since":"2026-01-01T00:00:00Z","last":"connection refused","depooled":true},` +
		`{"service":{"family":"ipv4","protocol":"tcp","address":"192.0.2.1","port":80},"address":"10.0.0.2","port":8080,"healthy":false,"since":"2026-01-01T00:00:00Z","last":"connection refused","depooled":true}],"sorry":[]}`
	if err := os.WriteFile(HealthStatePath, []byte(state), 0o600); err != nil {
		t.Fatal(err)
	}
	res := run(t, e, as(destJSON("ensureDest", "192.0.2.1", "10.0.0.1", 7), owner(stackA)), as(destJSON("ensureDest", "192.0.2.1", "10.0.0.2", 7), owner(stackA)))
	for i, r := range res {
		wantCode(t, "held", r, "ok")
		out := r["dest"].(protocol.DestOut)
		if out.Health == nil || out.Health.DeclaredWeight != 7 || !out.Health.Depooled || out.Health.Removed != (i == 1) {
			t.Fatalf("result %d: %+v %+v", i, out, out.Health)
		}
	}
	if f.dests[svc1][k1].Weight != 0 {
		t.Fatalf("the up put a held server back at %d", f.dests[svc1][k1].Weight)
	}
	if _, ok := f.dests[svc1][k2]; ok {
		t.Fatal("the up re-added a server the checker removed")
	}
	l, _ := ledger.Load()
	for _, rec := range l.Stacks()[0].DestList() {
		if rec.Dest.Weight != 7 {
			t.Fatalf("the ledger records %+v, not the declared weight 7", rec.Dest)
		}
	}
	// A reboot empties the kernel: boot's ensure puts the quiesced one back at weight 0, not the removed one.
	delete(f.dests[svc1], k1)
	wantCode(t, "boot", run(t, e, as(destJSON("ensureDest", "192.0.2.1", "10.0.0.1", 7), owner(stackA)))[0], "ok")
	if d, ok := f.dests[svc1][k1]; !ok || d.Weight != 0 {
		t.Fatalf("after a reboot's ensure: %+v %v", d, ok)
	}
	// Without its check, the declared entry is applied as it is.
	wantCode(t, "check dropped", run(t, e, as(destJSON("ensureDest", "192.0.2.1", "10.0.0.1", 7), owner(stackA)+`,"healthCheck":null`))[0], "ok")
	if f.dests[svc1][k1].Weight != 7 {
		t.Fatalf("weight %d after the check was dropped", f.dests[svc1][k1].Weight)
	}
}

// dump says whether the checker runs (it holds its lock file) once some stack declares a check, and marks the sorry
// server the checker added, so status can tell health from drift and from a foreign real server.
func TestDumpReportsTheCheckerAndTheSorryServer(t *testing.T) {
	f, e := newOwnedEngine(t)
	dir := t.TempDir()
	HealthStatePath, HealthLockPath = filepath.Join(dir, "state.json"), filepath.Join(dir, health.LockFile)
	t.Cleanup(func() {
		HealthStatePath, HealthLockPath = filepath.Join(health.StateDir, "state.json"), filepath.Join(health.StateDir, health.LockFile)
	})
	run(t, e, as(svcJSON("192.0.2.1", "rr"), owner(stackA)), as(destJSON("ensureDest", "192.0.2.1", "10.0.0.1", 5), owner(stackA)))
	if _, ok := run(t, e, `{"op":"dump"}`)[0]["checker"]; ok {
		t.Fatal("dump reports a checker though no stack declares a check")
	}
	run(t, e, as(destJSON("ensureDest", "192.0.2.1", "10.0.0.1", 5), owner(stackA)+`,"healthCheck":`+httpCheck))
	checker := func() protocol.CheckerOut { return run(t, e, `{"op":"dump"}`)[0]["checker"].(protocol.CheckerOut) }
	if c := checker(); c.Running || c.Error != "" {
		t.Fatalf("no checker ever ran: %+v", c)
	}
	lock, err := health.HoldRunning(HealthLockPath)
	if err != nil {
		t.Fatal(err)
	}
	if c := checker(); !c.Running {
		t.Fatalf("checker holding its lock: %+v", c)
	}
	lock.Close()
	if c := checker(); c.Running {
		t.Fatalf("checker stopped: %+v", c)
	}

	// The checker added 10.0.0.99 as the sorry server: it is marked, the checked one is not.
	sorry := ipvs.DestKey{AF: ipvs.AFInet, Addr: netip.MustParseAddr("10.0.0.99"), Port: 80}
	f.dests[svc1][sorry] = ipvs.Dest{DestKey: sorry, DestSettings: ipvs.DestSettings{Weight: 1}}
	state := `{"v":1,"dests":[],"sorry":[{"service":{"family":"ipv4","protocol":"tcp","address":"192.0.2.1","port":80},"address":"10.0.0.99","port":80}]}`
	if err := os.WriteFile(HealthStatePath, []byte(state), 0o600); err != nil {
		t.Fatal(err)
	}
	svcs := run(t, e, `{"op":"dump"}`)[0]["services"].([]protocol.ServiceOut)
	for _, d := range *svcs[0].Dests {
		if d.Sorry != (d.Address == "10.0.0.99") {
			t.Errorf("%s: sorry %v", d.Address, d.Sorry)
		}
	}
}

// A DirectorSettings' healthMetricsDirectory is recorded with the stack's settings and goes into the checker's unit
// as --metrics-dir, writable there (and created: a read-only system leaves the checker no way to); dropping it
// takes it out again. A bad one is refused, naming the field, before anything changes.
func TestHealthUnitTakesTheMetricsDirectory(t *testing.T) {
	_, e := newOwnedEngine(t)
	os.MkdirAll(ledger.SystemdRun, 0o755)
	os.MkdirAll(ledger.UnitDir, 0o755)
	e.Exe = "/usr/local/bin/ipvs-helper"
	unit := filepath.Join(ledger.UnitDir, ledger.HealthUnitName)
	dir := filepath.Join(t.TempDir(), "textfile_collector")
	unitText := func() string {
		b, err := os.ReadFile(unit)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	run(t, e, as(svcJSON("192.0.2.1", "rr"), owner(stackA)), as(destJSON("ensureDest", "192.0.2.1", "10.0.0.1", 5), owner(stackA)+`,"healthCheck":`+httpCheck))
	if strings.Contains(unitText(), "--metrics-dir") {
		t.Fatal("metrics before any were asked for")
	}
	res := run(t, e, ensureSettings(stackA, `{"sysctls":{},"daemons":[],"healthMetricsDirectory":"`+dir+`"}`))[0]
	wantCode(t, "metrics dir", res, "ok")
	if res["changed"] != true {
		t.Fatalf("recording a metrics directory is a change: %v", res)
	}
	text := unitText()
	for _, want := range []string{"ExecStart=/usr/local/bin/ipvs-helper health --metrics-dir " + dir + "\n", "ReadWritePaths=-" + ledger.LockPath + " " + dir + "\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("the unit lacks %q:\n%s", want, text)
		}
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		t.Fatalf("the metrics directory was not created: %v", err)
	}
	if again := run(t, e, ensureSettings(stackA, `{"sysctls":{},"daemons":[],"healthMetricsDirectory":"`+dir+`"}`))[0]; again["changed"] != false {
		t.Fatalf("the same directory again is no change: %v", again)
	}
	for _, bad := range []string{"relative/dir", "/var/lib/../tmp", "/var/lib/with space", "/var/lib/100%", "/"} {
		wantCode(t, bad, run(t, e, ensureSettings(stackA, `{"sysctls":{},"daemons":[],"healthMetricsDirectory":"`+bad+`"}`))[0],
			protocol.CodeBadRequest, "healthMetricsDirectory")
	}
	if !strings.Contains(unitText(), "--metrics-dir "+dir+"\n") {
		t.Fatal("a refused directory changed the unit")
	}
	wantCode(t, "dropped", run(t, e, ensureSettings(stackA, `{"sysctls":{},"daemons":[]}`))[0], "ok")
	if text := unitText(); strings.Contains(text, "--metrics-dir") || strings.Contains(text, dir) {
		t.Fatalf("the metrics directory outlived its setting:\n%s", text)
	}
}
