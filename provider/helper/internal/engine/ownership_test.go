package engine

import (
	"encoding/json"
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
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/managers"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
)

const stackA, stackB, stackC = "acme/lb/prod", "acme/web/prod", "acme/lb/production"

// as adds ownership fields to an op.
func as(op string, fields string) string { return strings.TrimSuffix(op, "}") + "," + fields + "}" }

func owner(o string) string { return fmt.Sprintf(`"owner":%q`, o) }

func wantCode(t *testing.T, what string, r protocol.Result, want string, inMessage ...string) {
	t.Helper()
	if code(r) != want {
		t.Fatalf("%s: %s %q, want %s", what, code(r), message(r), want)
	}
	for _, s := range inMessage {
		if !strings.Contains(message(r), s) {
			t.Errorf("%s: message %q does not name %q", what, message(r), s)
		}
	}
}

// stackFile is a stack's record as a fresh load of its ledger file reads it (records and change lines), nil when
// it has no file.
func stackFile(t *testing.T, o string) map[string]any {
	t.Helper()
	if _, err := os.Stat(filepath.Join(ledger.Dir, "stacks", ledger.FileName(o))); os.IsNotExist(err) {
		return nil
	}
	l, err := ledger.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range l.Stacks() {
		if s.Owner == o {
			var m map[string]any
			b, _ := json.Marshal(s.Record())
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatalf("%s: %v", b, err)
			}
			return m
		}
	}
	t.Fatalf("stack %s has a file but no record", o)
	return nil
}

func count(m map[string]any, field string) int {
	if m == nil {
		return 0
	}
	l, _ := m[field].([]any)
	return len(l)
}

var svc1 = ipvs.ServiceKey{AF: ipvs.AFInet, Protocol: ipvs.ProtoTCP, Addr: netip.MustParseAddr("192.0.2.1"), Port: 80}

func newOwnedEngine(t *testing.T) (*fakeKernel, *Engine) {
	ledgertest.Use(t)
	f := newFake()
	return f, New(f, ipvs.KernelVersion{Major: 6, Minor: 1}, nil)
}

// Rule 1: another stack's entry is refused naming it, also when it is gone from the kernel; takeover and
// formerOwner move it.
func TestOwnedEntriesBelongToTheirStack(t *testing.T) {
	f, e := newOwnedEngine(t)
	res := run(t, e, as(svcJSON("192.0.2.1", "rr"), owner(stackA)), as(destJSON("ensureDest", "192.0.2.1", "10.0.0.1", 1), owner(stackA)))
	for i, r := range res {
		wantCode(t, fmt.Sprint("create ", i), r, "ok")
	}
	res = run(t, e,
		as(svcJSON("192.0.2.1", "wlc"), owner(stackB)),
		as(destJSON("ensureDest", "192.0.2.1", "10.0.0.1", 2), owner(stackB)),
		as(destJSON("deleteDest", "192.0.2.1", "10.0.0.1", 0), owner(stackB)),
		as(`{"op":"deleteService","service":{"family":"ipv4","protocol":"tcp","address":"192.0.2.1","port":80}}`, owner(stackB)))
	for i, r := range res {
		wantCode(t, fmt.Sprint("other stack op ", i), r, protocol.CodeOwned, "belongs to stack "+stackA)
	}
	if f.svcs[svc1].Sched != "rr" || len(f.dests[svc1]) != 1 {
		t.Fatalf("another stack's ops changed the table: %v %v", f.svcs, f.dests)
	}

	// Gone from the kernel (a reboot before the restore, a hand delete): still A's.
	delete(f.svcs, svc1)
	delete(f.dests, svc1)
	wantCode(t, "missing entry", run(t, e, as(svcJSON("192.0.2.1", "wlc"), owner(stackB)))[0], protocol.CodeOwned, stackA)
	wantCode(t, "missing entry, its owner", run(t, e, as(svcJSON("192.0.2.1", "rr"), owner(stackA)))[0], "ok")

	// takeover moves the service (not its real server) to B; formerOwner moves it on to C (a renamed stack).
	wantCode(t, "takeover", run(t, e, as(svcJSON("192.0.2.1", "wlc"), owner(stackB)+`,"takeover":true`))[0], "ok")
	if count(stackFile(t, stackA), "services") != 0 || count(stackFile(t, stackA), "dests") != 1 || count(stackFile(t, stackB), "services") != 1 {
		t.Fatalf("after takeover: A %v, B %v", stackFile(t, stackA), stackFile(t, stackB))
	}
	wantCode(t, "formerOwner", run(t, e, as(svcJSON("192.0.2.1", "wlc"), owner(stackC)+fmt.Sprintf(`,"formerOwner":%q`, stackB)))[0], "ok")
	if stackFile(t, stackB) != nil || count(stackFile(t, stackC), "services") != 1 {
		t.Fatalf("after formerOwner: B %v, C %v", stackFile(t, stackB), stackFile(t, stackC))
	}
	// formerOwner does not reach entries of a third stack.
	wantCode(t, "formerOwner of another", run(t, e, as(destJSON("ensureDest", "192.0.2.1", "10.0.0.1", 1), owner(stackC)+fmt.Sprintf(`,"formerOwner":%q`, stackB)))[0],
		protocol.CodeOwned, stackA)
}

// Rule 2: an existing entry nobody owns: "fail" is EXISTS, "update" claims it unless kube-proxy or keepalived runs
// its address.
func TestUnownedEntriesAreClaimedOnlyByAdopt(t *testing.T) {
	f, e := newOwnedEngine(t)
	run(t, e, svcJSON("192.0.2.1", "rr"), destJSON("ensureDest", "192.0.2.1", "10.0.0.1", 1), svcJSON("192.0.2.2", "rr"), svcJSON("192.0.2.3", "rr"))
	if _, err := os.Stat(ledger.Dir); !os.IsNotExist(err) {
		t.Fatalf("ops without owner touched the ledger: %v", err)
	}
	wantCode(t, "fail", run(t, e, withOnExisting(as(svcJSON("192.0.2.1", "rr"), owner(stackA)), "fail"))[0], protocol.CodeExists)
	if stackFile(t, stackA) != nil {
		t.Fatal("a refused create was recorded")
	}
	res := run(t, e, as(svcJSON("192.0.2.1", "wlc"), owner(stackA)), withOnExisting(as(destJSON("ensureDest", "192.0.2.1", "10.0.0.1", 1), owner(stackA)), "match"))
	wantCode(t, "adopt service", res[0], "ok")
	wantCode(t, "adopt dest by match", res[1], "ok")
	if f.svcs[svc1].Sched != "wlc" || count(stackFile(t, stackA), "services") != 1 || count(stackFile(t, stackA), "dests") != 1 {
		t.Fatalf("adopt: %v %v", f.svcs[svc1], stackFile(t, stackA))
	}

	managers.InterfaceAddrs = func(name string) ([]netip.Addr, error) {
		if name == "kube-ipvs0" {
			return []netip.Addr{netip.MustParseAddr("192.0.2.2")}, nil
		}
		return nil, nil
	}
	conf := filepath.Join(managers.FSRoot, "etc/keepalived/keepalived.conf")
	os.MkdirAll(filepath.Dir(conf), 0o755)
	os.WriteFile(conf, []byte("virtual_server 192.0.2.3 80 {\n  protocol TCP\n}\n"), 0o644)
	ledgertest.Process(t, managers.FSRoot, 812, "keepalived", os.Getuid(), "/usr/sbin/keepalived", "--dont-fork")
	res = run(t, e, as(svcJSON("192.0.2.2", "wlc"), owner(stackA)), as(svcJSON("192.0.2.3", "wlc"), owner(stackA)),
		as(svcJSON("192.0.2.4", "wlc"), owner(stackA)))
	wantCode(t, "kube-proxy", res[0], protocol.CodeManagedElsewhere, "kube-proxy", "kube-ipvs0")
	wantCode(t, "keepalived", res[1], protocol.CodeManagedElsewhere, "keepalived", "/etc/keepalived/keepalived.conf", "virtual_server 192.0.2.3 80")
	wantCode(t, "a new service", res[2], "ok")
	if count(stackFile(t, stackA), "services") != 2 {
		t.Fatalf("ledger: %v", stackFile(t, stackA))
	}
}

// Rule 3 and 4: records follow the kernel; a service with real servers its stack does not own is deleted only
// with withForeignDests, and then every stack's records of them go.
func TestDeleteServiceRefusesForeignDests(t *testing.T) {
	f, e := newOwnedEngine(t)
	svcDel := `{"op":"deleteService","service":{"family":"ipv4","protocol":"tcp","address":"192.0.2.1","port":80}}`
	res := run(t, e, as(svcJSON("192.0.2.1", "rr"), owner(stackA)), as(destJSON("ensureDest", "192.0.2.1", "10.0.0.1", 1), owner(stackA)),
		as(destJSON("ensureDest", "192.0.2.1", "10.0.0.2", 2), owner(stackB)), destJSON("ensureDest", "192.0.2.1", "10.0.0.3", 3))
	for i, r := range res {
		wantCode(t, fmt.Sprint("setup ", i), r, "ok")
	}
	// The record is the entry as now in the kernel.
	d := stackFile(t, stackB)["dests"].([]any)[0].(map[string]any)
	if d["dest"].(map[string]any)["weight"] != 2.0 || d["dest"].(map[string]any)["forwarding"] != "nat" || d["service"].(map[string]any)["address"] != "192.0.2.1" {
		t.Errorf("B's dest record: %v", d)
	}
	refused := run(t, e, as(svcDel, owner(stackA)))[0]
	wantCode(t, "delete", refused, protocol.CodeForeignDests, "10.0.0.2:8080 (stack "+stackB+")", "10.0.0.3:8080 (no owner)")
	// The provider adds what to do in its users' words (deleteForeignRealServers); a protocol field name would leak.
	if strings.Contains(message(refused), "withForeignDests") {
		t.Errorf("FOREIGN_DESTS names a protocol field: %q", message(refused))
	}
	if len(f.svcs) != 1 || len(f.dests[svc1]) != 3 {
		t.Fatalf("refused delete changed the table: %v", f.dests)
	}
	// B's own real server goes with its own delete; the unowned one is still foreign.
	res = run(t, e, as(destJSON("deleteDest", "192.0.2.1", "10.0.0.2", 0), owner(stackB)), as(svcDel, owner(stackA)))
	wantCode(t, "B deletes its dest", res[0], "ok")
	wantCode(t, "delete again", res[1], protocol.CodeForeignDests, "10.0.0.3:8080 (no owner)")
	if stackFile(t, stackB) != nil {
		t.Errorf("B's empty record left a file: %v", stackFile(t, stackB))
	}
	run(t, e, as(destJSON("ensureDest", "192.0.2.1", "10.0.0.2", 2), owner(stackB)))
	wantCode(t, "withForeignDests", run(t, e, as(svcDel, owner(stackA)+`,"withForeignDests":true`))[0], "ok")
	if len(f.svcs) != 0 || stackFile(t, stackA) != nil || stackFile(t, stackB) != nil {
		t.Fatalf("after delete: %v, A %v, B %v", f.svcs, stackFile(t, stackA), stackFile(t, stackB))
	}
	// The last record gone, the state directory goes too.
	if _, err := os.Stat(ledger.Dir); !os.IsNotExist(err) {
		t.Errorf("state directory left: %v", err)
	}
}

// Rule 5: a dry-run delete answers as the delete would and changes neither the kernel nor the ledger.
func TestDeleteServiceDryRun(t *testing.T) {
	f, e := newOwnedEngine(t)
	svcDel := `{"op":"deleteService","service":{"family":"ipv4","protocol":"tcp","address":"192.0.2.1","port":80}}`
	dry := owner(stackA) + `,"dryRun":true`
	run(t, e, as(svcJSON("192.0.2.1", "rr"), owner(stackA)), as(destJSON("ensureDest", "192.0.2.1", "10.0.0.1", 1), owner(stackA)))
	r := run(t, e, as(svcDel, dry))[0]
	wantCode(t, "dry run, own dests only", r, "ok")
	if r["changed"] != true {
		t.Errorf("dry run of an existing service: changed %v, want true (it would delete)", r["changed"])
	}
	// It lists the real servers the delete would take, as they are: what a drain may quiesce.
	if ds, _ := r["dests"].([]protocol.DestOut); len(ds) != 1 || ds[0].Address != "10.0.0.1" || ds[0].Port != 8080 || ds[0].Weight != 1 {
		t.Errorf("dry run dests: %#v", r["dests"])
	}
	run(t, e, as(destJSON("ensureDest", "192.0.2.1", "10.0.0.2", 2), owner(stackB)))
	// With withForeignDests it lists the other stack's real server too: the delete takes it.
	if r := run(t, e, as(svcDel, dry+`,"withForeignDests":true`))[0]; len(r["dests"].([]protocol.DestOut)) != 2 {
		t.Errorf("dry run with foreign dests: %v", r)
	}
	wantCode(t, "dry run, foreign dest", run(t, e, as(svcDel, dry))[0], protocol.CodeForeignDests, "10.0.0.2:8080 (stack "+stackB+")")
	wantCode(t, "dry run by another stack", run(t, e, as(svcDel, owner(stackC)+`,"dryRun":true`))[0], protocol.CodeOwned, stackA)
	if len(f.svcs) != 1 || len(f.dests[svc1]) != 2 || count(stackFile(t, stackA), "services") != 1 || count(stackFile(t, stackB), "dests") != 1 {
		t.Fatalf("a dry run changed something: %v, A %v, B %v", f.dests, stackFile(t, stackA), stackFile(t, stackB))
	}
	wantCode(t, "dryRun without owner", run(t, e, strings.TrimSuffix(svcDel, "}")+`,"dryRun":true}`)[0], protocol.CodeBadRequest, "dryRun")
	gone := `{"op":"deleteService","service":{"family":"ipv4","protocol":"tcp","address":"192.0.2.9","port":80}}`
	if r := run(t, e, as(gone, dry))[0]; code(r) != "ok" || r["changed"] != false || len(r["dests"].([]protocol.DestOut)) != 0 {
		t.Errorf("dry run of a missing service: %v", r)
	}
}

// Owned writes are pipelined like any others: the checks read the batch's view, not the kernel.
func TestOwnedWritesStayPipelined(t *testing.T) {
	f, e := newOwnedEngine(t)
	ops := []string{as(svcJSON("192.0.2.1", "rr"), owner(stackA))}
	for r := 1; r <= 20; r++ {
		ops = append(ops, as(destJSON("ensureDest", "192.0.2.1", fmt.Sprintf("10.0.0.%d", r), r), owner(stackA)))
	}
	for i, r := range run(t, e, ops...) {
		wantCode(t, fmt.Sprint("op ", i), r, "ok")
	}
	if fmt.Sprint(f.batches) != "[21]" || count(stackFile(t, stackA), "dests") != 20 {
		t.Errorf("batches %v, ledger %v", f.batches, stackFile(t, stackA))
	}
}

// A held lock fails the owned ops with LEDGER at the deadline; ops without an owner still run.
func TestLockTimeout(t *testing.T) {
	f, e := newOwnedEngine(t)
	held, err := ledger.Open(time.Now().Add(time.Second), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	e.LockWait = 150 * time.Millisecond
	start := time.Now()
	res := run(t, e, as(svcJSON("192.0.2.1", "rr"), owner(stackA)), svcJSON("192.0.2.2", "rr"))
	wantCode(t, "owned op", res[0], protocol.CodeLedger, "another ipvs-helper held", "pulumi-ipvs.lock")
	wantCode(t, "op without owner", res[1], "ok")
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("waited %s for a 150ms lock deadline", took)
	}
	if len(f.svcs) != 1 {
		t.Errorf("table %v", f.svcs)
	}
}

// A ledger that cannot be kept (here: systemd runs but its unit directory is missing) fails every op whose
// success changed it with LEDGER, saying the kernel change was made.
func TestLedgerFailureFailsTheOps(t *testing.T) {
	f, e := newOwnedEngine(t)
	os.MkdirAll(ledger.SystemdRun, 0o755)
	os.RemoveAll(ledger.UnitDir)
	res := run(t, e, as(svcJSON("192.0.2.1", "rr"), owner(stackA)), svcJSON("192.0.2.2", "rr"))
	wantCode(t, "owned op", res[0], protocol.CodeLedger, "was done in the kernel", "unit directory")
	wantCode(t, "op without owner", res[1], "ok")
	if len(f.svcs) != 2 {
		t.Errorf("table %v", f.svcs)
	}
}

// A symlinked component of the state directory is refused naming it, and nothing is changed through it.
func TestJudgedStateDirRefusesSymlink(t *testing.T) {
	root := ledgertest.Use(t)
	elsewhere := filepath.Join(root, "elsewhere")
	os.MkdirAll(elsewhere, 0o755)
	os.Remove(filepath.Join(root, "var/lib"))
	os.Symlink(elsewhere, filepath.Join(root, "var/lib"))
	f := newFake()
	e := New(f, ipvs.KernelVersion{Major: 6, Minor: 1}, nil)
	res := run(t, e, as(svcJSON("192.0.2.1", "rr"), owner(stackA)))
	wantCode(t, "owned op", res[0], protocol.CodeLedger, filepath.Join(root, "var/lib")+" is a symbolic link")
	if ents, _ := os.ReadDir(elsewhere); len(ents) != 0 || len(f.svcs) != 0 {
		t.Errorf("wrote through the symlink: %v, table %v", ents, f.svcs)
	}
}

// Within one stack a real server belongs to one resource: the ledger records the holder (a URN) an ensure gives,
// and an ensure or delete naming another holder is refused naming it; no holder on either side is no check.
func TestDestHolders(t *testing.T) {
	f, e := newOwnedEngine(t)
	const pool, rs = "urn:pulumi:prod::lb::pulumi-nodejs:dynamic/ipvs:RealServerPool::web", "urn:pulumi:prod::lb::pulumi-nodejs:dynamic/ipvs:RealServer::app-1"
	held := func(h string) string { return owner(stackA) + fmt.Sprintf(`,"holder":%q`, h) }
	ensure, del := destJSON("ensureDest", "192.0.2.1", "10.0.0.1", 1), destJSON("deleteDest", "192.0.2.1", "10.0.0.1", 0)
	res := run(t, e, as(svcJSON("192.0.2.1", "rr"), owner(stackA)), as(ensure, held(pool)))
	wantCode(t, "create", res[1], "ok")
	if d := stackFile(t, stackA)["dests"].([]any)[0].(map[string]any); d["holder"] != pool {
		t.Fatalf("record %v, want holder %s", d, pool)
	}
	wantCode(t, "another resource's ensure", run(t, e, as(ensure, held(rs)))[0], protocol.CodeOwned, "held by another resource of this stack, "+pool, "takeover")
	wantCode(t, "another resource's delete", run(t, e, as(del, held(rs)))[0], protocol.CodeOwned, pool)
	if len(f.dests[svc1]) != 1 {
		t.Fatal("a refused delete deleted")
	}
	// A caller without holders is not checked and does not clear the record's holder.
	wantCode(t, "no holder", run(t, e, as(destJSON("ensureDest", "192.0.2.1", "10.0.0.1", 3), owner(stackA)))[0], "ok")
	wantCode(t, "still the pool's", run(t, e, as(ensure, held(rs)))[0], protocol.CodeOwned, pool)
	// takeover moves it to the other resource; another stack's takeover records its own holder.
	wantCode(t, "takeover", run(t, e, as(ensure, held(rs)+`,"takeover":true`))[0], "ok")
	wantCode(t, "the pool now", run(t, e, as(ensure, held(pool)))[0], protocol.CodeOwned, rs)
	wantCode(t, "other stack takes it", run(t, e, as(ensure, owner(stackB)+`,"holder":"urn:b","takeover":true`))[0], "ok")
	if d := stackFile(t, stackB)["dests"].([]any)[0].(map[string]any); d["holder"] != "urn:b" {
		t.Fatalf("B's record %v", d)
	}
	wantCode(t, "its holder deletes", run(t, e, as(del, owner(stackB)+`,"holder":"urn:b"`))[0], "ok")
	if len(f.dests[svc1]) != 0 || stackFile(t, stackB) != nil {
		t.Fatalf("after delete: %v %v", f.dests, stackFile(t, stackB))
	}
}

// A resource renamed with aliases keeps its real server: an ensure naming the URN it moves from (formerHolder) is
// accepted and records the new holder; a delete likewise. A formerHolder the ledger does not record, or one of
// another stack, is refused as before.
func TestFormerHolderMovesTheDest(t *testing.T) {
	f, e := newOwnedEngine(t)
	const old, renamed = "urn:pulumi:prod::lb::pulumi-nodejs:dynamic/ipvs:RealServer::app-1", "urn:pulumi:prod::lb::pulumi-nodejs:dynamic/ipvs:RealServer::web-1"
	moving := func(o, h, from string) string {
		return owner(o) + fmt.Sprintf(`,"holder":%q,"formerHolder":%q`, h, from)
	}
	ensure, del := destJSON("ensureDest", "192.0.2.1", "10.0.0.1", 1), destJSON("deleteDest", "192.0.2.1", "10.0.0.1", 0)
	res := run(t, e, as(svcJSON("192.0.2.1", "rr"), owner(stackA)), as(ensure, owner(stackA)+fmt.Sprintf(`,"holder":%q`, old)))
	wantCode(t, "create", res[1], "ok")

	wantCode(t, "a wrong formerHolder", run(t, e, as(ensure, moving(stackA, renamed, "urn:other")))[0], protocol.CodeOwned, "held by another resource of this stack, "+old)
	wantCode(t, "a wrong formerHolder's delete", run(t, e, as(del, moving(stackA, renamed, "urn:other")))[0], protocol.CodeOwned, old)
	wantCode(t, "another stack naming the holder", run(t, e, as(ensure, moving(stackB, renamed, old)))[0], protocol.CodeOwned, "belongs to stack "+stackA)
	if d := stackFile(t, stackA)["dests"].([]any)[0].(map[string]any); d["holder"] != old || len(f.dests[svc1]) != 1 || stackFile(t, stackB) != nil {
		t.Fatalf("a refused op changed something: record %v, table %v", d, f.dests)
	}

	wantCode(t, "the move", run(t, e, as(ensure, moving(stackA, renamed, old)))[0], "ok")
	if d := stackFile(t, stackA)["dests"].([]any)[0].(map[string]any); d["holder"] != renamed {
		t.Fatalf("record %v, want holder %s", d, renamed)
	}
	// Moved: the old URN is now another resource's, and re-sending the move is harmless.
	wantCode(t, "the old URN", run(t, e, as(ensure, owner(stackA)+fmt.Sprintf(`,"holder":%q`, old)))[0], protocol.CodeOwned, renamed)
	wantCode(t, "the move again", run(t, e, as(ensure, moving(stackA, renamed, old)))[0], "ok")

	// A delete moving from the recorded holder is accepted too (a pool renamed while dropping a member).
	wantCode(t, "delete moving back", run(t, e, as(del, moving(stackA, old, renamed)))[0], "ok")
	if len(f.dests[svc1]) != 0 || count(stackFile(t, stackA), "dests") != 0 {
		t.Fatalf("after delete: %v %v", f.dests, stackFile(t, stackA))
	}
}
