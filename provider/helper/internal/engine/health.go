package engine

import (
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ledger"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
)

// recordHealth records an ensure's health settings (issue 27) with the entry record() just put in the ledger, in
// the same request as the kernel change; a field the op left out keeps what the ledger has. changed: the ledger
// differs from before.
func recordHealth(l *ledger.Ledger, op *protocol.Op) (changed bool) {
	switch op.Name {
	case "ensureDest":
		if c := op.HealthCheck; c.Set {
			var check *protocol.HealthCheck
			if !c.Null {
				v := c.Val
				check = &v
			}
			return l.SetDestCheck(op.Owner, op.Service, destKey(op), check)
		}
	case "ensureService":
		if !op.MinHealthy.Set && !op.SorryServer.Set {
			return false
		}
		h := protocol.ServiceHealth{}
		if cur := l.ServiceHealth(op.Owner, op.Service); cur != nil {
			h = *cur
		}
		if m := op.MinHealthy; m.Set {
			h.MinHealthy = nil
			if !m.Null {
				v := m.Val
				h.MinHealthy = &v
			}
		}
		if s := op.SorryServer; s.Set {
			h.SorryServer = nil
			if !s.Null {
				v := s.Val
				h.SorryServer = &v
			}
		}
		return l.SetServiceHealth(op.Owner, op.Service, &h)
	}
	return false
}
