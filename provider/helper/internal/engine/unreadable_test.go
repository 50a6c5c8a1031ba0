package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ledger"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
)

// One damaged stack file blocks only the changes that must know what it holds: its own stack's, and claims of
// entries no readable stack owns. Other stacks change their own entries, a stray file is ignored, and boot restores
// every readable stack and reports the damaged file.
func TestUnreadableStackFileBlocksOnlyWhatItMightHold(t *testing.T) {
	f, e := newOwnedEngine(t)
	for _, r := range run(t, e, as(svcJSON("192.0.2.1", "rr"), owner(stackA)), as(destJSON("ensureDest", "192.0.2.1", "10.0.0.1", 1), owner(stackA)),
		as(svcJSON("192.0.2.2", "rr"), owner(stackB))) {
		wantCode(t, "setup", r, "ok")
	}
	stacks := filepath.Join(ledger.Dir, "stacks")
	bad := filepath.Join(stacks, ledger.FileName(stackB))
	os.WriteFile(bad, []byte(`{"v":2,"owner":`), 0o600)
	os.WriteFile(filepath.Join(stacks, "backup-copy.json"), []byte(`{"v":2,"owner":"x/y/z","services":[],"dests":[],"settings":null}`), 0o600)

	res := run(t, e,
		as(svcJSON("192.0.2.1", "wlc"), owner(stackA)),                        // A's own entry: goes on
		as(destJSON("ensureDest", "192.0.2.1", "10.0.0.1", 5), owner(stackA)), // A's own real server: goes on
		as(svcJSON("192.0.2.3", "rr"), owner(stackA)),                         // a new entry: B's file might claim it
		as(svcJSON("192.0.2.2", "wlc"), owner(stackB)),                        // B's own: its file cannot be read
		as(`{"op":"ensureSettings","settings":{"timeouts":{"tcp":900}}}`, owner(stackA)))
	wantCode(t, "A's service", res[0], "ok")
	wantCode(t, "A's real server", res[1], "ok")
	for i, what := range map[int]string{2: "service tcp 192.0.2.3:80", 3: "service tcp 192.0.2.2:80", 4: "the director settings"} {
		wantCode(t, what, res[i], protocol.CodeLedger, "refused: a record of "+what+" may be in a ledger file this helper cannot read",
			bad+" is not a valid stack record", "move it out of "+stacks)
	}
	if f.svcs[tcpKey("192.0.2.1")].Sched != "wlc" || f.svcs[tcpKey("192.0.2.2")].Sched != "rr" {
		t.Errorf("kernel: %v", f.svcs)
	}
	if got, _ := os.ReadFile(bad); string(got) != `{"v":2,"owner":` {
		t.Errorf("the damaged file was changed: %s", got)
	}

	// A reboot: boot restores A and names B's file among its failures.
	clear(f.svcs)
	clear(f.dests)
	lines, failures := e.Boot(time.Now().Add(time.Second))
	if len(lines) != 2 || !strings.Contains(lines[0], "192.0.2.1:80 -s wlc (stack "+stackA+")") {
		t.Errorf("boot lines: %v", lines)
	}
	if len(failures) != 1 || !strings.Contains(failures[0], "skipped, its entries not restored: the ledger file "+bad+" is not a valid stack record") {
		t.Errorf("boot failures: %v", failures)
	}
	if text := LedgerText(mustLoad(t)); !strings.Contains(text, "unreadable: the ledger file "+bad) ||
		!strings.Contains(text, "warning: ignoring "+filepath.Join(stacks, "backup-copy.json")) || !strings.Contains(text, "stack "+stackA) {
		t.Errorf("owners:\n%s", text)
	}
}

func tcpKey(ip string) ipvs.ServiceKey {
	return ipvs.ServiceKey{AF: ipvs.AFInet, Protocol: ipvs.ProtoTCP, Addr: mustAddr(ip), Port: 80}
}

func mustLoad(t *testing.T) *ledger.Ledger {
	t.Helper()
	l, err := ledger.Load()
	if err != nil {
		t.Fatal(err)
	}
	return l
}
