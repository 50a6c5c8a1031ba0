package engine

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"syscall"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ledger"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
)

// bindAddress (PROTOCOL.md "Bound addresses"): an ensureService with an owner may put its address on an interface.
// The binding lives in the service's ledger record, so an address is counted across services and stacks: it is
// added with the first service that binds it (or found there and then never removed), and removed with the last.
// The address goes on before the service's entry (boot restores addresses first), and the binding a service gives
// up is released only after its record changed, so the count sees the new state.

// bindPlan is what one ensureService or deleteService does to bound addresses.
type bindPlan struct {
	e    *Engine
	op   *protocol.Op
	prev *protocol.Binding // recorded before the op
	next *protocol.Binding // to record on success (nil: none)
	// added: this op put the address on next's interface (undone if the op fails).
	added bool
}

// vipRun is the running request's view of addresses: ops still to settle that bind one, and the addresses this
// request added (another op of the request binding them inherits "added"); the interfaces' addresses for reads.
type vipRun struct {
	pending map[netip.Addr]int
	added   map[netip.Addr]bool
	ifAddrs map[string]map[netip.Addr]bool
	readLed *ledger.Ledger // readLedger's, for a request that holds no lock
}

func newVipRun() vipRun {
	return vipRun{pending: map[netip.Addr]int{}, added: map[netip.Addr]bool{}, ifAddrs: map[string]map[netip.Addr]bool{}}
}

// warn says on stderr what went wrong without failing the op.
func (e *Engine) warn(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "ipvs-helper: "+format+"\n", a...)
}

// bindError is a failed call on the director's interfaces, with the codes kernel calls get for the same causes.
func bindError(doing string, err error) *protocol.Error {
	code := protocol.CodeInternal
	switch {
	case errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EACCES):
		code = protocol.CodePermission
	case errors.Is(err, os.ErrDeadlineExceeded):
		code = protocol.CodeTimeout
	}
	return &protocol.Error{Code: code, Message: fmt.Sprintf("%s failed: %v.", doing, err)}
}

// planBind decides and does the address side of an owned ensureService or deleteService before its kernel step:
// for an ensure, the checks and the address put in place. nil plan: the op binds nothing and released nothing.
func (e *Engine) planBind(op *protocol.Op) (*bindPlan, *protocol.Error) {
	if (op.Name != "ensureService" && op.Name != "deleteService") || op.DryRun || op.Service.IsFWMark() {
		return nil, nil
	}
	b := &bindPlan{e: e, op: op, prev: e.own.led.ServiceBind(op.Service)}
	if op.Name == "ensureService" && op.Bind != nil {
		next := *op.Bind
		b.next = &next
	}
	if b.prev == nil && b.next == nil {
		return nil, nil
	}
	if b.next != nil {
		if perr := b.bind(); perr != nil {
			return nil, perr
		}
	}
	return b, nil
}

// bind puts the address on next's interface (or finds it there) after checking that nobody else places it.
func (b *bindPlan) bind() *protocol.Error {
	e, a, next := b.e, b.op.Service.Addr, b.next
	doing := fmt.Sprintf("binding %s on interface %s for %s", a, next.Interface, b.op.Service)
	others := b.otherBinders()
	for _, o := range others {
		if !o.Bind.Same(next) {
			return &protocol.Error{Code: protocol.CodeBadRequest, Message: fmt.Sprintf("%s refused: %s binds it on interface %s (stack %s); every service of one address binds it on the same interface.",
				doing, o.Service, o.Bind.Interface, o.Owner)}
		}
	}
	if !b.prev.Same(next) {
		// A new binding: refused where another manager places the address (it would remove ours, or we its).
		snap, perr := e.managerSnapshot()
		if perr != nil {
			perr.Message = doing + " refused: " + perr.Message
			return perr
		}
		if mgr := snap.AddressManager(a); mgr != "" {
			return &protocol.Error{Code: protocol.CodeManagedElsewhere, Message: fmt.Sprintf("%s refused: the address is managed by %s; leave bindAddress false and let it place the address.", doing, mgr)}
		}
	}
	holders, err := e.net().Holders(a)
	if err != nil {
		return bindError(doing, err)
	}
	// The service's own former interface does not count: a binding that moves is released from there afterwards.
	if elsewhere := slices.DeleteFunc(slices.Clone(holders), func(n string) bool {
		return n == next.Interface || (b.prev != nil && n == b.prev.Interface && len(others) == 0)
	}); len(elsewhere) > 0 {
		return &protocol.Error{Code: protocol.CodeBadRequest, Message: fmt.Sprintf("%s refused: the address is already on interface %s of this director; bind it there ({interface: %q}) or leave bindAddress false.",
			doing, strings.Join(elsewhere, ", "), elsewhere[0])}
	}
	if next.Dummy {
		if err := e.net().EnsureDummy(next.Interface); err != nil {
			return bindError(doing, err)
		}
	} else if _, exists, err := e.net().Addrs(next.Interface); err != nil || !exists {
		if err == nil {
			return &protocol.Error{Code: protocol.CodeNotFound, Message: fmt.Sprintf("%s refused: this director has no interface %s.", doing, next.Interface)}
		}
		return bindError(doing, err)
	}
	e.vips.pending[a]++
	if slices.Contains(holders, next.Interface) {
		// Already there: added by pulumi-ipvs when a binder (or this request) says so, else found and left alone.
		next.Added = e.vips.added[a] || (b.prev != nil && b.prev.Added && b.prev.Same(next))
		for _, o := range others {
			next.Added = next.Added || o.Bind.Added
		}
		return nil
	}
	if err := e.net().AddAddr(next.Interface, a); err != nil {
		e.vips.pending[a]--
		return bindError(doing, err)
	}
	b.added, next.Added, e.vips.added[a] = true, true, true
	delete(e.vips.ifAddrs, next.Interface)
	if !next.Dummy {
		// The address is there and works; a failed announcement only delays the neighbours (their caches expire).
		if err := e.net().Announce(next.Interface, a); err != nil {
			e.warn("%s: %v", doing, err)
		}
	}
	return nil
}

// otherBinders are the recorded services other than this op's that bind its address.
func (b *bindPlan) otherBinders() []ledger.Binder {
	var out []ledger.Binder
	for _, o := range b.e.own.led.Binders(b.op.Service.Addr) {
		if o.Service != b.op.Service {
			out = append(out, o)
		}
	}
	return out
}

// settle runs when the op's kernel step succeeded, before its record: the record carries the new binding.
func (b *bindPlan) settle(res protocol.Result) {
	if b == nil {
		return
	}
	if b.next != nil {
		b.e.vips.pending[b.op.Service.Addr]--
	}
	if b.op.Name != "ensureService" {
		return
	}
	svc := res["service"].(protocol.ServiceOut)
	if b.next != nil {
		rec := *b.next
		svc.BindAddress = &rec
	}
	res["service"] = svc
}

// fail runs when the op's kernel step failed: an address this op added goes again unless something else binds it.
func (b *bindPlan) fail() {
	if b == nil || b.next == nil {
		return
	}
	a := b.op.Service.Addr
	b.e.vips.pending[a]--
	if b.added && b.e.vips.pending[a] == 0 && len(b.otherBinders()) == 0 && !b.prev.Same(b.next) {
		b.e.unbind(a, b.next)
	}
}

// release runs after the op's record changed: the binding the service gave up goes when no record binds its address
// there any more and pulumi-ipvs had added it.
func (b *bindPlan) release() *protocol.Error {
	if b == nil || b.prev == nil || b.prev.Same(b.next) {
		return nil
	}
	a := b.op.Service.Addr
	still := slices.ContainsFunc(b.e.own.led.Binders(a), func(o ledger.Binder) bool { return o.Bind.Interface == b.prev.Interface })
	if !b.prev.Added || b.e.vips.pending[a] > 0 || still || len(b.e.own.led.Unreadable()) > 0 {
		return nil // found there, still bound, or a stack file that cannot be read may bind it: it stays
	}
	if err := b.e.unbind(a, b.prev); err != nil {
		return &protocol.Error{Code: protocol.CodeInternal, Message: fmt.Sprintf("%s was done and recorded, but removing its address afterwards failed: %v; remove it by hand (ip address del %s dev %s).",
			describe(b.op), err, hostPrefix(a), b.prev.Interface)}
	}
	return nil
}

func hostPrefix(a netip.Addr) string { return netip.PrefixFrom(a, a.BitLen()).String() }

// unbind removes address a from the binding's interface, and the dummy interface with its last address.
func (e *Engine) unbind(a netip.Addr, bnd *protocol.Binding) error {
	if err := e.net().DelAddr(bnd.Interface, a); err != nil {
		return err
	}
	delete(e.vips.ifAddrs, bnd.Interface)
	if !bnd.Dummy || e.own.led.BindsOn(bnd.Interface) {
		return nil
	}
	addrs, _, err := e.net().Addrs(bnd.Interface)
	if err != nil {
		return err
	}
	for _, x := range addrs {
		if !x.IsLinkLocalUnicast() {
			return nil // someone else's address is on it too: it stays
		}
	}
	return e.net().DeleteLink(bnd.Interface)
}

// boundNow is the read-back of a recorded binding: whether its address is on its interface now.
func (e *Engine) boundNow(k ipvs.ServiceKey, rec *protocol.Binding) (*protocol.Binding, *protocol.Error) {
	if rec == nil {
		return nil, nil
	}
	have, ok := e.vips.ifAddrs[rec.Interface]
	if !ok {
		addrs, _, err := e.net().Addrs(rec.Interface)
		if err != nil {
			return nil, bindError("reading the addresses of interface "+rec.Interface+" for "+k.String(), err)
		}
		have = map[netip.Addr]bool{}
		for _, x := range addrs {
			have[x] = true
		}
		e.vips.ifAddrs[rec.Interface] = have
	}
	out := *rec
	present := have[k.Addr]
	out.Present = &present
	return &out, nil
}

// readLedger is the request's ledger for reads: the open one, or one loaded without the lock (stack files are
// replaced by rename or appended to by whole lines).
func (e *Engine) readLedger() (*ledger.Ledger, *protocol.Error) {
	if e.own.led != nil {
		return e.own.led, nil
	}
	if e.vips.readLed == nil {
		l, err := ledger.Load()
		if err != nil {
			return nil, ledgerError(err)
		}
		e.vips.readLed = l
	}
	return e.vips.readLed, nil
}

// withBinding adds a service's recorded binding, as it is now, to its read-back.
func (e *Engine) withBinding(o *protocol.ServiceOut, k ipvs.ServiceKey) *protocol.Error {
	if k.IsFWMark() {
		return nil
	}
	l, perr := e.readLedger()
	if perr != nil {
		return perr
	}
	o.BindAddress, perr = e.boundNow(k, l.ServiceBind(k))
	return perr
}
