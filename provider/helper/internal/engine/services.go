package engine

import (
	"fmt"
	"syscall"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/savefmt"
)

// ensureService creates the service, SETs the merged entry when a given field differs, or does nothing; an existing
// entry is refused with onExisting "fail", and with "match" when a given field differs.
// retry: a kernel answer that contradicts the view (someone else changed the table) re-reads it once.
func (e *Engine) ensureService(op *protocol.Op, retry bool) step {
	key := op.Service
	sv, err := e.v.service(key)
	if err != nil {
		return done(nil, kernelError("reading "+key.String(), err, false))
	}
	var cur *ipvs.Service
	doing := "creating " + key.String()
	if sv != nil {
		prev := sv.svc
		cur = &prev
		doing = "updating " + key.String()
		if op.OnExisting == protocol.ExistingFail {
			return done(nil, serviceExists(key, *cur))
		}
	}
	want, err := mergeService(cur, key, op.ServiceChange)
	if err == nil {
		err = ipvs.ValidateService(want, e.kv)
	}
	if err != nil {
		return done(nil, kernelError(doing, err, false))
	}
	if cur != nil && cur.ServiceSettings == want.ServiceSettings {
		return done(protocol.Result{"changed": false, "created": false, "service": protocol.ServiceJSON(*cur, nil)}, nil)
	}
	if cur != nil && op.OnExisting == protocol.ExistingMatch {
		return done(nil, serviceExists(key, *cur))
	}
	w, err := serviceWrite(cur == nil, want)
	if err != nil {
		return done(nil, kernelError(doing, err, false))
	}
	if cur != nil {
		want.Stats = cur.Stats
	}
	e.v.put(want, cur == nil) // the rest of the batch sees the write; undone if it fails
	return send(w, func(err error) (protocol.Result, *protocol.Error) {
		err = e.afterModules(want, err, func() error { return e.exec(w) })
		if err == nil {
			return protocol.Result{"changed": true, "created": cur == nil, "service": protocol.ServiceJSON(want, nil)}, nil
		}
		if errno := ipvs.Errno(err); retry && (errno == syscall.EEXIST || errno == syscall.ESRCH) {
			e.v.forget(key)
			return e.now(e.ensureService(op, false))
		}
		e.v.undo(key, cur)
		if pe, ok := err.(*protocol.Error); ok {
			pe.Message = doing + " failed: " + pe.Message
			return nil, pe
		}
		return nil, kernelError(doing, err, false)
	})
}

func serviceExists(key ipvs.ServiceKey, cur ipvs.Service) *protocol.Error {
	return &protocol.Error{Code: protocol.CodeExists, Errno: int(syscall.EEXIST),
		Message: fmt.Sprintf("%s already exists (now: %s).", key, savefmt.ServiceLine(cur))}
}

func serviceWrite(create bool, s ipvs.Service) (ipvs.Write, error) {
	if create {
		return ipvs.NewServiceWrite(s)
	}
	return ipvs.SetServiceWrite(s)
}

func (e *Engine) deleteService(op *protocol.Op) step {
	w, err := ipvs.DelServiceWrite(op.Service)
	if err != nil {
		return done(nil, kernelError("deleting "+op.Service.String(), err, false))
	}
	e.v.remove(op.Service)
	return send(w, func(err error) (protocol.Result, *protocol.Error) {
		switch {
		case err == nil:
			return protocol.Result{"changed": true}, nil
		case ipvs.Errno(err) == syscall.ESRCH:
			return protocol.Result{"changed": false}, nil
		}
		e.v.forget(op.Service)
		return nil, kernelError("deleting "+op.Service.String(), err, false)
	})
}

func (e *Engine) getService(op *protocol.Op) (protocol.Result, *protocol.Error) {
	sv, err := e.v.service(op.Service)
	if err != nil {
		return nil, kernelError("reading "+op.Service.String(), err, false)
	}
	if sv == nil {
		return protocol.Result{"service": nil}, nil
	}
	var dests []ipvs.Dest
	if op.WithDests {
		// Counters must be current: read the dests fresh rather than from the batch's view.
		if dests, err = e.k.Dests(op.Service); err != nil {
			return nil, kernelError("reading the real servers of "+op.Service.String(), err, false)
		}
		ipvs.MergeSort(dests, ipvs.CmpDests)
		if dests == nil {
			dests = []ipvs.Dest{}
		}
	}
	out := protocol.ServiceJSON(sv.svc, dests)
	if perr := e.withBinding(&out, op.Service); perr != nil {
		return nil, perr
	}
	return protocol.Result{"service": out}, nil
}

// ReadTable dumps every service and its dests, in ipvsadm's order.
func ReadTable(k Kernel) ([]ipvs.ServiceDests, error) {
	svcs, err := k.Services()
	if err != nil {
		return nil, err
	}
	tbl := make([]ipvs.ServiceDests, len(svcs))
	for i, s := range svcs {
		d, err := k.Dests(s.ServiceKey)
		if err != nil {
			return nil, err
		}
		tbl[i] = ipvs.ServiceDests{Service: s, Dests: d}
	}
	savefmt.Sort(tbl)
	return tbl, nil
}

func (e *Engine) dump() (protocol.Result, *protocol.Error) {
	tbl, err := ReadTable(e.k)
	if err != nil {
		return nil, kernelError("reading the IPVS table", err, false)
	}
	out := make([]protocol.ServiceOut, len(tbl))
	for i, sd := range tbl {
		if sd.Dests == nil {
			sd.Dests = []ipvs.Dest{}
		}
		out[i] = protocol.ServiceJSON(sd.Service, sd.Dests)
		if perr := e.withBinding(&out[i], sd.Service.ServiceKey); perr != nil {
			return nil, perr
		}
	}
	return protocol.Result{"services": out}, nil
}

func (e *Engine) zero(op *protocol.Op) (protocol.Result, *protocol.Error) {
	var key *ipvs.ServiceKey
	what := "zeroing all counters"
	if op.Service.AF != 0 {
		key = &op.Service
		what = "zeroing the counters of " + key.String()
	}
	if err := e.k.Zero(key); err != nil {
		return nil, kernelError(what, err, false)
	}
	return protocol.Result{"changed": true}, nil
}

func (e *Engine) flush() (protocol.Result, *protocol.Error) {
	svcs, err := e.k.Services()
	if err != nil {
		return nil, kernelError("reading the IPVS table before flushing", err, false)
	}
	if len(svcs) == 0 {
		return protocol.Result{"changed": false}, nil
	}
	if err := e.k.Flush(); err != nil {
		return nil, kernelError("flushing the IPVS table", err, false)
	}
	e.v = e.newView()
	e.v.full = true
	return protocol.Result{"changed": true}, nil
}
