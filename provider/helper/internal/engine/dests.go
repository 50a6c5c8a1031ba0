package engine

import (
	"fmt"
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

// ensureDest creates the real server, SETs the merged entry when a given field differs, or does nothing.
func (e *Engine) ensureDest(op *protocol.Op, retry bool) (protocol.Result, *protocol.Error) {
	key := destKey(op)
	sv, err := e.v.service(op.Service)
	if err != nil {
		return nil, kernelError("reading "+op.Service.String(), err, false)
	}
	if sv == nil {
		return nil, serviceMissing(fmt.Sprintf("adding %s to %s", key, op.Service))
	}
	dests, err := e.v.dests(sv)
	if err != nil {
		return nil, kernelError("reading the real servers of "+op.Service.String(), err, false)
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
		if op.FailIfExists {
			return nil, &protocol.Error{Code: protocol.CodeExists, Errno: int(syscall.EEXIST),
				Message: fmt.Sprintf("%s of %s already exists (now: %s).", key, op.Service, savefmt.DestLine(op.Service, d))}
		}
	}
	want, err := mergeDest(cur, key, op.Dst)
	if err == nil {
		err = ipvs.ValidateDest(op.Service, want, e.kv)
	}
	if err != nil {
		return nil, kernelError(doing(), err, true)
	}
	if cur != nil && sameDest(*cur, want) {
		return protocol.Result{"changed": false, "created": false, "dest": protocol.DestJSON(*cur)}, nil
	}
	if cur == nil {
		err = e.k.NewDest(op.Service, want)
	} else {
		err = e.k.SetDest(op.Service, want)
	}
	if err != nil {
		errno := ipvs.Errno(err)
		if retry && (errno == syscall.EEXIST || errno == syscall.ENOENT || errno == syscall.ESRCH) {
			e.v.forget(op.Service)
			return e.ensureDest(op, false)
		}
		pe := kernelError(doing(), err, true)
		if errno == syscall.ERANGE && want.LThresh > want.UThresh {
			pe.Message = fmt.Sprintf("%s failed: lower threshold %d is above upper threshold %d (the kernel requires lower <= upper, and an upper threshold of 0 allows no lower threshold).", doing(), want.LThresh, want.UThresh)
		}
		return nil, pe
	}
	if cur != nil {
		want.ActiveConns, want.InactConns, want.PersistConns, want.Stats = cur.ActiveConns, cur.InactConns, cur.PersistConns, cur.Stats
	}
	dests[key] = want
	return protocol.Result{"changed": true, "created": cur == nil, "dest": protocol.DestJSON(want)}, nil
}

func (e *Engine) deleteDest(op *protocol.Op) (protocol.Result, *protocol.Error) {
	key := destKey(op)
	err := e.k.DelDest(op.Service, key)
	if sv := e.v.svcs[op.Service]; sv != nil && sv.dests != nil {
		delete(sv.dests, key)
	}
	if err != nil {
		if errno := ipvs.Errno(err); errno == syscall.ENOENT || errno == syscall.ESRCH {
			return protocol.Result{"changed": false}, nil
		}
		return nil, kernelError(fmt.Sprintf("deleting %s of %s", key, op.Service), err, true)
	}
	return protocol.Result{"changed": true}, nil
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
