package engine

import (
	"fmt"
	"os"
	"time"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ledger"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/netif"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/sysctl"
)

// Engine executes batches on one kernel connection.
type Engine struct {
	k        Kernel
	kv       ipvs.KernelVersion
	modprobe Modprober // nil when modprobe is not installed
	v        *view

	// LockWait bounds the wait for the ledger's lock (within the request's deadline).
	LockWait time.Duration
	// ScanWait bounds the scan for other managers (managers.Scan), which runs under the ledger's lock: well within
	// the request's deadline, and shorter than other requests wait for that lock.
	ScanWait time.Duration
	// Exe is this helper's path, the boot unit's ExecStart.
	Exe string
	// Sysctl reads and writes the director's sysctls.
	Sysctl sysctl.FS
	// Modules reads and unloads kernel modules (ftp.go).
	Modules Modules
	// Net puts bound addresses on the director's interfaces (vip.go).
	Net  netif.Net
	vips vipRun

	// The running request's results, and its write pipeline (pipeline.go).
	progress *Progress
	queue    []queued
	inQueue  map[entry]bool
	// The running request's ledger (ledgersession.go); ownsLock: it was opened for this request.
	own      ownedRun
	ownsLock bool
	// kept is the ledger the last request opened, reopened by the next one so that a serving helper re-reads only
	// the stack files others changed; nil after a failed open.
	kept *ledger.Ledger
	// health is the checked real servers' health for read-back, loaded once per request (health.go).
	health *healthView
	// warnedStrays: this process said once that it ignores stray files in the ledger directory.
	warnedStrays bool
	// guard is held by the goroutine running a request except while it waits on the kernel (guard.go).
	guard guard
}

// defaultLockWait is how long a request waits for the ledger lock unless the helper sets LockWait; defaultScanWait
// the same for ScanWait.
const (
	defaultLockWait = 10 * time.Second
	defaultScanWait = 5 * time.Second
)

// New makes an engine for a kernel connection, the running kernel's version and a module loader (may be nil).
func New(k Kernel, kv ipvs.KernelVersion, modprobe Modprober) *Engine {
	exe, _ := os.Executable() // /proc/self/exe; "" leaves the boot unit's ExecStart to fail verification loudly
	return &Engine{k: k, kv: kv, modprobe: modprobe, LockWait: defaultLockWait, ScanWait: defaultScanWait, Exe: exe,
		Sysctl: sysctl.Proc("/proc/sys"), Modules: SysModules{Dir: "/sys/module"}, Net: netif.RTNL{Timeout: defaultLockWait}, guard: newGuard()}
}

// fullDumpThreshold: a batch touching more services than this reads them with one dump instead of a GET each.
const fullDumpThreshold = 8

// Run executes a request's operations in order; each one succeeds or fails on its own.
func (e *Engine) Run(req protocol.Request) protocol.Response {
	return e.RunTracked(req, NewProgress(req))
}

// RunTracked is Run settling each op's result in p (made by NewProgress(req)) as soon as it is known.
func (e *Engine) RunTracked(req protocol.Request, p *Progress) protocol.Response {
	return e.run(req, p, nil)
}

// run is RunTracked with the ledger led already open (and locked) by the caller, or nil to open it when needed.
func (e *Engine) run(req protocol.Request, p *Progress, led *ledger.Ledger) protocol.Response {
	resp := protocol.Response{V: protocol.Version}
	e.guard.hold()
	defer e.guard.release()
	defer e.guarded()()
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
	e.progress, e.inQueue, e.vips = p, map[entry]bool{}, newVipRun()
	e.openLedger(ops, led)
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
		p.settle(i, result(e.runOp(i, op)))
	}
	e.sendQueued()
	e.finishLedger(ops)
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

func (e *Engine) runOp(idx int, op *protocol.Op) (protocol.Result, *protocol.Error) {
	switch op.Name {
	case "getService":
		return e.withHealth(op, result2(e.getService(op)))
	case "getDest":
		return e.withHealth(op, result2(e.getDest(op)))
	case "dump":
		return e.withHealth(op, result2(e.dump()))
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
	case "ensureSettings":
		return e.ensureSettings(idx, op)
	case "deleteSettings":
		return e.deleteSettings(idx, op)
	case "getSettings":
		return e.getSettings(op)
	case "ensureHost":
		return e.ensureHost(op)
	case "deleteHost":
		return e.deleteHost(op)
	case "getHost":
		return e.getHost(op)
	}
	return nil, &protocol.Error{Code: protocol.CodeInternal, Message: "operation " + op.Name + " has no handler"}
}
