package engine

import (
	"fmt"
	"strings"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ledger"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
)

// The ownership rules (PROTOCOL.md "Ownership ledger") a write op with an owner must pass before it is queued:
// another stack's entry is refused (rule 1), an unowned existing one is not adopted from another manager (rule 2),
// a service is not deleted with real servers its stack does not own (rule 4); and the refusals they answer with.
// Rule 3, the record, is in ledgersession.go.

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
