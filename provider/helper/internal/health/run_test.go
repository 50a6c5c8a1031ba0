package health_test

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/health"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ledger"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ledger/ledgertest"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
)

// table is a kernel table shared with the runner's goroutine.
type table struct {
	mu    sync.Mutex
	dests map[ipvs.DestKey]ipvs.Dest
	reads int
}

func (t *table) Dests(ipvs.ServiceKey) ([]ipvs.Dest, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.reads++
	var out []ipvs.Dest
	for _, d := range t.dests {
		out = append(out, d)
	}
	return out, nil
}
func (t *table) NewDest(_ ipvs.ServiceKey, d ipvs.Dest) error { return t.SetDest(ipvs.ServiceKey{}, d) }
func (t *table) SetDest(_ ipvs.ServiceKey, d ipvs.Dest) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.dests[d.DestKey] = d
	return nil
}
func (t *table) DelDest(_ ipvs.ServiceKey, k ipvs.DestKey) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.dests, k)
	return nil
}

// dumps is how many times the checker read a service's real servers from the kernel.
func (t *table) dumps() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.reads
}

func (t *table) weight(k ipvs.DestKey) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return int(t.dests[k].Weight)
}

var (
	svc   = ipvs.ServiceKey{AF: ipvs.AFInet, Protocol: ipvs.ProtoTCP, Addr: netip.MustParseAddr("192.0.2.10"), Port: 80}
	destA = ipvs.DestKey{AF: ipvs.AFInet, Addr: netip.MustParseAddr("10.10.0.11"), Port: 80}
	destB = ipvs.DestKey{AF: ipvs.AFInet, Addr: netip.MustParseAddr("10.10.0.12"), Port: 80}
)

// record writes what an `up` would: the service, A at weight w with a tcp check (or none), B at 5 without one.
func record(t *testing.T, w uint32, checked bool) {
	t.Helper()
	l, err := ledger.Open(time.Now().Add(time.Second), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.PutService("a/b/c", svc, protocol.ServiceJSON(ipvs.Service{ServiceKey: svc, ServiceSettings: ipvs.DefaultService(ipvs.AFInet)}, nil).ServiceSpecOut)
	for _, d := range []struct {
		k ipvs.DestKey
		w uint32
	}{{destA, w}, {destB, 5}} {
		l.PutDest("a/b/c", "", svc, d.k, protocol.DestJSON(ipvs.Dest{DestKey: d.k, DestSettings: ipvs.DestSettings{Fwd: ipvs.FwdMasq, Weight: d.w}}).DestSpecOut)
	}
	var check *protocol.HealthCheck
	if checked {
		check = &protocol.HealthCheck{Type: "tcp", Port: 80, IntervalSeconds: 1, TimeoutSeconds: 0.2, Rise: 1, Fall: 1, OnFailure: "quiesce"}
	}
	l.SetDestCheck("a/b/c", svc, destA, check)
	if err := l.Save(); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5 s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The runner reads its checks from the ledger and follows its changes (a new declared weight is what it restores,
// a check removed is forgotten) without losing up/down state; it touches only checked real servers; it logs each
// transition once; its state survives it.
func TestRunnerFollowsTheLedger(t *testing.T) {
	root := ledgertest.Use(t)
	record(t, 5, true)
	k, down, logs, stop := start(t, root)
	defer stop()
	waitFor(t, "A quiesced", func() bool { return k.weight(destA) == 0 })
	if k.weight(destB) != 5 {
		t.Fatal("the checker changed a real server nobody declared a check for")
	}
	// An `up` records weight 7 for A while it is down: recovery restores 7.
	record(t, 7, true)
	time.Sleep(300 * time.Millisecond) // a few reloads: A must stay at 0 while down
	if k.weight(destA) != 0 {
		t.Fatalf("A at %d while down after a reload", k.weight(destA))
	}
	down(destA.Addr, "")
	waitFor(t, "A restored at its new declared weight", func() bool { return k.weight(destA) == 7 })
	stop()
	text := logs()
	for _, want := range []string{
		"tcp/192.0.2.10:80 → 10.10.0.11:80 down: connection refused (1 of 1 failed); quiesced, weight 5 → 0",
		"tcp/192.0.2.10:80 → 10.10.0.11:80 up: tcp check passed (1 of 1); restored, weight 0 → 7",
	} {
		if strings.Count(text, want) != 1 {
			t.Errorf("the log does not hold %q once:\n%s", want, text)
		}
	}
	st, err := health.ReadState(filepath.Join(root, "state.json"))
	if err != nil || len(st.Dests) != 1 || !st.Dests[health.Key{Svc: svc, Dest: destA}].Healthy {
		t.Fatalf("state after stop: %+v %v", st, err)
	}
}

// start runs a checker on a table holding A and B at weight 5, both failing their probes ("connection refused")
// until down(addr, "") (or down(addr, reason): failing for another reason).
func start(t *testing.T, root string) (k *table, down func(netip.Addr, string), logs func() string, stop func()) {
	return startOn(t, root, twoDests(), map[netip.Addr]string{destA.Addr: "connection refused", destB.Addr: "connection refused"})
}

// twoDests is a table holding A and B at weight 5.
func twoDests() *table {
	k := &table{dests: map[ipvs.DestKey]ipvs.Dest{}}
	for _, d := range []ipvs.DestKey{destA, destB} {
		k.dests[d] = ipvs.Dest{DestKey: d, DestSettings: ipvs.DestSettings{Fwd: ipvs.FwdMasq, Weight: 5}}
	}
	return k
}

// startOn runs a checker on table k, whose probes of the addresses in failing fail for the reason given there.
func startOn(t *testing.T, root string, k *table, failing map[netip.Addr]string) (_ *table, down func(netip.Addr, string), logs func() string, stop func()) {
	var mu sync.Mutex
	var lines []string
	r := &health.Runner{Kernel: k, Ledger: ledger.Open, Now: time.Now, StatePath: filepath.Join(root, "state.json"),
		MetricsDir: filepath.Join(root, "metrics"), Reload: 100 * time.Millisecond, LockWait: time.Second, MaxProbes: 4,
		Probe: func(_ context.Context, a netip.Addr, _ *protocol.HealthCheck) error {
			mu.Lock()
			defer mu.Unlock()
			if failing[a] != "" {
				return errors.New(failing[a])
			}
			return nil
		},
		Log: func(l string) { mu.Lock(); lines = append(lines, l); mu.Unlock() }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	down = func(a netip.Addr, why string) { mu.Lock(); failing[a] = why; mu.Unlock() }
	logs = func() string { mu.Lock(); defer mu.Unlock(); return strings.Join(lines, "\n") }
	return k, down, logs, stop
}

// A stack file that becomes unreadable (a hand edit gone wrong) does not make the checker forget that stack's
// checks: its depooled server stays depooled and is restored, at its declared weight, when it recovers.
func TestRunnerKeepsChecksOfAnUnreadableStack(t *testing.T) {
	root := ledgertest.Use(t)
	record(t, 5, true)
	k, down, _, stop := start(t, root)
	defer stop()
	waitFor(t, "A quiesced", func() bool { return k.weight(destA) == 0 })
	if err := os.WriteFile(filepath.Join(ledger.Dir, "stacks", ledger.FileName("a/b/c")), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // a few reloads of the broken file
	down(destA.Addr, "")
	waitFor(t, "A restored", func() bool { return k.weight(destA) == 5 })
}

// state.json (which read-back reports) follows each probe's result, not only transitions: a server that stays down
// for another reason shows that reason, and a server seen healthy for the first time shows "ok".
func TestRunnerSavesTheLastResult(t *testing.T) {
	root := ledgertest.Use(t)
	record(t, 5, true)
	k, down, _, stop := start(t, root)
	defer stop()
	last := func() string {
		st, err := health.ReadState(filepath.Join(root, "state.json"))
		if ds := st.Dests[health.Key{Svc: svc, Dest: destA}]; err == nil && ds != nil {
			return ds.Last
		}
		return ""
	}
	waitFor(t, "A quiesced", func() bool { return k.weight(destA) == 0 })
	waitFor(t, "connection refused saved", func() bool { return last() == "connection refused" })
	down(destA.Addr, "status 503, not in 200")
	waitFor(t, "the new reason saved while A stays down", func() bool { return last() == "status 503, not in 200" })
	if k.weight(destA) != 0 {
		t.Fatal("A restored while failing")
	}

	// A new checker whose first result for a server is "ok" (no transition: it starts healthy) saves it.
	stop()
	if err := os.Remove(filepath.Join(root, "state.json")); err != nil {
		t.Fatal(err)
	}
	k.SetDest(svc, ipvs.Dest{DestKey: destA, DestSettings: ipvs.DestSettings{Fwd: ipvs.FwdMasq, Weight: 5}})
	_, _, _, stop2 := startOn(t, root, k, map[netip.Addr]string{})
	defer stop2()
	waitFor(t, "ok saved", func() bool { return last() == "ok" })
}

// A service whose checked real servers are all healthy costs no kernel read: the pass every second has nothing to
// do for it (it touches no healthy server it did not depool). One that goes down is reconciled (quiesced, held at 0,
// restored), and once it is back the service is quiet again.
func TestRunnerReadsTheKernelOnlyForServicesWithSomethingToDo(t *testing.T) {
	root := ledgertest.Use(t)
	record(t, 5, true)
	k, down, _, stop := startOn(t, root, twoDests(), map[netip.Addr]string{})
	defer stop()
	time.Sleep(500 * time.Millisecond) // five reloads (Reload is 100 ms), A probed healthy every 1 s interval
	if n := k.dumps(); n != 0 || k.weight(destA) != 5 {
		t.Fatalf("all healthy: %d kernel reads, A at weight %d; want 0 reads, weight 5", n, k.weight(destA))
	}
	down(destA.Addr, "connection refused")
	waitFor(t, "A quiesced", func() bool { return k.weight(destA) == 0 })
	down(destA.Addr, "")
	waitFor(t, "A restored", func() bool { return k.weight(destA) == 5 })
	time.Sleep(200 * time.Millisecond) // the pass that restored A ends
	before := k.dumps()
	time.Sleep(500 * time.Millisecond)
	if n := k.dumps(); n != before {
		t.Fatalf("healthy again: %d kernel reads in five reloads, want 0", n-before)
	}
}
