package health

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ledger"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
)

// StateDir is where the checker keeps its state (state.json) across restarts; its systemd unit may write only here.
const StateDir = ledger.HealthStateDir

// Runner is the long-running checker. Its seams (the ledger, the kernel, the prober, the clock) let tests run it
// against fakes; `ipvs-helper health` wires the real ones.
type Runner struct {
	Kernel Kernel
	// Ledger opens the ledger under its lock (ledger.Open): every change to the kernel is made holding it, so the
	// checker never races an `up`; prev is the last one opened, refreshed cheaply.
	Ledger func(deadline time.Time, prev *ledger.Ledger) (*ledger.Ledger, error)
	Probe  func(ctx context.Context, addr netip.Addr, c *protocol.HealthCheck) error
	// Reactor, when not nil, opens the prober that runs the checks it takes on one event loop (NewReactor: tcp and
	// plain http, on Linux), started from the loop itself; the others go to Probe, each on a worker goroutine. Run
	// closes it when it returns. One that cannot be opened leaves every check to Probe.
	Reactor func() (Reactor, error)
	// Observed, when not nil, is told each probe's result as the loop takes it (BenchmarkRunner counts them).
	Observed func(key Key, err error)
	// Watch, when not nil, watches the ledger's stacks directory (ledger.Watch): its channel receives a value after
	// changes and is closed when the watch is lost or ctx ends. While a watch is alive the ledger is re-read on its
	// events and every Resync rather than every Reload; without one (nil, or it cannot start yet) every Reload.
	Watch func(ctx context.Context) (<-chan struct{}, error)
	Now   func() time.Time
	Log   func(line string)
	// StatePath is state.json; MetricsDir, when not "", receives Prometheus textfile metrics (ipvs_health.prom).
	StatePath  string
	MetricsDir string
	// Reload is how often a service with something to reconcile (busy) is reconciled, and the ledger re-read while
	// no watch is alive; with a watch, the ledger is re-read at the first tick after its event that is a Reload
	// past the last pass, so an `up` takes effect within a Reload and a tick either way. Resync is how often a
	// watched ledger is re-read anyway. LockWait bounds a wait for the ledger lock (a re-read that cannot get it is
	// tried again a Reload later, a transition to reconcile at the next tick).
	Reload   time.Duration
	Resync   time.Duration
	LockWait time.Duration
	// MaxProbes bounds the probes in flight (and so the sockets open).
	MaxProbes int

	cfg Config
	// stacks are the ledger's stacks cfg was read from: a reload whose ledger re-read none (the same objects) keeps
	// cfg rather than rebuilding it, every second, for thousands of real servers.
	stacks []*ledger.Stack
	st     *State
	led    *ledger.Ledger
	// slots are the targets' places in the schedule, and due their next probes' times in a heap, soonest first, so
	// that a tick looks only at the probes due rather than at every target, and a probe costs no map look-up to
	// start. An entry of due whose time is not its slot's next (removed or rescheduled since) is dropped when it
	// comes up. inflight counts the probes running.
	slots    map[Key]*slot
	due      dueHeap
	inflight int
	pending  map[Key]string // transitions not yet logged with what was done about them
	// said is what the last pass logged about each service (minHealthy's kept servers, errors): a line is logged
	// again only after a pass without it, not every second.
	said    map[ipvs.ServiceKey]map[string]bool
	results chan result
	// rx is the open Reactor (nil: none), taken what its last batch was taken into, to be reused.
	rx    Reactor
	taken []result
	// jobs feed the workers (one per probe on them at the busiest, never more than MaxProbes); working is the
	// probes on them now (the reactor's are not).
	jobs    chan job
	workers int
	working int
	// changes is the live watch's (nil: none); watchSaid is the last failure to watch logged (logged once).
	changes   <-chan struct{}
	watchSaid string
	// rereadAt is when the ledger is next re-read; passed is when the last pass began, woke when the last wake did;
	// busyLeft: the last pass left a busy service, to be reconciled again a Reload later.
	rereadAt time.Time
	passed   time.Time
	woke     time.Time
	busyLeft bool
	// dirty: a probe's result differs from the last one saved, without a transition (a healthy server's first "ok",
	// another reason to fail). Read-back reports state.json's "last", so the next pass saves it: at most once per
	// reload, and never in a steady state, where results repeat.
	dirty bool
}

type result struct {
	key Key
	err error
}

// Reactor runs probes without a goroutine each. Start starts one, or fails it at once (no socket, refused); the
// results of the others are handed over in batches: Ready receives a value when some are there, Urgent when one of
// them is a result its probe's urgency named (it changes a real server's health), and Take takes them all (and
// keeps spare to gather the next ones in). Close ends the probes in flight, with no result.
type Reactor interface {
	Takes(checkType string) bool
	Start(key Key, c protocol.HealthCheck, u Urgency) error
	Ready() <-chan struct{}
	Urgent() <-chan struct{}
	Take(spare []result) []result
	Close() error
}

// tick is the checker's shortest sleep: the probes due within one start together, so that the checker wakes for
// them at most five times a second, whatever their number. A wake cost a small director more than the probe it
// started: on the lab's emulated CPU, 200 ms rather than 50 ms cut the CPU per probe by 9–28 % (20 and 200 real
// servers, BenchmarkRunner). A probe starts up to a tick late, well within a check's timing (intervals ≥ 1 s).
const tick = 200 * time.Millisecond

// Run checks until ctx ends. The kernel is left as it is when it returns: fail static.
func (r *Runner) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the watch
	r.st = r.loadState()
	r.slots, r.due, r.inflight = map[Key]*slot{}, nil, 0
	r.pending, r.said = map[Key]string{}, map[ipvs.ServiceKey]map[string]bool{}
	r.results = make(chan result, r.MaxProbes)
	r.jobs = make(chan job, r.MaxProbes)
	r.workers, r.working = 0, 0
	defer close(r.jobs) // the workers end with their last probe
	r.changes, r.watchSaid = nil, ""
	var ready, urgent <-chan struct{} // the reactor's (nil: none)
	r.rx = nil
	if r.Reactor != nil {
		rx, err := r.Reactor()
		if err != nil {
			r.Log("probing every check on a goroutine: " + err.Error())
		} else {
			r.rx, ready, urgent = rx, rx.Ready(), rx.Urgent()
			defer rx.Close() // every probe's socket, and its epoll set
		}
	}
	r.watch(ctx)
	r.pass(true)
	wake := time.NewTimer(tick)
	defer wake.Stop()
	wakeAt := r.Now().Add(tick)
	sooner := func() { // wakes the loop sooner when it now has something due sooner
		if d := r.sleep(); wakeAt.After(r.Now().Add(d)) {
			wake.Reset(d)
			wakeAt = r.Now().Add(d)
		}
	}
	for {
		// The reactor's results are taken at the next wake when it comes within a tick: a wake cost a small director
		// more than the probes it took. Only a loop asleep for longer wakes for them, a tick later; and an urgent
		// one (a transition) is taken at once.
		var reacted <-chan struct{}
		if wakeAt.After(r.Now().Add(tick)) {
			reacted = ready
		}
		select {
		case <-ctx.Done():
			r.saveState()
			return nil
		case res := <-r.results:
			r.working--
			r.observe(res)
			sooner() // a transition is reconciled and logged at once (see sleep)
		case <-urgent:
			r.take(ready)
			sooner()
		case <-reacted:
			if at := r.Now().Add(tick); wakeAt.After(at) {
				wake.Reset(tick)
				wakeAt = at
			}
		case _, alive := <-r.changes:
			if !alive {
				r.changes = nil
				r.Log("the watch of the ledger was lost; re-reading it every " + r.Reload.String() + " until it is watched again")
			}
			// Re-read at the next tick (the rest of a burst comes first), and no sooner than a Reload after the last
			// pass: the requests of an `up`, each a burst of changes, cost no more passes (nor metrics writes) than
			// the re-read every Reload did, and still take effect within one.
			at := r.passed.Add(r.Reload)
			if now := r.Now(); at.Before(now) {
				at = now
			}
			if at.Before(r.rereadAt) {
				r.rereadAt = at
			}
			sooner()
		case <-wake.C:
			r.woke = r.Now()
			r.take(ready)
			if r.schedule(ctx) {
				r.take(ready) // the urgent result schedule stopped for: its transition is reconciled below
			}
			now := r.Now()
			reread := !now.Before(r.rereadAt)
			if reread || len(r.pending) > 0 || (r.busyLeft || r.dirty) && now.Sub(r.passed) >= r.Reload {
				if reread {
					r.watch(ctx) // started before the re-read, so that no change falls between them
				}
				r.pass(reread)
			}
			d := r.sleep()
			wake.Reset(d)
			wakeAt = r.Now().Add(d)
		}
	}
}

// watch starts a watch of the ledger when none is alive. Until one starts (no inotify, no stacks directory yet) the
// ledger is re-read every Reload and a watch tried again at each of those re-reads; a failure is logged once.
func (r *Runner) watch(ctx context.Context) {
	if r.Watch == nil || r.changes != nil {
		return
	}
	ch, err := r.Watch(ctx)
	if err != nil {
		if msg := err.Error(); msg != r.watchSaid {
			r.Log("not watching the ledger (" + msg + "): re-reading it every " + r.Reload.String())
			r.watchSaid = msg
		}
		return
	}
	r.changes, r.watchSaid = ch, ""
	r.Log("watching the ledger: re-reading it on its changes and every " + r.resync().String())
}

// resync is how often a watched ledger is re-read anyway (never more often than an unwatched one).
func (r *Runner) resync() time.Duration { return max(r.Resync, r.Reload) }

// sleep is how long the loop may sleep: until the next probe is due, the next re-read, the next pass for a busy
// service or, with probes waiting for a free slot, one tick; never until less than a tick after the last wake
// began. A checker with few checks no longer wakes every tick to find nothing due; one whose wake took a tick or
// more (a starved director, starting a second's probes) goes on at once with the probes due meanwhile, rather than
// sleeping a tick more and starting them later still. A transition is acted on at once, but by at most one pass a
// tick (a pass takes the ledger lock and reads the kernel): when a hundred real servers fail together, their
// transitions are reconciled together.
func (r *Runner) sleep() time.Duration {
	now := r.Now()
	next := r.rereadAt
	if again := r.passed.Add(r.Reload); (r.busyLeft || r.dirty) && again.Before(next) {
		next = again
	}
	if r.inflight >= r.MaxProbes {
		next = now
	}
	if len(r.due) > 0 && r.due[0].at.Before(next) {
		next = r.due[0].at
	}
	d := max(next.Sub(now), r.woke.Add(tick).Sub(now), 0)
	if len(r.pending) > 0 {
		d = min(d, max(r.passed.Add(tick).Sub(now), 0))
	}
	return d
}

// take observes the results the reactor has ready (none: no reactor), ready's value too.
func (r *Runner) take(ready <-chan struct{}) {
	if r.rx == nil {
		return
	}
	select {
	case <-ready: // taken now
	default:
	}
	r.taken = r.rx.Take(r.taken)
	for _, res := range r.taken {
		r.observe(res)
	}
}

// job is one probe for a worker.
type job struct {
	key   Key
	check protocol.HealthCheck
}

// worker runs probes until jobs is closed. Workers are started as the probes in flight need them (at most
// MaxProbes) and then kept: a goroutine per probe cost a start and a stack grown anew each time.
func (r *Runner) worker(ctx context.Context, jobs <-chan job) {
	for j := range jobs {
		r.results <- result{j.key, r.Probe(ctx, addrOf(j.key), &j.check)}
	}
}

func (r *Runner) observe(res result) {
	r.inflight--
	if r.Observed != nil {
		r.Observed(res.key, res.err)
	}
	s := r.slots[res.key]
	if s == nil {
		return // not one of this run's probes
	}
	s.inflight = false
	if s.gone {
		delete(r.slots, res.key) // its check was removed while it ran
		return
	}
	ds := r.st.Dests[res.key]
	var before string
	if ds != nil {
		before = ds.Last
	}
	if line := r.st.Observe(res.key, &s.check, res.err, r.Now()); line != "" {
		r.pending[res.key] = line
	}
	r.dirty = r.dirty || ds == nil || ds.Last != before // a first result is always news
}

// schedule starts the probes that are due (at most MaxProbes in flight; a target whose last probe still runs
// waits for it and goes next). It stops early, true, when the reactor tells of an urgent result: on a starved
// director, starting a second's probes took a second (each connect runs the handshake in the kernel), and a
// transition waited for all of them.
func (r *Runner) schedule(ctx context.Context) (urgent bool) {
	now := r.Now()
	var busy []dueEntry
	defer func() {
		for _, e := range busy {
			r.due.push(e)
		}
	}()
	for started := 1; len(r.due) > 0 && !r.due[0].at.After(now) && r.inflight < r.MaxProbes; started++ {
		if r.rx != nil && started%16 == 0 {
			select {
			case <-r.rx.Urgent():
				return true
			default:
			}
		}
		e := r.due.pop()
		s := e.slot
		if s.gone || !s.next.Equal(e.at) {
			continue // removed or rescheduled since
		}
		if s.inflight {
			busy = append(busy, e)
			continue
		}
		interval := time.Duration(s.check.IntervalSeconds * float64(time.Second))
		next := e.at
		for !now.Before(next) {
			next = next.Add(interval)
		}
		s.next, s.inflight = next, true
		r.inflight++
		r.due.push(dueEntry{next, s})
		if r.rx != nil && r.rx.Takes(s.check.Type) {
			if err := r.rx.Start(s.key, s.check, r.st.Decisive(s.key, &s.check)); err != nil {
				r.observe(result{s.key, err})
			}
			continue
		}
		if r.working++; r.workers < r.working {
			r.workers++
			go r.worker(ctx, r.jobs)
		}
		r.jobs <- job{s.key, s.check}
	}
	return false
}

// slot is a checked real server's place in the schedule.
type slot struct {
	key   Key
	check protocol.HealthCheck
	// next is when its next probe is due (zero: to be planned); inflight, that its last probe still runs; gone,
	// that its check was removed (the slot is kept until that probe's result comes, so that a check added back
	// meanwhile still waits for it).
	next     time.Time
	inflight bool
	gone     bool
}

// plan gives each target a slot, with its check as configured, and each slot without a due time its first one,
// spreading each target's probes over its interval by a fixed offset (a hash of its key), so that a thousand
// checks every 2 s do not all fire at once.
func (r *Runner) plan() {
	now := r.Now()
	for key, t := range r.cfg.Targets {
		s := r.slots[key]
		if s == nil {
			s = &slot{key: key}
			r.slots[key] = s
		}
		s.check, s.gone = t.Check, false
		if !s.next.IsZero() {
			continue
		}
		interval := time.Duration(t.Check.IntervalSeconds * float64(time.Second))
		h := fnv.New64a()
		fmt.Fprint(h, key)
		s.next = now.Add(time.Duration(h.Sum64() % uint64(interval)))
		r.due.push(dueEntry{s.next, s})
	}
}

type dueEntry struct {
	at   time.Time
	slot *slot
}

// dueHeap is a min-heap of due times. Not container/heap's: its interface boxes each entry pushed or popped, two
// allocations on every probe.
type dueHeap []dueEntry

func (h *dueHeap) push(e dueEntry) {
	s := append(*h, e)
	for i := len(s) - 1; i > 0; {
		up := (i - 1) / 2
		if !s[i].at.Before(s[up].at) {
			break
		}
		s[i], s[up] = s[up], s[i]
		i = up
	}
	*h = s
}

// pop takes the soonest entry (h not empty).
func (h *dueHeap) pop() dueEntry {
	s := *h
	top, n := s[0], len(s)-1
	s[0] = s[n]
	s = s[:n]
	for i := 0; ; {
		c := 2*i + 1
		if c >= n {
			break
		}
		if c+1 < n && s[c+1].at.Before(s[c].at) {
			c++
		}
		if !s[c].at.Before(s[i].at) {
			break
		}
		s[i], s[c] = s[c], s[i]
		i = c
	}
	*h = s
	return top
}

// pass takes the ledger lock, re-reads the configuration when reread (keeping the state of real servers still
// checked), reconciles every busy service with the kernel, logs what changed and persists the state.
func (r *Runner) pass(reread bool) {
	r.passed = r.Now()
	l, err := r.Ledger(r.passed.Add(r.LockWait), r.led)
	if err != nil {
		r.led = nil
		r.Log("cannot take the ledger lock, retrying: " + err.Error())
		if reread {
			r.rereadAt = r.Now().Add(r.Reload) // retried at the next reload, not at every tick
		}
		return
	}
	defer l.Close()
	r.led = l
	if stacks := l.Stacks(); reread && (r.cfg.Targets == nil || !slices.Equal(stacks, r.stacks)) {
		cfg := ConfigOf(l)
		for k, t := range r.cfg.Targets {
			if _, ok := cfg.Targets[k]; !ok && l.UnreadableStack(t.Owner) {
				cfg.Targets[k] = t // its stack file is broken for now: carry on with what it said last
				if h, had := r.cfg.Services[k.Svc]; had {
					cfg.Services[k.Svc] = h
				}
			}
		}
		r.setConfig(cfg)
		r.stacks = stacks
	}
	if reread {
		r.rereadAt = r.Now().Add(r.Reload)
		if r.changes != nil {
			r.rereadAt = r.Now().Add(r.resync())
		}
	}
	changed := false
	busy := r.busy()
	for _, svc := range r.services() {
		if !busy[svc] {
			delete(r.said, svc) // a pass that logged nothing about it
			continue
		}
		out, err := Apply(r.Kernel, svc, r.cfg, r.st, Decide(svc, r.cfg, r.st))
		changed = changed || out.Changed
		logged := map[Key]bool{}
		for key, line := range r.pending {
			if key.Svc != svc {
				continue
			}
			logged[key] = true
			if act := out.Actions[key]; act != "" {
				line += "; " + act
			} else if ds := r.st.Dests[key]; ds != nil && ds.Kept {
				line += "; kept pooled (minHealthy)"
			}
			r.Log(Name(key) + " " + line)
			delete(r.pending, key)
			changed = true
		}
		for key, act := range out.Actions {
			if !logged[key] {
				r.Log(Name(key) + " " + act) // an `up` had put a depooled server back, or it came back while kept
			}
		}
		lines := out.Lines
		if err != nil {
			lines = append(lines, err.Error())
			if _, checked := r.cfg.Services[svc]; !checked && !r.hasTargets(svc) {
				delete(r.st.Sorry, svc) // the service is gone and so is its configuration
				changed = true
			}
		}
		said := map[string]bool{}
		for _, line := range lines {
			if !r.said[svc][line] {
				r.Log(line)
			}
			said[line] = true
		}
		r.said[svc] = said
	}
	for key, line := range r.pending {
		r.Log(Name(key) + " " + line) // its service was not reconciled (no longer checked)
		delete(r.pending, key)
	}
	if changed || r.dirty {
		r.saveState()
		r.dirty = false
	}
	r.busyLeft = len(r.busy()) > 0
	if r.MetricsDir != "" {
		if err := r.writeMetrics(); err != nil {
			r.Log("writing metrics: " + err.Error())
		}
	}
}

// busy are the services a pass has something to do for: one with a checked real server that is unhealthy, held
// out of the pool or kept by minHealthy, one whose sorry server is in, or one with a transition to log. For every
// other service Apply would read the kernel's table only to change nothing (a healthy real server the checker did
// not depool is never touched; a service with no unhealthy server wants no sorry server), so the pass leaves it
// out: with thousands of healthy real servers, those reads every second were most of the checker's work besides the
// probes themselves.
func (r *Runner) busy() map[ipvs.ServiceKey]bool {
	busy := map[ipvs.ServiceKey]bool{}
	for key := range r.cfg.Targets {
		if ds := r.st.Dests[key]; ds != nil && (!ds.Healthy || ds.Depooled || ds.Kept) {
			busy[key.Svc] = true
		}
	}
	for svc := range r.st.Sorry {
		busy[svc] = true
	}
	for key := range r.pending {
		busy[key.Svc] = true
	}
	return busy
}

func (r *Runner) hasTargets(svc ipvs.ServiceKey) bool {
	for k := range r.cfg.Targets {
		if k.Svc == svc {
			return true
		}
	}
	return false
}

// setConfig switches to a new configuration within one interval, without losing the up/down state: a check whose
// interval changed is rescheduled, a real server no longer checked is forgotten (and not restored: its stack took
// it over again, or deleted it).
func (r *Runner) setConfig(cfg Config) {
	for key, s := range r.slots {
		n, ok := cfg.Targets[key]
		switch {
		case !ok:
			s.gone, s.next = true, time.Time{}
			if !s.inflight {
				delete(r.slots, key)
			}
		case n.Check.IntervalSeconds != s.check.IntervalSeconds:
			s.next = time.Time{} // planned anew
		}
	}
	r.cfg = cfg
	r.st.Forget(cfg)
	r.plan()
}

// services are the services to reconcile: those with checked real servers, and those holding a sorry server the
// checker added.
func (r *Runner) services() []ipvs.ServiceKey {
	set := map[ipvs.ServiceKey]bool{}
	for k := range r.cfg.Targets {
		set[k.Svc] = true
	}
	for k := range r.st.Sorry {
		set[k] = true
	}
	out := make([]ipvs.ServiceKey, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return SvcName(out[i]) < SvcName(out[j]) })
	return out
}

// stateFile is state.json: per checked real server its health, and the sorry servers added.
type stateFile struct {
	V     int              `json:"v"`
	Dests []stateDestEntry `json:"dests"`
	Sorry []stateSorry     `json:"sorry"`
}

type stateDestEntry struct {
	Service protocol.ServiceKeyOut `json:"service"`
	Address string                 `json:"address"`
	Port    uint16                 `json:"port"`
	DestState
}

type stateSorry struct {
	Service protocol.ServiceKeyOut `json:"service"`
	Address string                 `json:"address"`
	Port    uint16                 `json:"port"`
}

// loadState reads state.json; a missing one starts afresh, an unreadable one too (logged): every real server
// healthy, as at a first start.
func (r *Runner) loadState() *State {
	st, err := ReadState(r.StatePath)
	if err != nil {
		r.Log(err.Error() + "; starting afresh")
		return NewState()
	}
	return st
}

// ReadState reads a checker's state file (read-back reports it): a missing file is an empty state.
func ReadState(path string) (*State, error) {
	st := NewState()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	var f stateFile
	if err == nil {
		err = json.Unmarshal(b, &f)
	}
	if err != nil {
		return st, fmt.Errorf("the health state file %s cannot be read: %v", path, err)
	}
	for _, e := range f.Dests {
		svc, perr := protocol.ServiceKeyOf(e.Service)
		dk, derr := protocol.DestKeyOf(e.Address, e.Port)
		if perr != nil || derr != nil {
			continue
		}
		ds := e.DestState
		st.Dests[Key{Svc: svc, Dest: dk}] = &ds
	}
	for _, s := range f.Sorry {
		svc, perr := protocol.ServiceKeyOf(s.Service)
		dk, derr := protocol.DestKeyOf(s.Address, s.Port)
		if perr == nil && derr == nil {
			st.Sorry[svc] = dk
		}
	}
	return st, nil
}

func (r *Runner) saveState() {
	f := stateFile{V: 1, Dests: []stateDestEntry{}, Sorry: []stateSorry{}}
	// In the order of their names, each name made once: this runs on every change, over thousands of real servers.
	keys := make([]Key, 0, len(r.st.Dests))
	names := make(map[Key]string, len(r.st.Dests))
	for k := range r.st.Dests {
		keys = append(keys, k)
		names[k] = Name(k)
	}
	sort.Slice(keys, func(i, j int) bool { return names[keys[i]] < names[keys[j]] })
	for _, k := range keys {
		f.Dests = append(f.Dests, stateDestEntry{Service: protocol.ServiceKeyJSON(k.Svc), Address: k.Dest.Addr.String(), Port: k.Dest.Port, DestState: *r.st.Dests[k]})
	}
	for svc, d := range r.st.Sorry {
		f.Sorry = append(f.Sorry, stateSorry{Service: protocol.ServiceKeyJSON(svc), Address: d.Addr.String(), Port: d.Port})
	}
	b, _ := json.MarshalIndent(f, "", " ")
	if err := writeFile(r.StatePath, append(b, '\n')); err != nil {
		r.Log("saving the state failed (it is kept in memory): " + err.Error())
	}
}

// writeFile replaces path whole (temp file, fsync, rename), so a reader or a crash never sees half of it.
func writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// writeMetrics writes node_exporter's textfile-collector format: per checked real server whether it is healthy,
// depooled and kept by minHealthy, and whether each service's sorry server is in. It runs at each pass: a change of
// these values always comes with one (a transition is logged by a pass at once, or a tick after the last one), but with nothing to do the
// passes, and so the last pass's timestamp, come only every Resync: an alert on a stale checker must allow more.
func (r *Runner) writeMetrics() error {
	var b strings.Builder
	b.WriteString("# HELP ipvs_health_up Whether the checked real server passes its health check (1) or not (0).\n# TYPE ipvs_health_up gauge\n")
	lines := func(name string, val func(*DestState) bool) {
		var rows []string
		for k, ds := range r.st.Dests {
			v := 0
			if val(ds) {
				v = 1
			}
			rows = append(rows, fmt.Sprintf("%s{service=%q,real_server=%q,stack=%q} %d\n", name, SvcName(k.Svc),
				ipvs.HostPort(k.Dest.Addr, k.Dest.Port), r.cfg.Targets[k].Owner, v))
		}
		sort.Strings(rows)
		b.WriteString(strings.Join(rows, ""))
	}
	lines("ipvs_health_up", func(d *DestState) bool { return d.Healthy })
	b.WriteString("# HELP ipvs_health_depooled Whether the checker holds the real server out of the pool (weight 0 or removed).\n# TYPE ipvs_health_depooled gauge\n")
	lines("ipvs_health_depooled", func(d *DestState) bool { return d.Depooled })
	b.WriteString("# HELP ipvs_health_kept Whether minHealthy keeps the unhealthy real server pooled.\n# TYPE ipvs_health_kept gauge\n")
	lines("ipvs_health_kept", func(d *DestState) bool { return d.Kept })
	b.WriteString("# HELP ipvs_health_sorry_server Whether the service's sorry server is in (no real server healthy).\n# TYPE ipvs_health_sorry_server gauge\n")
	var rows []string
	for svc := range r.cfg.Services {
		v := 0
		if _, in := r.st.Sorry[svc]; in {
			v = 1
		}
		rows = append(rows, fmt.Sprintf("ipvs_health_sorry_server{service=%q} %d\n", SvcName(svc), v))
	}
	sort.Strings(rows)
	b.WriteString(strings.Join(rows, ""))
	fmt.Fprintf(&b, "# HELP ipvs_health_last_pass_timestamp_seconds When the checker last took the ledger lock to re-read it or reconcile the kernel: at least every %s while it runs.\n# TYPE ipvs_health_last_pass_timestamp_seconds gauge\nipvs_health_last_pass_timestamp_seconds %d\n", r.resync(), r.Now().Unix())
	return writeFile(filepath.Join(r.MetricsDir, "ipvs_health.prom"), []byte(b.String()))
}
