package engine

import (
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ledger"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/managers"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
)

// A request that expires after some of its owned ops changed the kernel answers them ok only with their records
// saved: the watchdog saves the ledger before answering, so boot restores them and no other stack may adopt them.
// (The request's goroutine stays parked: the helper exits after such an answer.) The limit leaves the save 200 ms.
func TestExpiredRequestSavesTheSettledOpsRecords(t *testing.T) {
	_, e := newOwnedEngine(t)
	stuck := make(chan struct{})
	defer close(stuck)
	e.modprobe = func(string, ...string) error { <-stuck; return nil }
	req := request(as(svcJSON("192.0.2.1", "rr"), owner(stackA)), as(destJSON("ensureDest", "192.0.2.1", "10.0.0.1", 1), owner(stackA)),
		as(svcJSON("192.0.2.4", "mh"), owner(stackA))) // mh is not loaded in the fake kernel: modprobe hangs
	resp, hung := Watch(req, 2*time.Second, func(p *Progress) protocol.Response { return e.RunTracked(req, p) })
	if !hung {
		t.Fatal("not hung")
	}
	wantCode(t, "service", resp.Results[0], "ok")
	wantCode(t, "dest", resp.Results[1], "ok")
	wantCode(t, "hung service", resp.Results[2], "TIMEOUT")
	l, err := ledger.Load()
	if err != nil {
		t.Fatal(err)
	}
	svc := ipvs.ServiceKey{AF: ipvs.AFInet, Protocol: ipvs.ProtoTCP, Addr: netip.MustParseAddr("192.0.2.1"), Port: 80}
	if l.ServiceOwner(svc) != stackA || len(l.Stacks()) != 1 || len(l.Stacks()[0].Dests) != 1 {
		t.Fatalf("ledger after the expired request: %v", stackFile(t, stackA))
	}
}

// When the records cannot be saved in time (the engine is inside a ledger write that hangs), the settled owned
// ops are answered LEDGER, saying their change was made but not recorded, never ok.
func TestExpiredRequestThatCannotSaveAnswersLedger(t *testing.T) {
	_, e := newOwnedEngine(t)
	req := request(as(svcJSON("192.0.2.1", "rr"), owner(stackA)), `{"op":"getTimeouts"}`)
	p := NewProgress(req)
	resp := e.RunTracked(req, p) // settles op 0 ok
	wantCode(t, "service", resp.Results[0], "ok")
	// As if the request were still inside its save: the engine holds the guard and the ledger has unsaved changes.
	e.guard.hold()
	p.settle(1, nil)
	p.onExpiry(e.saveSettled)
	out := p.Expired(200 * time.Millisecond)
	wantCode(t, "service", out.Results[0], protocol.CodeLedger, "ensuring service tcp 192.0.2.1:80 was done in the kernel, but recording it in the ownership ledger failed",
		"ran out of time while the ledger was being written")
	wantCode(t, "getTimeouts", out.Results[1], protocol.CodeTimeout)
}

// The scan for other managers runs under the ledger's lock with its own deadline: one that cannot finish fails the
// adopt saying MANAGED_ELSEWHERE cannot be decided, soon, and releases the lock.
func TestManagerScanThatCannotFinishFailsTheAdoptInTime(t *testing.T) {
	f, e := newOwnedEngine(t)
	f.svcs[ipvs.ServiceKey{AF: ipvs.AFInet, Protocol: ipvs.ProtoTCP, Addr: netip.MustParseAddr("192.0.2.1"), Port: 80}] = ipvs.Service{
		ServiceKey: ipvs.ServiceKey{AF: ipvs.AFInet, Protocol: ipvs.ProtoTCP, Addr: netip.MustParseAddr("192.0.2.1"), Port: 80}, ServiceSettings: ipvs.ServiceSettings{Sched: "rr"}}
	stuck, exited := make(chan struct{}), make(chan struct{})
	defer func() { close(stuck); <-exited }()
	// Released when the test ends, it then fails the scan at once, and the test waits for that.
	managers.InterfaceAddrs = func(string) ([]netip.Addr, error) { <-stuck; close(exited); return nil, os.ErrClosed }
	e.ScanWait = 100 * time.Millisecond
	start := time.Now()
	res := run(t, e, as(svcJSON("192.0.2.1", "wlc"), owner(stackA)+`,"onExisting":"update"`))
	wantCode(t, "adopt", res[0], protocol.CodeManagedElsewhere, "MANAGED_ELSEWHERE cannot be decided", "did not finish in time", "interface kube-ipvs0")
	if d := time.Since(start); d > time.Second {
		t.Errorf("the adopt took %s", d)
	}
	l, err := ledger.Open(time.Now().Add(10*time.Millisecond), nil)
	if err != nil {
		t.Fatalf("the lock is still held: %v", err)
	}
	l.Close()
	if !strings.Contains(message(res[0]), "nothing was changed") {
		t.Errorf("message %q", message(res[0]))
	}
}
