package health

import (
	"context"
	"net/netip"
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
	r.next, r.inflight, r.pending = map[Key]time.Time{}, map[Key]bool{}, map[Key]string{}
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
		for k, at := range r.next {
			due[k] = at
		}
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
			delete(r.inflight, j.key) // the probe ended at once
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
