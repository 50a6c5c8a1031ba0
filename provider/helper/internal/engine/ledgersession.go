package engine

import (
	"fmt"
	"os"
	"time"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ledger"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/managers"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
)

// A request's session with the ownership ledger (PROTOCOL.md "Ownership ledger"): a request with any owner holds the
// ledger's lock for its whole run. Write ops with an owner are checked against the ledger before they are queued
// (rules 1, 2 and 4, ownership.go) and recorded from their settled results (rule 3, record); the changed stack files
// are written before the response.

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
