package health

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ledger"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
)

// Key names one checked real server: its service and itself.
type Key = ledger.DestID

// Target is a checked real server as the ledger records it: the declared entry (whose weight the checker restores)
// and its check.
type Target struct {
	Owner    string
	Declared ipvs.Dest
	Check    protocol.HealthCheck
}

// Config is what the checker runs: every checked real server, and the health settings of their services.
type Config struct {
	Targets  map[Key]Target
	Services map[ipvs.ServiceKey]protocol.ServiceHealth
}

// ConfigOf reads the checker's configuration from the ledger: only real servers a stack declared a check for.
func ConfigOf(l *ledger.Ledger) Config {
	c := Config{Targets: map[Key]Target{}, Services: map[ipvs.ServiceKey]protocol.ServiceHealth{}}
	for _, s := range l.Stacks() {
		for id, rec := range s.Dests {
			if rec.HealthCheck == nil {
				continue
			}
			d, err := protocol.DestOf(id.Dest, rec.Dest)
			if err != nil {
				continue // a record this helper cannot turn into an entry is no target (boot reports it)
			}
			c.Targets[id] = Target{Owner: s.Owner, Declared: d, Check: *rec.HealthCheck}
		}
		for k, h := range s.Health {
			c.Services[k] = *h
		}
	}
	return c
}

// DestState is one checked real server's health, persisted across restarts (state.json).
type DestState struct {
	Healthy bool      `json:"healthy"`
	Since   time.Time `json:"since"`
	// Last is the last probe's result: "ok" or why it failed.
	Last string `json:"last"`
	// Depooled: the checker holds it out of the pool (weight 0, or removed), so it restores it on recovery.
	Depooled bool `json:"depooled"`
	// Kept: unhealthy but kept pooled by minHealthy.
	Kept bool `json:"kept,omitempty"`
	// Runs of consecutive results, toward rise and fall (not persisted: a restart counts afresh).
	oks, fails int
}

// State is every checked real server's health and the sorry servers the checker added.
type State struct {
	Dests map[Key]*DestState
	Sorry map[ipvs.ServiceKey]ipvs.DestKey
}

// NewState is an empty state.
func NewState() *State {
	return &State{Dests: map[Key]*DestState{}, Sorry: map[ipvs.ServiceKey]ipvs.DestKey{}}
}

// Name is how logs name a checked real server: "tcp/192.0.2.10:80 → 10.10.0.12:80".
func Name(k Key) string {
	return SvcName(k.Svc) + " → " + ipvs.HostPort(k.Dest.Addr, k.Dest.Port)
}

// SvcName is "tcp/192.0.2.10:80" or "fwmark/5".
func SvcName(k ipvs.ServiceKey) string {
	if k.IsFWMark() {
		return fmt.Sprintf("fwmark/%d", k.FWMark)
	}
	return ipvs.ProtocolName(k.Protocol) + "/" + ipvs.HostPort(k.Addr, k.Port)
}

// Decisive tells which result of k's next probe would change its health (Observe's rule): a failure (of a healthy
// real server with fall − 1 failures in a row), a success (of an unhealthy one with rise − 1 successes), or neither.
func (s *State) Decisive(k Key, c *protocol.HealthCheck) Urgency {
	if st := s.Dests[k]; st != nil {
		return st.decisive(c)
	}
	return (&DestState{Healthy: true}).decisive(c) // as Observe starts it
}

func (st *DestState) decisive(c *protocol.HealthCheck) Urgency {
	switch {
	case st.Healthy && st.fails+1 >= c.Fall:
		return UrgentFailure
	case !st.Healthy && st.oks+1 >= c.Rise:
		return UrgentSuccess
	}
	return 0
}

// Urgency names the results of a probe that change its real server's health, which the checker acts on at once.
type Urgency uint8

const (
	UrgentFailure Urgency = 1 << iota
	UrgentSuccess
)

// Of tells whether a probe's result (err) is one u names.
func (u Urgency) Of(err error) bool {
	if err != nil {
		return u&UrgentFailure != 0
	}
	return u&UrgentSuccess != 0
}

// Observe counts one probe's result; it returns the transition line ("down: connection refused (3 of 3 failed)")
// when the real server changes state, else "". A real server not seen before starts healthy (as keepalived's
// default): one that is down is depooled after fall failures.
func (s *State) Observe(k Key, c *protocol.HealthCheck, err error, now time.Time) string {
	st := s.Dests[k]
	if st == nil {
		st = &DestState{Healthy: true, Since: now}
		s.Dests[k] = st
	}
	flips := st.decisive(c).Of(err)
	if err == nil {
		st.Last, st.oks, st.fails = "ok", st.oks+1, 0
		if flips {
			st.Healthy, st.Since = true, now
			return fmt.Sprintf("up: %s check passed (%d of %d)", c.Type, st.oks, c.Rise)
		}
		return ""
	}
	st.Last, st.fails, st.oks = err.Error(), st.fails+1, 0
	if flips {
		st.Healthy, st.Since = false, now
		return fmt.Sprintf("down: %s (%d of %d failed)", err, st.fails, c.Fall)
	}
	return ""
}

// Forget drops the state of real servers no longer checked.
func (s *State) Forget(cfg Config) {
	for k := range s.Dests {
		if _, ok := cfg.Targets[k]; !ok {
			delete(s.Dests, k)
		}
	}
}

// Plan is what one service should look like: the checked real servers to hold out of the pool, the unhealthy ones
// minHealthy keeps, and whether the sorry server is wanted.
type Plan struct {
	Depool map[ipvs.DestKey]bool
	Kept   []ipvs.DestKey
	Min    int // real servers minHealthy keeps pooled
	Sorry  bool
}

// Decide plans one service from its targets' health: unhealthy ones are depooled, except that the service keeps at
// least minHealthy pooled (those already depooled stay so first, then in address order, so the choice is stable);
// the sorry server is wanted while none is healthy.
func Decide(svc ipvs.ServiceKey, cfg Config, st *State) Plan {
	var keys []ipvs.DestKey
	for k := range cfg.Targets {
		if k.Svc == svc {
			keys = append(keys, k.Dest)
		}
	}
	slices.SortFunc(keys, func(a, b ipvs.DestKey) int {
		da, db := st.Dests[Key{Svc: svc, Dest: a}], st.Dests[Key{Svc: svc, Dest: b}]
		if da != nil && db != nil && da.Depooled != db.Depooled {
			if da.Depooled {
				return -1
			}
			return 1
		}
		if c := a.Addr.Compare(b.Addr); c != 0 {
			return c
		}
		return int(a.Port) - int(b.Port)
	})
	h := cfg.Services[svc]
	p := Plan{Depool: map[ipvs.DestKey]bool{}}
	if h.MinHealthy != nil {
		p.Min = h.MinHealthy.Of(len(keys))
	}
	pooled, healthy := len(keys), 0
	for _, d := range keys {
		ds := st.Dests[Key{Svc: svc, Dest: d}]
		if ds == nil || ds.Healthy {
			healthy++
			continue
		}
		if pooled-1 >= p.Min {
			p.Depool[d] = true
			pooled--
		} else {
			p.Kept = append(p.Kept, d)
		}
	}
	p.Sorry = h.SorryServer != nil && healthy == 0 && len(keys) > 0
	return p
}

// keptLine names the servers minHealthy keeps: "kept pooled by minHealthy 2 of 3: 10.0.0.1:80, 10.0.0.2:80".
func keptLine(p Plan, total int) string {
	names := make([]string, len(p.Kept))
	for i, d := range p.Kept {
		names[i] = ipvs.HostPort(d.Addr, d.Port)
	}
	return fmt.Sprintf("kept pooled by minHealthy (%d of %d must stay): %s", p.Min, total, strings.Join(names, ", "))
}

// addrOf is a target's address to probe: the real server's own (the VIP cannot be probed from the director).
func addrOf(k Key) netip.Addr { return k.Dest.Addr }

// Report is a checked real server's health for read-back: nil when no stack declared a check for it. removed: the
// checker took it out of the kernel (onFailure remove) and it is not there.
func Report(cfg Config, st *State, k Key) *protocol.DestHealthOut {
	t, ok := cfg.Targets[k]
	if !ok {
		return nil
	}
	out := &protocol.DestHealthOut{State: "unknown", DeclaredWeight: t.Declared.Weight, Check: t.Check.Type}
	if ds := st.Dests[k]; ds != nil {
		out.State = "unhealthy"
		if ds.Healthy {
			out.State = "healthy"
		}
		out.Since, out.Last, out.Depooled, out.Kept = ds.Since.UTC().Format(time.RFC3339), ds.Last, ds.Depooled, ds.Kept
		out.Removed = ds.Depooled && t.Check.OnFailure == "remove"
	}
	return out
}
