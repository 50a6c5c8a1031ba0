package ledger_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ledger"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ledger/ledgertest"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
)

// BenchmarkOwnedBatch is what every owned request costs the helper beyond the kernel: open (lock + load) a ledger of
// 1 service + 400 real servers, record one more real server, save. cold: a fresh process (apply) loads the ledger
// whole; serving: `ipvs-helper serve` reopens the ledger its previous request left.
func BenchmarkOwnedBatch(b *testing.B) {
	for _, c := range []struct {
		name  string
		reuse bool
	}{{"cold", false}, {"serving", true}} {
		b.Run(c.name, func(b *testing.B) {
			ledgertest.Use(b)
			dest := func(i int) (ipvs.DestKey, protocol.DestSpecOut) {
				k := ipvs.DestKey{AF: ipvs.AFInet, Addr: netip.AddrFrom4([4]byte{10, 20, byte(i / 250), byte(i%250 + 1)}), Port: 8080}
				return k, protocol.DestJSON(ipvs.Dest{DestKey: k, DestSettings: ipvs.DestSettings{Weight: 1}}).DestSpecOut
			}
			l, err := ledger.Open(time.Now().Add(time.Second), nil)
			if err != nil {
				b.Fatal(err)
			}
			l.PutService(stack, key, spec("wrr"))
			for i := 0; i < 400; i++ {
				k, s := dest(i)
				l.PutDest(stack, "", key, k, s)
			}
			if err := l.Save(); err != nil {
				b.Fatal(err)
			}
			l.Close()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if !c.reuse {
					l = nil
				}
				if l, err = ledger.Open(time.Now().Add(time.Second), l); err != nil {
					b.Fatal(err)
				}
				k, s := dest(400 + i%2)
				s.Weight = uint32(i)
				l.PutDest(stack, "", key, k, s)
				if err := l.Save(); err != nil {
					b.Fatal(err)
				}
				l.Close()
			}
		})
	}
}
