package engine

import (
	"fmt"
	"time"

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

// syncUnits keeps the boot unit (any stack has records) and the checker's unit (any stack declares a check) in step
// with the ledger just saved.
func syncUnits(l *ledger.Ledger, exe string, limit time.Duration) error {
	if _, err := ledger.SyncUnit(len(l.Stacks()) > 0, exe, limit); err != nil {
		return fmt.Errorf("the ledger was saved, but the boot unit could not be kept in step: %v", err)
	}
	if _, err := ledger.SyncHealthUnit(l.HasChecks(), exe, limit); err != nil {
		return fmt.Errorf("the ledger was saved, but the health check unit %s could not be kept in step: %v", ledger.HealthUnitName, err)
	}
	return nil
}
