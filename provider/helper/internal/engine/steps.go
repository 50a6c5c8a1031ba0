package engine

import (
	"fmt"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/managers"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
)

// A write op's steps, in order: the ownership checks (ownership.go) for an op with an owner, the address it needs
// bound (vip.go), the kernel step, and its record in the ledger (ledgersession.go) once it settles; and the scan of
// the other managers those checks consult, once per request.

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
