package health

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
)

// TestProbesDueWithinATickStartTogether: 20 checks every second, spread over it by plan, start in at most five
// groups a second (a wake each: a wake costs a small director more than the probe it starts), each probe at most a
// tick after it was due, and every check once a second. The loop is driven here as Run drives it: schedule at each
// wake, then sleep as long as sleep says, on a clock the test moves.
func TestProbesDueWithinATickStartTogether(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	r := &Runner{Now: func() time.Time { return now }, MaxProbes: 256}
	r.slots, r.pending = map[Key]*slot{}, map[Key]string{}
	r.jobs = make(chan job, r.MaxProbes)
	r.workers = r.MaxProbes // no worker goroutines: the test takes the jobs and ends the probes
	r.cfg = Config{Targets: map[Key]Target{}}
	svc := ipvs.ServiceKey{AF: ipvs.AFInet, Protocol: ipvs.ProtoTCP, Addr: netip.MustParseAddr("192.0.2.10"), Port: 80}
	check := protocol.HealthCheck{Type: "tcp", Port: 80, IntervalSeconds: 1, TimeoutSeconds: 0.5, Rise: 1, Fall: 1, OnFailure: "quiesce"}
	for i := range 20 {
		k := Key{Svc: svc, Dest: ipvs.DestKey{AF: ipvs.AFInet, Addr: netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}), Port: 80}}
		r.cfg.Targets[k] = Target{Check: check}
	}
	r.plan()
	r.rereadAt = now.Add(time.Hour)
	start := now
	wakes, probes := map[int]int{}, map[Key]int{}
	for now.Before(start.Add(5 * time.Second)) {
		due := map[Key]time.Time{}
		for k, s := range r.slots {
			due[k] = s.next
		}
		r.woke = now
		r.schedule(context.Background())
		if len(r.jobs) > 0 {
			wakes[int(now.Sub(start)/time.Second)]++
		}
		for len(r.jobs) > 0 {
			j := <-r.jobs
			if late := now.Sub(due[j.key]); late < 0 || late > tick {
				t.Fatalf("%v started %v after it was due, want within a tick (%v)", j.key.Dest.Addr, late, tick)
			}
			probes[j.key]++
			r.slots[j.key].inflight, r.inflight = false, r.inflight-1 // the probe ended at once
		}
		now = now.Add(r.sleep())
	}
	for s, n := range wakes {
		if n > 5 { // PROTOCOL.md: the checker wakes at most five times a second to start probes
			t.Errorf("second %d: the probes started in %d wakes, want at most 5", s, n)
		}
	}
	for k := range r.cfg.Targets {
		if probes[k] < 4 || probes[k] > 6 {
			t.Errorf("%v probed %d times in 5 s, want about 5 (every 1 s)", k.Dest.Addr, probes[k])
		}
	}
}

// TestDueHeapPopsSoonestFirst: the due heap gives its entries back soonest first, equal times included, whatever
// the order they were pushed in, and pushes between pops keep the order.
func TestDueHeapPopsSoonestFirst(t *testing.T) {
	base := time.Unix(1_000_000, 0)
	rnd := rand.New(rand.NewPCG(1, 2))
	var h dueHeap
	var popped []time.Time
	for round := range 50 {
		for range rnd.IntN(40) {
			h.push(dueEntry{at: base.Add(time.Duration(rnd.IntN(100)) * time.Millisecond)})
		}
		for range rnd.IntN(len(h) + 1) {
			popped = append(popped, h.pop().at)
		}
		if round%10 == 9 { // a later batch: pushed after pops, all due later
			base = base.Add(time.Second)
		}
		if !slices.IsSortedFunc(popped, time.Time.Compare) {
			t.Fatalf("round %d: popped out of order: %v", round, popped)
		}
		popped = popped[:0]
	}
	for len(h) > 0 {
		popped = append(popped, h.pop().at)
	}
	if !slices.IsSortedFunc(popped, time.Time.Compare) {
		t.Fatalf("the rest popped out of order: %v", popped)
	}
}

// TestScheduleFollowsConfigChanges: a check removed is probed no more; one removed while its probe runs and added
// back meanwhile waits for that probe (never two at once for one real server); a changed interval takes effect
// from the next probe; MaxProbes counts every probe until its result comes, whatever became of its check.
func TestScheduleFollowsConfigChanges(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	r := &Runner{Now: func() time.Time { return now }, MaxProbes: 256, st: NewState()}
	r.slots, r.pending = map[Key]*slot{}, map[Key]string{}
	r.jobs = make(chan job, r.MaxProbes)
	r.workers = r.MaxProbes // no worker goroutines: the test takes the jobs
	svc := ipvs.ServiceKey{AF: ipvs.AFInet, Protocol: ipvs.ProtoTCP, Addr: netip.MustParseAddr("192.0.2.10"), Port: 80}
	a := Key{Svc: svc, Dest: ipvs.DestKey{AF: ipvs.AFInet, Addr: netip.MustParseAddr("10.0.0.1"), Port: 80}}
	b := Key{Svc: svc, Dest: ipvs.DestKey{AF: ipvs.AFInet, Addr: netip.MustParseAddr("10.0.0.2"), Port: 80}}
	every := func(s float64) Target {
		return Target{Check: protocol.HealthCheck{Type: "tcp", Port: 80, IntervalSeconds: s, TimeoutSeconds: 0.5, Rise: 1, Fall: 1, OnFailure: "quiesce"}}
	}
	started := func() (keys []Key) { // runs the loop's schedule for the next 4 s, one tick at a time
		for end := now.Add(4 * time.Second); now.Before(end); now = now.Add(tick) {
			r.schedule(context.Background())
			for len(r.jobs) > 0 {
				keys = append(keys, (<-r.jobs).key)
			}
		}
		return keys
	}
	count := func(keys []Key, k Key) int {
		return len(slices.DeleteFunc(slices.Clone(keys), func(x Key) bool { return x != k }))
	}

	r.setConfig(Config{Targets: map[Key]Target{a: every(1), b: every(1)}})
	if got := started(); count(got, a) != 1 || count(got, b) != 1 || r.inflight != 2 {
		// each probe runs (no result yet): no second one for either
		t.Fatalf("first 4 s without results: started %d of A and %d of B, %d in flight; want 1, 1, 2", count(got, a), count(got, b), r.inflight)
	}
	// A's check is removed while its probe runs, then added back every 2 s before its result comes.
	r.setConfig(Config{Targets: map[Key]Target{b: every(1)}})
	r.setConfig(Config{Targets: map[Key]Target{a: every(2), b: every(1)}})
	if got := started(); count(got, a) != 0 {
		t.Fatalf("A probed %d times while its last probe still ran", count(got, a))
	}
	r.observe(result{a, nil})
	r.observe(result{b, nil})
	if r.inflight != 0 {
		t.Fatalf("%d probes in flight after both results", r.inflight)
	}
	// Each probe now ends at once: A every 2 s, B every 1 s.
	var got []Key
	for end := now.Add(8 * time.Second); now.Before(end); now = now.Add(tick) {
		r.schedule(context.Background())
		for len(r.jobs) > 0 {
			k := (<-r.jobs).key
			got = append(got, k)
			r.observe(result{k, nil})
		}
	}
	if count(got, a) < 3 || count(got, a) > 5 || count(got, b) < 7 || count(got, b) > 9 {
		t.Fatalf("in 8 s: A probed %d times (want about 4, every 2 s), B %d (want about 8)", count(got, a), count(got, b))
	}
	// A removed for good: never probed again, its slot gone.
	r.setConfig(Config{Targets: map[Key]Target{b: every(1)}})
	if got := started(); count(got, a) != 0 || r.slots[a] != nil {
		t.Fatalf("A probed %d times after its check was removed (slot %v)", count(got, a), r.slots[a])
	}
	r.observe(result{b, nil})
	// B's interval goes to an hour and back to 1 s: its next probe is planned anew, not an hour away.
	r.setConfig(Config{Targets: map[Key]Target{b: every(3600)}})
	if count(started(), b) > 0 {
		r.observe(result{b, nil})
	}
	r.setConfig(Config{Targets: map[Key]Target{b: every(1)}})
	if got := started(); count(got, b) != 1 {
		t.Fatalf("B probed %d times in the 4 s after its interval went back to 1 s, want 1 (its probe never ends)", count(got, b))
	}
}

// TestATransitionIsActedOnAtOnceAtMostOnceATick: with a transition pending the loop sleeps not at all when the last
// pass was a tick ago or more, else until a tick after it; without one, never less than a tick (a probe due sooner
// waits for it).
func TestATransitionIsActedOnAtOnceAtMostOnceATick(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	r := &Runner{Now: func() time.Time { return now }, MaxProbes: 256, Reload: time.Second}
	r.pending = map[Key]string{}
	r.rereadAt = now.Add(time.Hour)
	r.passed, r.woke = now.Add(-time.Second), now
	r.due.push(dueEntry{now.Add(10 * time.Millisecond), &slot{}})
	if d := r.sleep(); d != tick {
		t.Fatalf("a probe due in 10 ms: sleeps %v, want a tick", d)
	}
	r.pending[Key{}] = "down: connection refused (3 of 3 failed)"
	if d := r.sleep(); d != 0 {
		t.Fatalf("a transition, the last pass a second ago: sleeps %v, want 0", d)
	}
	r.passed = now.Add(-50 * time.Millisecond)
	if d := r.sleep(); d != tick-50*time.Millisecond {
		t.Fatalf("a transition, the last pass 50 ms ago: sleeps %v, want %v", d, tick-50*time.Millisecond)
	}
}

// startedWith is a Reactor that takes every check and records the urgency each probe was started with.
type startedWith map[Key]Urgency

func (s startedWith) Takes(string) bool { return true }
func (s startedWith) Start(k Key, _ protocol.HealthCheck, u Urgency) error {
	s[k] = u
	return nil
}
func (startedWith) Ready() <-chan struct{}       { return nil }
func (startedWith) Urgent() <-chan struct{}      { return nil }
func (startedWith) Take(spare []result) []result { return spare[:0] }
func (startedWith) Close() error                 { return nil }

// TestProbesStartWithTheirUrgency: the reactor is told which result of each probe would change its real server's
// health: a failure for one with fall 1, none for one with fall 3 that has not failed yet.
func TestProbesStartWithTheirUrgency(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	rx := startedWith{}
	r := &Runner{Now: func() time.Time { return now }, MaxProbes: 256, st: NewState(), rx: rx}
	r.slots, r.pending = map[Key]*slot{}, map[Key]string{}
	svc := ipvs.ServiceKey{AF: ipvs.AFInet, Protocol: ipvs.ProtoTCP, Addr: netip.MustParseAddr("192.0.2.10"), Port: 80}
	a := Key{Svc: svc, Dest: ipvs.DestKey{AF: ipvs.AFInet, Addr: netip.MustParseAddr("10.0.0.1"), Port: 80}}
	b := Key{Svc: svc, Dest: ipvs.DestKey{AF: ipvs.AFInet, Addr: netip.MustParseAddr("10.0.0.2"), Port: 80}}
	fall := func(n int) Target {
		return Target{Check: protocol.HealthCheck{Type: "tcp", Port: 80, IntervalSeconds: 1, TimeoutSeconds: 0.5, Rise: 1, Fall: n, OnFailure: "quiesce"}}
	}
	r.setConfig(Config{Targets: map[Key]Target{a: fall(1), b: fall(3)}})
	for end := now.Add(time.Second + tick); now.Before(end); now = now.Add(tick) { // each probed once
		r.schedule(context.Background())
	}
	if u, ok := rx[a]; !ok || u != UrgentFailure {
		t.Errorf("fall 1: started %v with urgency %b, want a failure's", ok, u)
	}
	if u, ok := rx[b]; !ok || u != 0 {
		t.Errorf("fall 3, no failure yet: started %v with urgency %b, want none", ok, u)
	}
}

// TestAWakeThatTookATickGoesOnAtOnce: the loop sleeps until a tick after its last wake began, not a tick after it
// ended: one that took longer (a starved director) starts the probes due meanwhile at once.
func TestAWakeThatTookATickGoesOnAtOnce(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	r := &Runner{Now: func() time.Time { return now }, MaxProbes: 256, Reload: time.Second}
	r.pending = map[Key]string{}
	r.rereadAt = now.Add(time.Hour)
	r.woke = now.Add(-50 * time.Millisecond)
	r.due.push(dueEntry{now.Add(-10 * time.Millisecond), &slot{}})
	if d := r.sleep(); d != tick-50*time.Millisecond {
		t.Fatalf("a wake 50 ms ago, a probe due: sleeps %v, want %v", d, tick-50*time.Millisecond)
	}
	r.woke = now.Add(-time.Second)
	if d := r.sleep(); d != 0 {
		t.Fatalf("a wake that began a second ago, a probe due: sleeps %v, want 0", d)
	}
}

// urgentSoon is a Reactor that takes every check and has an urgent result to tell.
type urgentSoon struct {
	startedWith
	urgent chan struct{}
}

func (u urgentSoon) Urgent() <-chan struct{} { return u.urgent }

// TestScheduleStopsForAnUrgentResult: starting many due probes, schedule stops within 16 of them when the reactor
// tells of an urgent result (the loop then reconciles its transition), and the next call starts the rest.
func TestScheduleStopsForAnUrgentResult(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	rx := urgentSoon{startedWith{}, make(chan struct{}, 1)}
	r := &Runner{Now: func() time.Time { return now }, MaxProbes: 256, st: NewState(), rx: rx}
	r.slots, r.pending = map[Key]*slot{}, map[Key]string{}
	svc := ipvs.ServiceKey{AF: ipvs.AFInet, Protocol: ipvs.ProtoTCP, Addr: netip.MustParseAddr("192.0.2.10"), Port: 80}
	targets := map[Key]Target{}
	for i := range 100 {
		k := Key{Svc: svc, Dest: ipvs.DestKey{AF: ipvs.AFInet, Addr: netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}), Port: 80}}
		targets[k] = Target{Check: protocol.HealthCheck{Type: "tcp", Port: 80, IntervalSeconds: 1, TimeoutSeconds: 0.5, Rise: 1, Fall: 3, OnFailure: "quiesce"}}
	}
	r.setConfig(Config{Targets: targets})
	now = now.Add(time.Second) // every probe due
	rx.urgent <- struct{}{}
	if !r.schedule(context.Background()) || len(rx.startedWith) > 16 {
		t.Fatalf("an urgent result told: schedule went on to start %d probes", len(rx.startedWith))
	}
	if r.schedule(context.Background()) || len(rx.startedWith) != 100 {
		t.Fatalf("nothing urgent: %d of 100 due probes started", len(rx.startedWith))
	}
}
