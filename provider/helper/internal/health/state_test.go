package health

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
)

// fakeKernel is one IPVS table in memory.
type fakeKernel struct {
	dests map[ipvs.ServiceKey]map[ipvs.DestKey]ipvs.Dest
}

func (f *fakeKernel) Dests(s ipvs.ServiceKey) ([]ipvs.Dest, error) {
	m, ok := f.dests[s]
	if !ok {
		return nil, errors.New("no such process")
	}
	var out []ipvs.Dest
	for _, d := range m {
		out = append(out, d)
	}
	return out, nil
}
func (f *fakeKernel) NewDest(s ipvs.ServiceKey, d ipvs.Dest) error {
	f.dests[s][d.DestKey] = d
	return nil
}
func (f *fakeKernel) SetDest(s ipvs.ServiceKey, d ipvs.Dest) error {
	f.dests[s][d.DestKey] = d
	return nil
}
func (f *fakeKernel) DelDest(s ipvs.ServiceKey, d ipvs.DestKey) error {
	delete(f.dests[s], d)
	return nil
}

var svcA = ipvs.ServiceKey{AF: ipvs.AFInet, Protocol: ipvs.ProtoTCP, Addr: netip.MustParseAddr("192.0.2.10"), Port: 80}

func rs(i int) ipvs.DestKey {
	return ipvs.DestKey{AF: ipvs.AFInet, Addr: netip.MustParseAddr(fmt.Sprintf("10.10.0.%d", i)), Port: 80}
}

// setup declares n real servers at weight 5 with a tcp check (rise 2, fall 3) in the kernel and the config.
func setup(n int, onFailure string) (*fakeKernel, Config, *State) {
	k := &fakeKernel{dests: map[ipvs.ServiceKey]map[ipvs.DestKey]ipvs.Dest{svcA: {}}}
	cfg := Config{Targets: map[Key]Target{}, Services: map[ipvs.ServiceKey]protocol.ServiceHealth{}}
	for i := 1; i <= n; i++ {
		d := ipvs.Dest{DestKey: rs(i), DestSettings: ipvs.DestSettings{Fwd: ipvs.FwdMasq, Weight: 5}}
		k.dests[svcA][d.DestKey] = d
		cfg.Targets[Key{Svc: svcA, Dest: d.DestKey}] = Target{Owner: "a/b/c", Declared: d,
			Check: protocol.HealthCheck{Type: "tcp", Port: 80, IntervalSeconds: 1, TimeoutSeconds: 0.5, Rise: 2, Fall: 3, OnFailure: onFailure}}
	}
	return k, cfg, NewState()
}

// probeAll feeds one result to every target (down: the ones failing) and applies the plan, as one pass does.
func probeAll(t *testing.T, k *fakeKernel, cfg Config, st *State, down map[int]bool) (map[Key]string, Outcome) {
	t.Helper()
	lines := map[Key]string{}
	for key, tg := range cfg.Targets {
		var err error
		if down[int(key.Dest.Addr.As4()[3])] {
			err = errors.New("connection refused")
		}
		if l := st.Observe(key, &tg.Check, err, time.Unix(0, 0)); l != "" {
			lines[key] = l
		}
	}
	out, err := Apply(k, svcA, cfg, st, Decide(svcA, cfg, st))
	if err != nil {
		t.Fatal(err)
	}
	return lines, out
}

func weight(k *fakeKernel, i int) int {
	d, ok := k.dests[svcA][rs(i)]
	if !ok {
		return -1
	}
	return int(d.Weight)
}

func TestQuiesceAfterFallRestoreAfterRise(t *testing.T) {
	k, cfg, st := setup(3, "quiesce")
	key := Key{Svc: svcA, Dest: rs(1)}
	for i := 1; i <= 2; i++ {
		probeAll(t, k, cfg, st, map[int]bool{1: true})
		if weight(k, 1) != 5 {
			t.Fatalf("depooled after %d failures, before fall 3", i)
		}
	}
	lines, out := probeAll(t, k, cfg, st, map[int]bool{1: true})
	if got := Name(key) + " " + lines[key] + "; " + out.Actions[key]; got != "tcp/192.0.2.10:80 → 10.10.0.1:80 down: connection refused (3 of 3 failed); quiesced, weight 5 → 0" {
		t.Fatalf("transition line %q", got)
	}
	if weight(k, 1) != 0 || !st.Dests[key].Depooled {
		t.Fatalf("weight %d after fall", weight(k, 1))
	}
	// An `up` puts the declared weight back while it is down: the next pass quiesces it again.
	k.dests[svcA][rs(1)] = cfg.Targets[key].Declared
	probeAll(t, k, cfg, st, map[int]bool{1: true})
	if weight(k, 1) != 0 {
		t.Fatal("an up re-pooled a down real server for good")
	}
	// A hand edit of a healthy server's weight is left alone (drift, the stack's business).
	d := k.dests[svcA][rs(2)]
	d.Weight = 9
	k.dests[svcA][rs(2)] = d
	probeAll(t, k, cfg, st, nil) // one success: not yet rise 2
	if weight(k, 1) != 0 || weight(k, 2) != 9 {
		t.Fatalf("after one success: weights %d, %d", weight(k, 1), weight(k, 2))
	}
	lines, out = probeAll(t, k, cfg, st, nil)
	if lines[key] != "up: tcp check passed (2 of 2)" || out.Actions[key] != "restored, weight 0 → 5" || weight(k, 1) != 5 {
		t.Fatalf("recovery: %q %q weight %d", lines[key], out.Actions[key], weight(k, 1))
	}
}

func TestRemoveAndReAdd(t *testing.T) {
	k, cfg, st := setup(2, "remove")
	for i := 0; i < 3; i++ {
		probeAll(t, k, cfg, st, map[int]bool{2: true})
	}
	if weight(k, 2) != -1 {
		t.Fatal("not removed after fall")
	}
	probeAll(t, k, cfg, st, nil)
	_, out := probeAll(t, k, cfg, st, nil)
	if weight(k, 2) != 5 || out.Actions[Key{Svc: svcA, Dest: rs(2)}] != "re-added at weight 5" {
		t.Fatalf("re-add: weight %d, %v", weight(k, 2), out.Actions)
	}
}

// minHealthy never depools below it and names the servers it keeps; the sorry server comes while none is healthy
// and goes when one is.
func TestMinHealthyAndSorryServer(t *testing.T) {
	k, cfg, st := setup(4, "quiesce")
	cfg.Services[svcA] = protocol.ServiceHealth{MinHealthy: &protocol.MinHealthy{Percent: 50, IsPercent: true},
		SorryServer: &protocol.SorryServer{Address: "10.10.0.99", Port: 80, Forwarding: "nat"}}
	all := map[int]bool{1: true, 2: true, 3: true, 4: true}
	var out Outcome
	for i := 0; i < 3; i++ {
		_, out = probeAll(t, k, cfg, st, all)
	}
	if weight(k, 1) != 0 || weight(k, 2) != 0 || weight(k, 3) != 5 || weight(k, 4) != 5 {
		t.Fatalf("weights %d %d %d %d: want 2 of 4 depooled, 2 kept", weight(k, 1), weight(k, 2), weight(k, 3), weight(k, 4))
	}
	text := strings.Join(out.Lines, "\n")
	for _, want := range []string{"kept pooled by minHealthy (2 of 4 must stay): 10.10.0.3:80, 10.10.0.4:80", "sorry server 10.10.0.99:80 added (weight 1)"} {
		if !strings.Contains(text, want) {
			t.Fatalf("lines %q lack %q", text, want)
		}
	}
	sorry := ipvs.DestKey{AF: ipvs.AFInet, Addr: netip.MustParseAddr("10.10.0.99"), Port: 80}
	if d, ok := k.dests[svcA][sorry]; !ok || d.Weight != 1 || d.Fwd != ipvs.FwdMasq {
		t.Fatalf("sorry server %+v", d)
	}
	// 3 recovers (rise 2): the sorry server goes; 4 stays kept, as 2 of 4 must stay pooled (3 and 4).
	probeAll(t, k, cfg, st, map[int]bool{1: true, 2: true, 4: true})
	_, out = probeAll(t, k, cfg, st, map[int]bool{1: true, 2: true, 4: true})
	if _, ok := k.dests[svcA][sorry]; ok {
		t.Fatal("the sorry server stayed with a healthy real server")
	}
	if weight(k, 3) != 5 || weight(k, 4) != 5 || st.Dests[Key{Svc: svcA, Dest: rs(4)}].Kept != true {
		t.Fatalf("after 3 recovered: %d %d kept %v", weight(k, 3), weight(k, 4), st.Dests[Key{Svc: svcA, Dest: rs(4)}].Kept)
	}
}

// Decisive names exactly the results that change a real server's health (the loop acts on those at once), by the
// rule users are told: fall failures in a row take a healthy one down, rise successes in a row bring it back; and
// Observe makes those transitions and no others.
func TestDecisiveNamesTheTransitions(t *testing.T) {
	key := Key{Svc: svcA, Dest: rs(1)}
	refused := errors.New("connection refused")
	for _, rf := range [][2]int{{1, 1}, {2, 3}, {3, 1}} {
		rise, fall := rf[0], rf[1]
		c := &protocol.HealthCheck{Type: "tcp", Port: 80, IntervalSeconds: 1, TimeoutSeconds: 0.5, Rise: rise, Fall: fall, OnFailure: "quiesce"}
		st := NewState()
		healthy, run := true, 0 // the rule's own count: results in a row against the current state
		for i, fail := range []bool{false, true, true, false, true, true, true, true, false, false, true, false, false, false, true} {
			var err error
			if fail {
				err = refused
			}
			if fail == healthy {
				run++
			} else {
				run = 0
			}
			flips := healthy && fail && run >= fall || !healthy && !fail && run >= rise
			if u := st.Decisive(key, c); u.Of(err) != flips {
				t.Fatalf("rise %d, fall %d, result %d (failed: %v): urgency %b, want it to name this result: %v", rise, fall, i, fail, u, flips)
			}
			if line := st.Observe(key, c, err, time.Now()); (line != "") != flips {
				t.Fatalf("rise %d, fall %d, result %d (failed: %v): transition %q, want one: %v", rise, fall, i, fail, line, flips)
			}
			if flips {
				healthy, run = !healthy, 0
			}
		}
	}
}
