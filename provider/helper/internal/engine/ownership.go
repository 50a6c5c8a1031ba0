package engine

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ledger"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/managers"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
)

// The ownership ledger (PROTOCOL.md "Ownership ledger"): a request with any owner holds the ledger's lock for its
// whole run. Write ops with an owner are checked against the ledger before they are queued (rules 1, 2 and 4) and
// recorded from their settled results (rule 3); the changed stack files are written before the response.

// ownedRun is the ledger state of the running request.
type ownedRun struct {
	led    *ledger.Ledger
	err    *protocol.Error // the ledger could not be opened: every op with an owner fails with it
	ownOps []int           // ops whose success changed the ledger: they fail with LEDGER if it cannot be saved
	mgr    *managers.Snapshot
	mgrErr *protocol.Error
}

// changesLedger are the ops whose success with an owner may change the ledger.
var changesLedger = map[string]bool{"ensureService": true, "deleteService": true, "ensureDest": true, "deleteDest": true,
	"ensureSettings": true, "deleteSettings": true}

// notRecorded answers an op that changed the kernel when its ledger record could not be saved.
func notRecorded(op *protocol.Op, err error) *protocol.Error {
	return &protocol.Error{Code: protocol.CodeLedger,
		Message: fmt.Sprintf("%s was done in the kernel, but recording it in the ownership ledger failed: %v.", describe(op), err)}
}

func ledgerError(err error) *protocol.Error {
	return &protocol.Error{Code: protocol.CodeLedger, Message: err.Error() + "."}
}

func needsLedger(ops []*protocol.Op) bool {
	for _, op := range ops {
		if op != nil && op.Owner != "" {
			return true
		}
	}
	return false
}

// openLedger opens (and locks) the ledger for a request that carries an owner; led is one the caller opened.
func (e *Engine) openLedger(ops []*protocol.Op, led *ledger.Ledger) {
	e.own = ownedRun{led: led}
	if led != nil {
		e.progress.onExpiry(e.saveSettled)
	}
	if led != nil || !needsLedger(ops) {
		return
	}
	l, err := ledger.Open(time.Now().Add(e.LockWait), e.kept)
	e.kept = l
	if err != nil {
		e.own.err = ledgerError(err)
		return
	}
	e.own.led, e.ownsLock = l, true
	e.progress.onExpiry(e.saveSettled)
	if w := l.StrayWarning(); w != "" && !e.warnedStrays {
		fmt.Fprintln(os.Stderr, "ipvs-helper:", w)
		e.warnedStrays = true
	}
}

// finishLedger saves what the request changed and keeps the boot unit in step; when that fails, every op whose
// success changed the ledger is answered with LEDGER instead (its kernel change was made).
func (e *Engine) finishLedger(ops []*protocol.Op) {
	l := e.own.led
	if l == nil {
		return
	}
	if l.Changed() {
		err := l.Save()
		if err == nil {
			err = syncUnits(l, e.Exe, e.LockWait)
		}
		if err != nil {
			for _, i := range e.own.ownOps {
				e.progress.settle(i, protocol.Fail(notRecorded(ops[i], err)))
			}
		}
	}
	if e.ownsLock {
		l.Close()
		e.ownsLock = false
	}
	e.progress.onExpiry(nil)
	e.own = ownedRun{}
}

// managerOf names who else manages a service's address ("" when nobody), scanning once per request.
func (e *Engine) managerOf(k ipvs.ServiceKey) (string, *protocol.Error) {
	s, perr := e.managerSnapshot()
	if perr != nil {
		return "", perr
	}
	return s.Manager(k), nil
}

// managerSnapshot is what the other managers run, scanned once per request.
func (e *Engine) managerSnapshot() (*managers.Snapshot, *protocol.Error) {
	if e.own.mgr == nil && e.own.mgrErr == nil {
		s, err := e.scanManagers(e.ScanWait)
		if err != nil {
			e.own.mgrErr = &protocol.Error{Code: protocol.CodeManagedElsewhere,
				Message: fmt.Sprintf("MANAGED_ELSEWHERE cannot be decided: whether kube-proxy or keepalived manages the address could not be told: %v; nothing was changed.", err)}
		}
		e.own.mgr = s
	}
	if e.own.mgrErr != nil {
		c := *e.own.mgrErr // callers prefix the message with their op
		return nil, &c
	}
	return e.own.mgr, nil
}

// stepOp decides a write op: ownership checks, then the kernel step, recorded in the ledger once it settles.
func (e *Engine) stepOp(idx int, op *protocol.Op) step {
	if op.Owner == "" {
		return e.kernelStep(op)
	}
	if e.own.err != nil {
		return done(nil, e.own.err)
	}
	if perr := e.checkOwnership(op); perr != nil {
		return done(nil, perr)
	}
	if op.DryRun {
		return done(e.dryRunDelete(op))
	}
	b, perr := e.planBind(op) // the address goes on before the entry (vip.go)
	if perr != nil {
		return done(nil, perr)
	}
	settle := func(res protocol.Result, perr *protocol.Error) (protocol.Result, *protocol.Error) {
		if perr != nil {
			b.fail()
			return res, perr
		}
		b.settle(res)
		e.record(idx, op, res)
		if perr := b.release(); perr != nil {
			return nil, perr
		}
		return res, nil
	}
	s := e.kernelStep(op)
	if s.w == nil {
		return done(settle(s.res, s.err))
	}
	then := s.then
	s.then = func(err error) (protocol.Result, *protocol.Error) { return settle(then(err)) }
	return s
}

// dryRunDelete answers a deleteService dryRun that passed the checks: whether it would delete, and the real servers
// the kernel would delete with it, as they are now. A drain quiesces only these (what it was allowed to take), so a
// real server another stack adds after the dry run is never quiesced by it.
func (e *Engine) dryRunDelete(op *protocol.Op) (protocol.Result, *protocol.Error) {
	sv, err := e.v.service(op.Service)
	if err != nil {
		return nil, kernelError("reading "+op.Service.String(), err, false)
	}
	out := []protocol.DestOut{}
	if sv != nil {
		dests, err := e.v.dests(sv)
		if err != nil {
			return nil, kernelError("reading the real servers of "+op.Service.String(), err, false)
		}
		list := make([]ipvs.Dest, 0, len(dests))
		for _, d := range dests {
			list = append(list, d)
		}
		ipvs.MergeSort(list, ipvs.CmpDests)
		for _, d := range list {
			out = append(out, protocol.DestJSON(d))
		}
	}
	return protocol.Result{"changed": sv != nil, "dests": out}, nil
}

func (e *Engine) kernelStep(op *protocol.Op) step {
	switch op.Name {
	case "ensureService":
		return e.ensureService(op, true)
	case "deleteService":
		return e.deleteService(op)
	case "ensureDest":
		return e.ensureDest(op, true)
	default: // "deleteDest"
		return e.deleteDest(op)
	}
}

// unreadableLedger refuses a change that must know a record an unreadable stack file might hold: the owner's own
// file, or any one when the entry has no readable owner (Ledger.Blocking). Other stacks' changes go on.
func unreadableLedger(l *ledger.Ledger, doing, what, owner string, unowned bool) *protocol.Error {
	err := l.Blocking(owner, unowned)
	if err == nil {
		return nil
	}
	return &protocol.Error{Code: protocol.CodeLedger, Message: fmt.Sprintf("%s refused: a record of %s may be in a ledger file this helper cannot read, and nothing was changed: %s.",
		doing, what, ledger.SkippedAdvice(err))}
}

func owned(doing, what, holder string) *protocol.Error {
	return &protocol.Error{Code: protocol.CodeOwned, Message: fmt.Sprintf("%s refused: %s belongs to stack %s (in the ownership ledger of this director)%s.",
		doing, what, holder, map[bool]string{true: "; take it deliberately with takeover", false: ""}[strings.HasPrefix(doing, "ensuring")])}
}

func heldElsewhere(doing, what, held string, ensure bool) *protocol.Error {
	return &protocol.Error{Code: protocol.CodeOwned, Message: fmt.Sprintf("%s refused: %s is held by another resource of this stack, %s (a real server belongs to one RealServer or RealServerPool)%s.",
		doing, what, held, map[bool]string{true: "; take it deliberately with takeover", false: ""}[ensure])}
}

// checkOwnership applies rules 1, 2 and 4 to a write op with an owner; nil when it may go on.
func (e *Engine) checkOwnership(op *protocol.Op) *protocol.Error {
	l := e.own.led
	ensure := op.Name == "ensureService" || op.Name == "ensureDest"
	isDest := op.Name == "ensureDest" || op.Name == "deleteDest"
	var holder, what string
	if isDest {
		holder, what = l.DestOwner(op.Service, destKey(op)), fmt.Sprintf("%s of %s", destKey(op), op.Service)
	} else {
		holder, what = l.ServiceOwner(op.Service), op.Service.String()
	}
	// Rule 1: another stack's entry (even when missing from the kernel: that stack still claims it).
	if holder != "" && holder != op.Owner && holder != op.FormerOwner && !(ensure && op.Takeover) {
		return owned(describe(op), what, holder)
	}
	if perr := unreadableLedger(l, describe(op), what, op.Owner, holder == ""); perr != nil {
		return perr
	}
	// Within the stack, a real server belongs to one resource (a RealServer or one RealServerPool): another
	// resource's is refused naming it. No holder on either side (callers before holders) is no check. formerHolder
	// is the same resource under its former URN (renamed with aliases): the ensure records the new holder.
	if isDest && holder == op.Owner && op.Holder != "" && !(ensure && op.Takeover) {
		if held := l.DestHolder(op.Service, destKey(op)); held != "" && held != op.Holder && held != op.FormerHolder {
			return heldElsewhere(describe(op), what, held, ensure)
		}
	}
	if op.Name == "deleteService" {
		return e.checkForeignDests(op)
	}
	if !ensure || holder != "" || op.OnExisting == protocol.ExistingFail {
		return nil // "fail" answers EXISTS for an existing entry, as without an owner
	}
	// Rule 2: claiming an existing entry nobody owns, unless another manager runs its address.
	sv, err := e.v.service(op.Service)
	if err != nil {
		return kernelError("reading "+op.Service.String(), err, false)
	}
	if sv == nil {
		return nil
	}
	if isDest {
		dests, err := e.v.dests(sv)
		if err != nil {
			return kernelError("reading the real servers of "+op.Service.String(), err, false)
		}
		if _, ok := dests[destKey(op)]; !ok {
			return nil
		}
	}
	mgr, perr := e.managerOf(op.Service)
	if perr != nil {
		perr.Message = describe(op) + " refused: " + perr.Message
		return perr
	}
	if mgr != "" {
		return &protocol.Error{Code: protocol.CodeManagedElsewhere,
			Message: fmt.Sprintf("%s refused: %s exists with no owner and its address is managed by %s; pulumi-ipvs does not adopt it.", describe(op), what, mgr)}
	}
	return nil
}

// checkForeignDests is rule 4: the kernel drops a service's real servers with it, so deleting one whose real
// servers are not all the owner's needs withForeignDests.
func (e *Engine) checkForeignDests(op *protocol.Op) *protocol.Error {
	if op.WithForeignDests {
		return nil
	}
	// Dest ops still queued are recorded only when they settle: send them first, so the ledger is current.
	e.sendQueued()
	sv, err := e.v.service(op.Service)
	if err != nil || sv == nil {
		if err != nil {
			return kernelError("reading "+op.Service.String(), err, false)
		}
		return nil
	}
	dests, err := e.v.dests(sv)
	if err != nil {
		return kernelError("reading the real servers of "+op.Service.String(), err, false)
	}
	list := make([]ipvs.Dest, 0, len(dests))
	for _, d := range dests {
		if e.own.led.DestOwner(op.Service, d.DestKey) != op.Owner {
			list = append(list, d)
		}
	}
	if len(list) == 0 {
		return nil
	}
	ipvs.MergeSort(list, ipvs.CmpDests)
	names := make([]string, len(list))
	for i, d := range list {
		holder := e.own.led.DestOwner(op.Service, d.DestKey)
		if holder == "" {
			names[i] = ipvs.HostPort(d.Addr, d.Port) + " (no owner)"
		} else {
			names[i] = ipvs.HostPort(d.Addr, d.Port) + " (stack " + holder + ")"
		}
	}
	return &protocol.Error{Code: protocol.CodeForeignDests, Message: fmt.Sprintf(
		// No protocol field names here: the provider appends what to do in its users' words (deleteForeignRealServers).
		"deleting %s refused: it still has real servers stack %s does not own, which the kernel would delete with it: %s.",
		op.Service, op.Owner, strings.Join(names, ", "))}
}

// record is rule 3: a successful ensure records the entry as now in the kernel, a delete drops its record.
func (e *Engine) record(idx int, op *protocol.Op, res protocol.Result) {
	l, changed := e.own.led, false
	switch op.Name {
	case "ensureService":
		changed = l.PutService(op.Owner, op.Service, res["service"].(protocol.ServiceOut).ServiceSpecOut)
	case "ensureDest":
		d := res["dest"].(protocol.DestOut)
		if d.Health != nil {
			d.Weight = d.Health.DeclaredWeight // held by the health checker: the ledger keeps what was declared
		}
		changed = l.PutDest(op.Owner, op.Holder, op.Service, destKey(op), d.DestSpecOut)
	case "deleteService":
		changed = l.DropService(op.Service)
	case "deleteDest":
		changed = l.DropDest(op.Service, destKey(op))
	}
	changed = recordHealth(l, op) || changed
	if changed {
		e.own.ownOps = append(e.own.ownOps, idx)
	}
}
