package engine

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ledger/ledgertest"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
)

// BenchmarkOwnedCreateRequest is what a serving helper spends on one request of a `pulumi up` that creates real
// servers one or two at a time (the engine's pace): one owned ensureDest "fail" into a service of 200, ledger included.
func BenchmarkOwnedCreateRequest(b *testing.B) {
	ledgertest.Use(b)
	e := New(newFake(), ipvs.KernelVersion{Major: 6, Minor: 1}, nil)
	req := func(op string) protocol.Request {
		return protocol.Request{V: protocol.Version, Ops: []json.RawMessage{json.RawMessage(op)}}
	}
	dest := func(i int) string {
		return as(withOnExisting(destJSON("ensureDest", "192.0.2.1", fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), 1), "fail"),
			owner(stackA)+fmt.Sprintf(`,"holder":"urn:pulumi:e2e::fixture::pulumi-nodejs:dynamic/ipvs:RealServer::rs-%d"`, i))
	}
	ok := func(r protocol.Response) {
		if r.Results[0]["ok"] != true {
			b.Fatal(r.Results[0])
		}
	}
	ok(e.Run(req(as(svcJSON("192.0.2.1", "rr"), owner(stackA)))))
	for i := 1; i <= 200; i++ {
		ok(e.Run(req(dest(i))))
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ok(e.Run(req(dest(1000 + i))))
	}
}
