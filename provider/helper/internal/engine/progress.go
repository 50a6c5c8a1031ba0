package engine

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
)

// Progress is a request's results as they settle, shared with the helper's watchdog: when a kernel call or modprobe
// hangs, the watchdog answers the request from it (Expired) while the goroutine running the request is still stuck.
type Progress struct {
	mu      sync.Mutex
	ops     []json.RawMessage
	results []protocol.Result // nil: not settled yet
	stage   string            // what the request waits on before its ops run, "" once they run
	// saveSettled, set while the running request holds the ledger, saves the records of its settled ops when it
	// expires (Engine.saveSettled).
	saveSettled func(within time.Duration) (failed []int, known bool, err error)
}

// onExpiry sets what saves the settled ops' ledger records should the request expire (nil: nothing to save).
func (p *Progress) onExpiry(save func(time.Duration) ([]int, bool, error)) {
	p.mu.Lock()
	p.saveSettled = save
	p.mu.Unlock()
}

// saveGrace is how long the watchdog spends saving the settled ops' ledger records: a tenth of the request's
// limit, which the provider's own deadline leaves (it gives the helper 90% of it).
func saveGrace(limit time.Duration) time.Duration { return limit / 10 }

// NewProgress starts the progress of a request: nothing settled.
func NewProgress(req protocol.Request) *Progress {
	return &Progress{ops: req.Ops, results: make([]protocol.Result, len(req.Ops))}
}

// Stage records what the request is doing before its first op (e.g. "connecting to IPVS"); "" when the ops run.
func (p *Progress) Stage(what string) {
	p.mu.Lock()
	p.stage = what
	p.mu.Unlock()
}

func (p *Progress) settle(i int, r protocol.Result) {
	p.mu.Lock()
	p.results[i] = r
	p.mu.Unlock()
}

// snapshot copies the results: the engine's goroutine may still settle ops after the watchdog answered.
func (p *Progress) snapshot() []protocol.Result {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append(make([]protocol.Result, 0, len(p.results)), p.results...)
}

// Hanging is why a deadline passed, as the helper's messages say it.
const Hanging = "a kernel call or modprobe is hanging on this director"

// Expired answers the request when it did not finish within limit: ops that finished keep their results, the op that
// was running and every later one get TIMEOUT (an op that cannot be decoded still gets its BAD_REQUEST).
//
// An op whose success changed the ledger keeps its ok only once its record is saved: the records of the settled ops
// are saved first, and when that fails (or cannot be done in time) those ops are answered with LEDGER instead.
func (p *Progress) Expired(limit time.Duration) protocol.Response {
	p.mu.Lock()
	stage, save := p.stage, p.saveSettled
	p.mu.Unlock()
	var unrecorded func(i int, op *protocol.Op) bool
	var saveErr error
	if save != nil {
		failed, known, err := save(saveGrace(limit))
		saveErr = err
		switch {
		case err == nil:
		case known:
			unrecorded = func(i int, _ *protocol.Op) bool { return slices.Contains(failed, i) }
		default: // which ops are recorded cannot be told: every settled change with an owner may not be
			unrecorded = func(_ int, op *protocol.Op) bool { return op.Owner != "" && !op.DryRun && changesLedger[op.Name] }
		}
	}
	results := p.snapshot()
	if unrecorded != nil {
		for i, r := range results {
			if r == nil || r["ok"] != true {
				continue
			}
			if op, derr := protocol.DecodeOp(p.ops[i]); derr == nil && unrecorded(i, op) {
				results[i] = protocol.Fail(notRecorded(op, saveErr))
			}
		}
	}
	stopped, stoppedAt := -1, ""
	for i, r := range results {
		if r != nil {
			continue
		}
		op, derr := protocol.DecodeOp(p.ops[i])
		if derr != nil {
			results[i] = protocol.Fail(derr)
			continue
		}
		what, why := describe(op), Hanging
		switch {
		case stopped < 0 && stage != "":
			why = "stopped while " + stage + ": " + Hanging
		case stopped >= 0:
			why = fmt.Sprintf("the request stopped at op %d, %s: %s", stopped, stoppedAt, Hanging)
		}
		if stopped < 0 {
			stopped, stoppedAt = i, what
		}
		results[i] = protocol.Fail(&protocol.Error{Code: protocol.CodeTimeout,
			Message: fmt.Sprintf("%s did not finish within %s (%s).", what, limit, why)})
	}
	return protocol.Response{V: protocol.Version, Results: results, Error: &protocol.Error{Code: protocol.CodeTimeout,
		Message: fmt.Sprintf("the request did not finish within %s (%s); the helper exits, the next request needs a new one.", limit, Hanging)}}
}

// Watch runs a request under a deadline: run (on its own goroutine) settles its results in the Progress it is given.
// A kernel call can block where no socket deadline reaches (the kernel's own modprobe of ip_vs, inside sendmsg), so
// past limit the answer is Expired's and hung is true: run's goroutine is stuck and the process must exit.
func Watch(req protocol.Request, limit time.Duration, run func(*Progress) protocol.Response) (resp protocol.Response, hung bool) {
	p := NewProgress(req)
	done := make(chan protocol.Response, 1)
	go func() { done <- run(p) }()
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case resp = <-done:
		return resp, false
	case <-timer.C:
	}
	select {
	case resp = <-done: // it finished as the deadline passed
		return resp, false
	default:
		return p.Expired(limit), true
	}
}

// describe names what an op does and to which entry, for messages about the op as a whole.
func describe(op *protocol.Op) string {
	svc := op.Service.String()
	switch op.Name {
	case "ensureService":
		return "ensuring " + svc
	case "deleteService":
		return "deleting " + svc
	case "getService":
		return "reading " + svc
	case "ensureDest":
		return fmt.Sprintf("ensuring %s of %s", destKey(op), svc)
	case "deleteDest":
		return fmt.Sprintf("deleting %s of %s", destKey(op), svc)
	case "getDest":
		return fmt.Sprintf("reading %s of %s", destKey(op), svc)
	case "dump":
		return "reading the IPVS table"
	case "ensureHost":
		return "preparing this host for " + op.Holder
	case "deleteHost":
		return "putting back what " + op.Holder + " changed on this host"
	case "getHost":
		return "reading what " + op.Holder + " prepared on this host"
	case "setTimeouts":
		return "setting the connection timeouts"
	case "getTimeouts":
		return "reading the connection timeouts"
	case "ensureDaemon":
		return "starting the " + ipvs.DaemonStateName(op.Daemon.State) + " sync daemon on " + op.Daemon.Interface
	case "deleteDaemon":
		return "stopping the " + ipvs.DaemonStateName(op.State) + " sync daemon"
	case "getDaemons":
		return "reading the sync daemons"
	case "info":
		return "reading IPVS info"
	case "zero":
		if op.Service.AF != 0 {
			return "zeroing the counters of " + svc
		}
		return "zeroing all counters"
	case "flush":
		return "flushing the IPVS table"
	case "ensureSettings":
		return "setting the director settings of stack " + op.Owner
	case "deleteSettings":
		return "putting back the director settings of stack " + op.Owner
	case "getSettings":
		return "reading the director settings"
	}
	return "operation " + op.Name
}
