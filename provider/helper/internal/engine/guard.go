package engine

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/managers"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/netif"
)

// A request that runs past its deadline is answered by the watchdog while the engine's goroutine is stuck, and the
// helper exits. Ops that finished before have changed the kernel and their ledger records are in memory only, so the
// watchdog saves them first (saveSettled): otherwise boot would not restore them and another stack could adopt them.
//
// The guard makes that safe: the engine's goroutine holds it while it runs a request and gives it up only while it
// waits where it may hang — a kernel call, a call on the interfaces, a modprobe, the scan for other managers.
// Between two such waits the ledger and the settled results agree, so whoever holds the guard may save the ledger.
// The watchdog keeps it once taken: the engine's goroutine then stops at its next step and never touches the ledger
// again.

// guard is a mutex that can be waited for with a deadline.
type guard chan struct{}

func newGuard() guard { return make(guard, 1) }

func (g guard) hold()    { g <- struct{}{} }
func (g guard) release() { <-g }

// holdWithin takes the guard unless that takes longer than d.
func (g guard) holdWithin(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case g <- struct{}{}:
		return true
	case <-t.C:
		return false
	}
}

// waiting runs fn, which may block, with the guard given up.
func (e *Engine) waiting(fn func()) {
	e.guard.release()
	defer e.guard.hold()
	fn()
}

// guardedKernel gives up the engine's guard for each kernel call.
type guardedKernel struct {
	k Kernel
	e *Engine
}

func wait1[T any](e *Engine, fn func() T) (out T) {
	e.waiting(func() { out = fn() })
	return out
}

func wait2[T any](e *Engine, fn func() (T, error)) (out T, err error) {
	e.waiting(func() { out, err = fn() })
	return out, err
}

func (g guardedKernel) NewService(s ipvs.Service) error {
	return wait1(g.e, func() error { return g.k.NewService(s) })
}
func (g guardedKernel) SetService(s ipvs.Service) error {
	return wait1(g.e, func() error { return g.k.SetService(s) })
}
func (g guardedKernel) DelService(k ipvs.ServiceKey) error {
	return wait1(g.e, func() error { return g.k.DelService(k) })
}
func (g guardedKernel) GetService(k ipvs.ServiceKey) (s ipvs.Service, ok bool, err error) {
	g.e.waiting(func() { s, ok, err = g.k.GetService(k) })
	return s, ok, err
}
func (g guardedKernel) Services() ([]ipvs.Service, error) { return wait2(g.e, g.k.Services) }
func (g guardedKernel) Dests(k ipvs.ServiceKey) ([]ipvs.Dest, error) {
	return wait2(g.e, func() ([]ipvs.Dest, error) { return g.k.Dests(k) })
}
func (g guardedKernel) NewDest(k ipvs.ServiceKey, d ipvs.Dest) error {
	return wait1(g.e, func() error { return g.k.NewDest(k, d) })
}
func (g guardedKernel) SetDest(k ipvs.ServiceKey, d ipvs.Dest) error {
	return wait1(g.e, func() error { return g.k.SetDest(k, d) })
}
func (g guardedKernel) DelDest(k ipvs.ServiceKey, d ipvs.DestKey) error {
	return wait1(g.e, func() error { return g.k.DelDest(k, d) })
}
func (g guardedKernel) Daemons() ([]ipvs.Daemon, error) { return wait2(g.e, g.k.Daemons) }
func (g guardedKernel) NewDaemon(d ipvs.Daemon) error {
	return wait1(g.e, func() error { return g.k.NewDaemon(d) })
}
func (g guardedKernel) DelDaemon(state uint32) error {
	return wait1(g.e, func() error { return g.k.DelDaemon(state) })
}
func (g guardedKernel) Timeouts() (ipvs.Timeouts, error) { return wait2(g.e, g.k.Timeouts) }
func (g guardedKernel) SetTimeouts(t ipvs.Timeouts) error {
	return wait1(g.e, func() error { return g.k.SetTimeouts(t) })
}
func (g guardedKernel) Info() (ipvs.Info, error) { return wait2(g.e, g.k.Info) }
func (g guardedKernel) Zero(k *ipvs.ServiceKey) error {
	return wait1(g.e, func() error { return g.k.Zero(k) })
}
func (g guardedKernel) Flush() error { return wait1(g.e, g.k.Flush) }
func (g guardedKernel) Pipeline(ws []ipvs.Write) []error {
	return wait1(g.e, func() []error { return g.k.Pipeline(ws) })
}

// guardedNet gives up the engine's guard for each call on the director's interfaces.
type guardedNet struct {
	n netif.Net
	e *Engine
}

func (g guardedNet) Addrs(name string) (a []netip.Addr, ok bool, err error) {
	g.e.waiting(func() { a, ok, err = g.n.Addrs(name) })
	return a, ok, err
}
func (g guardedNet) Holders(a netip.Addr) ([]string, error) {
	return wait2(g.e, func() ([]string, error) { return g.n.Holders(a) })
}
func (g guardedNet) EnsureDummy(name string) error {
	return wait1(g.e, func() error { return g.n.EnsureDummy(name) })
}
func (g guardedNet) IsUp(name string) (up, exists bool, err error) {
	g.e.waiting(func() { up, exists, err = g.n.IsUp(name) })
	return up, exists, err
}
func (g guardedNet) SetUp(name string, up bool) error {
	return wait1(g.e, func() error { return g.n.SetUp(name, up) })
}
func (g guardedNet) DeleteLink(name string) error {
	return wait1(g.e, func() error { return g.n.DeleteLink(name) })
}
func (g guardedNet) AddAddr(name string, a netip.Addr) error {
	return wait1(g.e, func() error { return g.n.AddAddr(name, a) })
}
func (g guardedNet) DelAddr(name string, a netip.Addr) error {
	return wait1(g.e, func() error { return g.n.DelAddr(name, a) })
}
func (g guardedNet) Announce(name string, a netip.Addr) error {
	return wait1(g.e, func() error { return g.n.Announce(name, a) })
}

func (e *Engine) net() netif.Net { return guardedNet{n: e.Net, e: e} }

// guarded installs the guard's wrappers around the kernel and modprobe for one run; the returned function takes
// them off again.
func (e *Engine) guarded() (restore func()) {
	k, mp := e.k, e.modprobe
	e.k = guardedKernel{k: k, e: e}
	if mp != nil {
		e.modprobe = func(module string, params ...string) error {
			return wait1(e, func() error { return mp(module, params...) })
		}
	}
	return func() { e.k, e.modprobe = k, mp }
}

// scanManagers is managers.Scan with the guard given up: it reads files other users may control.
func (e *Engine) scanManagers(within time.Duration) (s *managers.Snapshot, err error) {
	e.waiting(func() { s, err = managers.Scan(time.Now().Add(within)) })
	return s, err
}

// saveSettled is what the watchdog runs when the request expired: within d it takes the guard (for good, see
// above) and saves what the settled ops recorded, with the boot unit. known: the guard was taken, and failed then
// lists the ops whose success changed the ledger when the save failed (nil when it succeeded); !known: the engine
// did not reach a point where the ledger is consistent in time (a save or a sysctl write hanging), so which settled
// ops are recorded cannot be told, and err says so.
func (e *Engine) saveSettled(d time.Duration) (failed []int, known bool, err error) {
	start := time.Now()
	if !e.guard.holdWithin(d) {
		return nil, false, fmt.Errorf("the request ran out of time while the ledger was being written, and that did not finish within %s more", d)
	}
	l := e.own.led
	if l == nil || !l.Changed() {
		return nil, true, nil
	}
	// The save runs on its own goroutine so that a hanging disk cannot hold the answer past d.
	done := make(chan error, 1)
	go func() {
		err := l.Save()
		if err == nil {
			err = syncUnits(l, e.Exe, max(d-time.Since(start), time.Millisecond))
		}
		done <- err
	}()
	t := time.NewTimer(max(d-time.Since(start), time.Millisecond))
	defer t.Stop()
	select {
	case err = <-done:
	case <-t.C:
		err = fmt.Errorf("the request ran out of time and saving the ledger after it did not finish within %s", d)
	}
	if err != nil {
		return e.own.ownOps, true, err
	}
	return nil, true, nil
}
