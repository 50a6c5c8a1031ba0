package engine

import (
	"testing"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
)

// Two serving helpers (two engines, each keeping its ledger between requests) on one director see each other's
// records at every request.
func TestServingEnginesShareTheLedger(t *testing.T) {
	f, a := newOwnedEngine(t)
	b := New(f, ipvs.KernelVersion{Major: 6, Minor: 1}, nil)
	ensure := destJSON("ensureDest", "192.0.2.1", "10.0.0.1", 1)
	wantCode(t, "A creates", run(t, a, as(svcJSON("192.0.2.1", "rr"), owner(stackA)), as(ensure, owner(stackA)))[1], "ok")
	wantCode(t, "B is refused", run(t, b, as(ensure, owner(stackB)))[0], protocol.CodeOwned, "stack "+stackA)
	wantCode(t, "B takes it over", run(t, b, as(ensure, owner(stackB)+`,"takeover":true`))[0], "ok")
	wantCode(t, "A is refused now", run(t, a, as(ensure, owner(stackA)))[0], protocol.CodeOwned, "stack "+stackB)
	wantCode(t, "B deletes it", run(t, b, as(destJSON("deleteDest", "192.0.2.1", "10.0.0.1", 0), owner(stackB)))[0], "ok")
	wantCode(t, "A recreates it", run(t, a, as(ensure, owner(stackA)))[0], "ok")
	if count(stackFile(t, stackA), "dests") != 1 || stackFile(t, stackB) != nil {
		t.Fatalf("ledger: %v %v", stackFile(t, stackA), stackFile(t, stackB))
	}
}
