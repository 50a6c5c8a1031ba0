package health_test

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
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
func TestRunnerFollowsTheLedger(t *testing.T) { followsTheLedger(t, nil) }

// The same through the real inotify watch of the ledger, with no safety re-read for an hour: each change is seen
// through its events.
func TestRunnerFollowsTheLedgerThroughItsWatch(t *testing.T) {
	followsTheLedger(t, func(r *health.Runner) { r.Watch, r.Resync = ledger.Watch, time.Hour })
}

func followsTheLedger(t *testing.T, tune func(*health.Runner)) {
	root := ledgertest.Use(t)
	record(t, 5, true)
	k, down, logs, stop := startWith(t, root, twoDests(), map[netip.Addr]string{destA.Addr: "connection refused", destB.Addr: "connection refused"}, tune)
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
	return startWith(t, root, k, failing, nil)
}

// startWith is startOn with tune, when not nil, changing the runner before it runs (its seams: a watch, a ledger
// that counts its opens).
func startWith(t *testing.T, root string, k *table, failing map[netip.Addr]string, tune func(*health.Runner)) (_ *table, down func(netip.Addr, string), logs func() string, stop func()) {
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
	if tune != nil {
		tune(r)
	}
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

// fakeWatch is a runner's Watch the test drives: change sends an event, lose ends the live watch; while refused,
// a watch cannot start (no inotify, no stacks directory yet).
type fakeWatch struct {
	mu      sync.Mutex
	refused bool
	tries   int
	ch      chan struct{}
}

func (f *fakeWatch) watch(context.Context) (<-chan struct{}, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tries++
	if f.refused {
		return nil, errors.New("no inotify here")
	}
	f.ch = make(chan struct{}, 1)
	return f.ch, nil
}

func (f *fakeWatch) change() {
	f.mu.Lock()
	defer f.mu.Unlock()
	select {
	case f.ch <- struct{}{}:
	default:
	}
}

func (f *fakeWatch) lose(refuse bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	close(f.ch)
	f.ch, f.refused = nil, refuse
}

func (f *fakeWatch) refuse(refused bool) { f.mu.Lock(); f.refused = refused; f.mu.Unlock() }
func (f *fakeWatch) started() int        { f.mu.Lock(); defer f.mu.Unlock(); return f.tries }

// seams counts what a watched runner does: its ledger opens (each takes the lock and reads the stacks directory:
// when, and how many while a watch was alive) and its probes.
type seams struct {
	mu      sync.Mutex
	opened  []time.Time
	watched int
	probes  int
	fw      fakeWatch
}

func (s *seams) opens() int        { s.mu.Lock(); defer s.mu.Unlock(); return len(s.opened) }
func (s *seams) probed() int       { s.mu.Lock(); defer s.mu.Unlock(); return s.probes }
func (s *seams) whileWatched() int { s.mu.Lock(); defer s.mu.Unlock(); return s.watched }
func (s *seams) times() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.opened)
}

// tune gives the runner the fake watch, a ledger and a prober that count, Reload 100 ms and resync.
func (s *seams) tune(resync time.Duration) func(*health.Runner) {
	return func(r *health.Runner) {
		r.Watch, r.Resync = s.fw.watch, resync
		r.Ledger = func(deadline time.Time, prev *ledger.Ledger) (*ledger.Ledger, error) {
			s.fw.mu.Lock()
			live := s.fw.ch != nil
			s.fw.mu.Unlock()
			s.mu.Lock()
			s.opened = append(s.opened, time.Now())
			if live {
				s.watched++
			}
			s.mu.Unlock()
			return ledger.Open(deadline, prev)
		}
		probe := r.Probe
		r.Probe = func(ctx context.Context, a netip.Addr, c *protocol.HealthCheck) error {
			s.mu.Lock()
			s.probes++
			s.mu.Unlock()
			return probe(ctx, a, c)
		}
	}
}

// settle records A checked and healthy and runs a checker until its state says so, so that the next checker's
// first probe changes nothing (no state to save: no pass for it).
func settle(t *testing.T, root string) {
	t.Helper()
	record(t, 5, true)
	_, _, _, stop := startOn(t, root, twoDests(), map[netip.Addr]string{})
	defer stop()
	waitFor(t, "A's first ok saved", func() bool {
		st, err := health.ReadState(filepath.Join(root, "state.json"))
		ds := st.Dests[health.Key{Svc: svc, Dest: destA}]
		return err == nil && ds != nil && ds.Last == "ok"
	})
}

// A watched ledger is re-read on a change, not at the next resync (an hour away): an `up` that adds a check takes
// effect at once.
func TestRunnerRereadsTheLedgerOnAWatchEvent(t *testing.T) {
	root := ledgertest.Use(t)
	record(t, 5, false)
	s := &seams{}
	k, _, _, stop := startWith(t, root, twoDests(), map[netip.Addr]string{destA.Addr: "connection refused"}, s.tune(time.Hour))
	defer stop()
	waitFor(t, "the first pass", func() bool { return s.opens() == 1 })
	record(t, 5, true)
	s.fw.change()
	// Only the event can bring the re-read within waitFor's 5 s: the resync is an hour away, and nothing is busy
	// (A is unchecked until the re-read). How soon after the event is a timing a loaded machine does not keep.
	waitFor(t, "A checked and quiesced", func() bool { return k.weight(destA) == 0 })
}

// While nothing is busy and no event comes, a watched checker takes no lock and reads no ledger but every Resync;
// its probes run meanwhile.
func TestRunnerRereadsAWatchedLedgerOnlyEveryResyncWhileNothingIsBusy(t *testing.T) {
	root := ledgertest.Use(t)
	settle(t, root)
	s := &seams{}
	const resync = 700 * time.Millisecond
	k, _, _, stop := startWith(t, root, twoDests(), map[netip.Addr]string{}, s.tune(resync))
	defer stop()
	waitFor(t, "three resyncs", func() bool { return s.opens() >= 4 })
	times := s.times()
	for i := 1; i < len(times); i++ {
		if gap := times[i].Sub(times[i-1]); gap < resync {
			t.Fatalf("ledger opens %v apart (Reload is 100 ms, Resync %v): %v", gap, resync, times)
		}
	}
	if s.probed() < 2 || k.dumps() != 0 {
		t.Fatalf("%d probes, %d kernel reads; want A probed each second and no kernel read", s.probed(), k.dumps())
	}
}

// A busy service (A depooled) is still reconciled with the kernel every Reload without any event: an `up` that
// put A back in the kernel is undone within a Reload, not at the next resync (an hour away).
func TestRunnerReconcilesBusyServicesEveryReloadWhileWatched(t *testing.T) {
	root := ledgertest.Use(t)
	record(t, 5, true)
	s := &seams{}
	k, _, _, stop := startWith(t, root, twoDests(), map[netip.Addr]string{destA.Addr: "connection refused"}, s.tune(time.Hour))
	defer stop()
	waitFor(t, "A quiesced", func() bool { return k.weight(destA) == 0 })
	opens, dumps := s.opens(), k.dumps()
	k.SetDest(svc, ipvs.Dest{DestKey: destA, DestSettings: ipvs.DestSettings{Fwd: ipvs.FwdMasq, Weight: 5}})
	waitFor(t, "A quiesced again", func() bool { return k.weight(destA) == 0 })
	waitFor(t, "three more passes, each under the lock", func() bool { return s.opens() >= opens+3 && k.dumps() >= dumps+3 })
}

// A lost watch brings back the re-read every Reload, and a new watch tried at each (its failure logged once);
// once a watch starts again, the re-reads stop.
func TestRunnerFallsBackToRereadsEveryReloadWhenTheWatchIsLost(t *testing.T) {
	root := ledgertest.Use(t)
	settle(t, root)
	s := &seams{}
	_, _, logs, stop := startWith(t, root, twoDests(), map[netip.Addr]string{}, s.tune(time.Hour))
	defer stop()
	waitFor(t, "the first pass", func() bool { return s.opens() == 1 && s.fw.started() == 1 })
	s.fw.lose(true)
	waitFor(t, "five re-reads, each trying a watch", func() bool { return s.fw.started() >= 6 && s.opens() >= 6 })
	s.fw.refuse(false)
	// The first pass and the re-read that followed the new watch's start; then none.
	waitFor(t, "watched again", func() bool { return s.whileWatched() == 2 })
	probes := s.probed()
	waitFor(t, "a probe interval (ten Reloads)", func() bool { return s.probed() >= probes+2 })
	if n := s.whileWatched(); n != 2 {
		t.Fatalf("%d ledger opens while watched again and nothing busy, want 0", n-2)
	}
	if strings.Count(logs(), "watching the ledger: ") != 2 {
		t.Errorf("the log does not say twice that the ledger is watched:\n%s", logs())
	}
	text := logs()
	for want, n := range map[string]int{"the watch of the ledger was lost; re-reading it every 100ms until it is watched again": 1,
		"not watching the ledger (no inotify here): re-reading it every 100ms": 1} {
		if strings.Count(text, want) != n {
			t.Errorf("the log does not hold %q %d time(s):\n%s", want, n, text)
		}
	}
}
