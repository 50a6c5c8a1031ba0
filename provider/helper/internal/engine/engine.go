package engine

import (
	"fmt"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
)

// Engine executes batches on one kernel connection.
type Engine struct {
	k        Kernel
	kv       ipvs.KernelVersion
	modprobe Modprober // nil when modprobe is not installed
	v        *view

	// The running request's results, and its write pipeline (pipeline.go).
	progress *Progress
	queue    []queued
	inQueue  map[entry]bool
}

// New makes an engine for a kernel connection, the running kernel's version and a module loader (may be nil).
func New(k Kernel, kv ipvs.KernelVersion, modprobe Modprober) *Engine {
	return &Engine{k: k, kv: kv, modprobe: modprobe}
}

// fullDumpThreshold: a batch touching more services than this reads them with one dump instead of a GET each.
const fullDumpThreshold = 8

// Run executes a request's operations in order; each one succeeds or fails on its own.
func (e *Engine) Run(req protocol.Request) protocol.Response {
	return e.RunTracked(req, NewProgress(req))
}

// RunTracked is Run settling each op's result in p (made by NewProgress(req)) as soon as it is known.
func (e *Engine) RunTracked(req protocol.Request, p *Progress) protocol.Response {
	resp := protocol.Response{V: protocol.Version}
	if req.V != protocol.Version {
		err := &protocol.Error{Code: protocol.CodeBadRequest, Message: fmt.Sprintf("protocol version %d is not supported; this helper speaks version %d", req.V, protocol.Version)}
		resp.Error = err
		for i := range req.Ops {
			p.settle(i, protocol.Fail(err))
		}
		resp.Results = p.snapshot()
		return resp
	}
	ops := make([]*protocol.Op, len(req.Ops))
	errs := make([]*protocol.Error, len(req.Ops))
	touched := map[ipvs.ServiceKey]bool{}
	for i, raw := range req.Ops {
		ops[i], errs[i] = protocol.DecodeOp(raw)
		if errs[i] != nil {
			p.settle(i, protocol.Fail(errs[i]))
		}
		if ops[i] != nil && ops[i].Name != "zero" && (ops[i].Service.AF != 0) {
			touched[ops[i].Service] = true
		}
	}
	e.progress, e.inQueue = p, map[entry]bool{}
	e.v = e.newView()
	if len(touched) > fullDumpThreshold {
		// A failed dump is not fatal: the view falls back to reading services one by one.
		_ = e.v.loadAll()
	}
	for i, op := range ops {
		if errs[i] != nil {
			continue
		}
		if ent, ok := pipelined(op); ok {
			e.enqueue(i, op, ent)
			continue
		}
		e.sendQueued()
		p.settle(i, result(e.runOp(op)))
	}
	e.sendQueued()
	e.v, e.progress, e.inQueue = nil, nil, nil
	resp.Results = p.snapshot()
	return resp
}

// newView starts a view of the table whose kernel reads first send the queued writes.
func (e *Engine) newView() *view {
	v := newView(e.k)
	v.beforeRead = e.sendQueued
	return v
}

func (e *Engine) runOp(op *protocol.Op) (protocol.Result, *protocol.Error) {
	switch op.Name {
	case "ensureService", "deleteService", "ensureDest", "deleteDest":
		return e.now(e.stepOp(op))
	case "getService":
		return e.getService(op)
	case "getDest":
		return e.getDest(op)
	case "dump":
		return e.dump()
	case "setTimeouts":
		return e.setTimeouts(op)
	case "getTimeouts":
		t, err := e.k.Timeouts()
		if err != nil {
			return nil, kernelError("reading the connection timeouts", err, false)
		}
		return protocol.Result{"timeouts": timeoutsJSON(t)}, nil
	case "ensureDaemon":
		return e.ensureDaemon(op)
	case "deleteDaemon":
		return e.deleteDaemon(op)
	case "getDaemons":
		return e.getDaemons()
	case "info":
		i, err := e.k.Info()
		if err != nil {
			return nil, kernelError("reading IPVS info", err, false)
		}
		return protocol.Result{"info": map[string]any{"version": i.VersionString(), "connTableSize": i.ConnTabSize}}, nil
	case "zero":
		return e.zero(op)
	case "flush":
		return e.flush()
	}
	return nil, &protocol.Error{Code: protocol.CodeInternal, Message: "operation " + op.Name + " has no handler"}
}
