package engine

import (
	"fmt"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/health"
	"syscall"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/savefmt"
)

// destKey resolves the real server identity: no port given means the service port, as in ipvsadm.
func destKey(op *protocol.Op) ipvs.DestKey {
	k := op.Dest
	if !op.DestPort {
		k.Port = op.Service.Port
	}
	return k
}

func serviceMissing(doing string) *protocol.Error {
	return &protocol.Error{Code: protocol.CodeServiceNotFound, Errno: int(syscall.ESRCH), Message: doing + " failed: the service does not exist."}
}

// ensureDest creates the real server, SETs the merged entry when a given field differs, or does nothing; an existing
// entry is refused with onExisting "fail", and with "match" when a given field differs.
func (e *Engine) ensureDest(op *protocol.Op, retry bool) step {
	key := destKey(op)
	// A create (onExisting "fail") reads neither its service nor the service's real servers where this request has
	// not: the kernel refuses a dest of a missing service with ESRCH and an existing dest with EEXIST, and the retry
	// below reads them then, to say which. Reading the real servers first cost a dump of every one of them for each
	// one added, O(N²) over an up that adds them a request or two at a time; reading the service, a netlink round
	// trip per create, most of a lone create's cost after the ledger's.
	blind := op.OnExisting == protocol.ExistingFail && retry
	var dests map[ipvs.DestKey]ipvs.Dest
	if !blind || e.v.known(op.Service) {
		sv, err := e.v.service(op.Service)
		if err != nil {
			return done(nil, kernelError("reading "+op.Service.String(), err, false))
		}
		if sv == nil {
			return done(nil, serviceMissing(fmt.Sprintf("adding %s to %s", key, op.Service)))
		}
		if dests = sv.dests; dests == nil && !blind {
			if dests, err = e.v.dests(sv); err != nil {
				return done(nil, kernelError("reading the real servers of "+op.Service.String(), err, false))
			}
		}
	}
	var cur *ipvs.Dest
	// Messages are built only on the error paths: this function runs 10,000 times in a large batch.
	doing := func() string {
		if cur != nil {
			return fmt.Sprintf("updating %s of %s", key, op.Service)
		}
		return fmt.Sprintf("adding %s to %s", key, op.Service)
	}
	if d, ok := dests[key]; ok {
		cur = &d
		if op.OnExisting == protocol.ExistingFail {
			return done(nil, destExists(op.Service, key, d))
		}
	}
	want, err := mergeDest(cur, key, op.DestChange)
	if err == nil {
		err = ipvs.ValidateDest(op.Service, want, e.kv)
	}
	if err != nil {
		return done(nil, kernelError(doing(), err, true))
	}
	// A real server the health checker holds out of the pool keeps its kernel weight (0), or stays removed; the
	// ledger records what was declared and the checker applies it on recovery (health.go).
	declared := want
	var check *protocol.HealthCheck
	var hold *health.DestState
	if !blind || dests != nil { // a blind create has not read the entry: the kernel's answer decides
		check, hold = e.held(op, key)
	}
	if hold != nil {
		switch {
		case cur != nil:
			want.Weight = cur.Weight
		case check.OnFailure == "remove":
			return done(heldResult(false, false, nil, declared, check, hold), nil)
		default: // quiesced, then gone (a reboot): boot puts it back at weight 0
			want.Weight = 0
		}
	}
	if cur != nil && cur.DestSettings == want.DestSettings {
		if hold != nil {
			return done(heldResult(false, false, cur, declared, check, hold), nil)
		}
		return done(protocol.Result{"changed": false, "created": false, "dest": protocol.DestJSON(*cur)}, nil)
	}
	if cur != nil && op.OnExisting == protocol.ExistingMatch {
		return done(nil, destExists(op.Service, key, *cur))
	}
	w, err := destWrite(op.Service, cur == nil, want)
	if err != nil {
		return done(nil, kernelError(doing(), err, true))
	}
	if cur != nil {
		want.ActiveConns, want.InactConns, want.PersistConns, want.Stats = cur.ActiveConns, cur.InactConns, cur.PersistConns, cur.Stats
	}
	if dests != nil {
		dests[key] = want // the rest of the batch sees the write; undone if it fails
	}
	return send(w, func(err error) (protocol.Result, *protocol.Error) {
		if err == nil {
			if hold != nil {
				return heldResult(true, cur == nil, &want, declared, check, hold), nil
			}
			return protocol.Result{"changed": true, "created": cur == nil, "dest": protocol.DestJSON(want)}, nil
		}
		if cur == nil {
			delete(dests, key)
		} else {
			dests[key] = *cur
		}
		errno := ipvs.Errno(err)
		if errno == syscall.ESRCH && e.v.absent[op.Service] {
			// The service's own creation, earlier in the pipeline, failed and has been answered already.
			return nil, serviceMissing(doing())
		}
		if retry && (errno == syscall.EEXIST || errno == syscall.ENOENT || errno == syscall.ESRCH) {
			e.v.forget(op.Service)
			return e.now(e.ensureDest(op, false))
		}
		pe := kernelError(doing(), err, true)
		if errno == syscall.ERANGE && want.LThresh > want.UThresh {
			pe.Message = fmt.Sprintf("%s failed: lower threshold %d is above upper threshold %d (the kernel requires lower <= upper, and an upper threshold of 0 allows no lower threshold).", doing(), want.LThresh, want.UThresh)
		}
		return nil, pe
	})
}

func destExists(svc ipvs.ServiceKey, key ipvs.DestKey, cur ipvs.Dest) *protocol.Error {
	return &protocol.Error{Code: protocol.CodeExists, Errno: int(syscall.EEXIST),
		Message: fmt.Sprintf("%s of %s already exists (now: %s).", key, svc, savefmt.DestLine(svc, cur))}
}

func destWrite(k ipvs.ServiceKey, create bool, d ipvs.Dest) (ipvs.Write, error) {
	if create {
		return ipvs.NewDestWrite(k, d)
	}
	return ipvs.SetDestWrite(k, d)
}

func (e *Engine) deleteDest(op *protocol.Op) step {
	key := destKey(op)
	doing := func() string { return fmt.Sprintf("deleting %s of %s", key, op.Service) }
	w, err := ipvs.DelDestWrite(op.Service, key)
	if err != nil {
		return done(nil, kernelError(doing(), err, true))
	}
	if sv := e.v.svcs[op.Service]; sv != nil && sv.dests != nil {
		delete(sv.dests, key)
	}
	return send(w, func(err error) (protocol.Result, *protocol.Error) {
		if err == nil {
			return protocol.Result{"changed": true}, nil
		}
		if errno := ipvs.Errno(err); errno == syscall.ENOENT || errno == syscall.ESRCH {
			return protocol.Result{"changed": false}, nil
		}
		return nil, kernelError(doing(), err, true)
	})
}

func (e *Engine) getDest(op *protocol.Op) (protocol.Result, *protocol.Error) {
	key := destKey(op)
	sv, err := e.v.service(op.Service)
	if err != nil {
		return nil, kernelError("reading "+op.Service.String(), err, false)
	}
	if sv == nil {
		return protocol.Result{"dest": nil}, nil
	}
	// Counters must be current: read fresh rather than from the batch's view.
	list, err := e.k.Dests(op.Service)
	if err != nil {
		return nil, kernelError("reading the real servers of "+op.Service.String(), err, false)
	}
	for _, d := range list {
		if d.DestKey == key {
			return protocol.Result{"dest": protocol.DestJSON(normalizeDest(d))}, nil
		}
	}
	return protocol.Result{"dest": nil}, nil
}
