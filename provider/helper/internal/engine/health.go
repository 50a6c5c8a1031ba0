package engine

import (
	"fmt"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/health"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"path/filepath"
	"slices"
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
	if _, err := ledger.SyncUnit(bootWanted(l), exe, limit); err != nil {
		return fmt.Errorf("the ledger was saved, but the boot unit could not be kept in step: %v", err)
	}
	if _, err := ledger.SyncHealthUnit(l.HasChecks(), exe, metricsDir(l), limit); err != nil {
		return fmt.Errorf("the ledger was saved, but the health check unit %s could not be kept in step: %v", ledger.HealthUnitName, err)
	}
	return nil
}

// metricsDir is the healthMetricsDirectory the director's settings record (of the one stack holding them), "" for
// none or a record that cannot be read (the checker then runs without metrics rather than not at all).
func metricsDir(l *ledger.Ledger) string {
	rec := l.Settings(l.SettingsOwner())
	if rec == nil {
		return ""
	}
	s, perr := protocol.DecodeSettings(rec.Applied, true)
	if perr != nil {
		return ""
	}
	return s.HealthMetricsDir
}

// healthView is what read-back adds for checked real servers: the ledger's checks and declared entries, and the
// checker's state file, read without the lock (both are replaced whole or appended by whole lines).
type healthView struct {
	v   *view // the request it was loaded for
	cfg health.Config
	st  *health.State
}

// HealthStatePath is the checker's state file that read-back reports, HealthLockPath the lock it holds while it runs
// (variables for tests).
var (
	HealthStatePath = filepath.Join(health.StateDir, "state.json")
	HealthLockPath  = filepath.Join(health.StateDir, health.LockFile)
)

type opResult struct {
	res  protocol.Result
	perr *protocol.Error
}

func result2(res protocol.Result, perr *protocol.Error) opResult { return opResult{res, perr} }

// healthOf loads the read-back view once per request: the request's ledger (readLedger: without the lock when the
// request holds none) and the checker's state.
func (e *Engine) healthOf() *healthView {
	hv := e.healthState()
	if hv.cfg.Targets == nil {
		hv.cfg = health.Config{Targets: map[health.Key]health.Target{}}
		if l, perr := e.readLedger(); perr == nil {
			hv.cfg = health.ConfigOf(l)
		}
	}
	return hv
}

// healthState loads the checker's state once per request (a missing or unreadable file: nothing is held).
func (e *Engine) healthState() *healthView {
	if e.health == nil || e.health.v != e.v {
		e.health = &healthView{v: e.v, st: health.NewState()}
		if st, err := health.ReadState(HealthStatePath); err == nil {
			e.health.st = st
		}
	}
	return e.health
}

// held tells whether the checker holds this real server out of the pool, and how: an ensureDest then records the
// declared weight without putting a dead server back in the kernel (the checker restores it on recovery). The check
// is the op's own when it gives one, else the one the owner's record holds.
func (e *Engine) held(op *protocol.Op, key ipvs.DestKey) (check *protocol.HealthCheck, ds *health.DestState) {
	if op.Owner == "" || e.own.led == nil {
		return nil, nil
	}
	switch c := op.HealthCheck; {
	case c.Set && c.Null:
		return nil, nil // the check goes: the declared entry is applied as it is
	case c.Set:
		check = &c.Val
	default:
		check = e.own.led.DestCheck(op.Owner, op.Service, key)
	}
	if check == nil {
		return nil, nil
	}
	ds = e.healthState().st.Dests[health.Key{Svc: op.Service, Dest: key}]
	if ds == nil || !ds.Depooled {
		return nil, nil
	}
	return check, ds
}

// heldResult is ensureDest's answer for a real server the checker holds: the entry as now in the kernel (nil: the
// checker removed it, and it is reported as declared), with its health and the declared weight, which record()
// writes to the ledger.
func heldResult(changed, created bool, now *ipvs.Dest, declared ipvs.Dest, check *protocol.HealthCheck, ds *health.DestState) protocol.Result {
	d := declared
	if now != nil {
		d = *now
	}
	out := protocol.DestJSON(d)
	out.Health = &protocol.DestHealthOut{State: "unhealthy", Since: ds.Since.UTC().Format(time.RFC3339), Last: ds.Last, Depooled: true,
		Removed: now == nil, Kept: ds.Kept, DeclaredWeight: declared.Weight, Check: check.Type}
	if ds.Healthy {
		out.Health.State = "healthy" // recovered, not yet restored by the checker's next pass
	}
	return protocol.Result{"changed": changed, "created": created, "dest": out}
}

// withHealth adds to getService, getDest and dump results, per real server a stack declared a check for, its
// health and declared weight (protocol.DestHealthOut); a real server the checker removed (onFailure remove) is
// reported as declared, so that a refresh shows no change for it.
func (e *Engine) withHealth(op *protocol.Op, r opResult) (protocol.Result, *protocol.Error) {
	if r.perr != nil {
		return r.res, r.perr
	}
	hv := e.healthOf()
	if len(hv.cfg.Targets) == 0 {
		return r.res, nil
	}
	switch op.Name {
	case "getDest":
		key := health.Key{Svc: op.Service, Dest: destKey(op)}
		rep := health.Report(hv.cfg, hv.st, key)
		if rep == nil {
			return r.res, nil
		}
		if d, ok := r.res["dest"].(protocol.DestOut); ok {
			d.Health = rep
			r.res["dest"] = d
		} else if sv, err := e.v.service(op.Service); err == nil && sv != nil && rep.Removed {
			r.res["dest"] = declaredOut(hv, key, rep)
		}
	case "getService":
		if s, ok := r.res["service"].(protocol.ServiceOut); ok {
			r.res["service"] = annotate(hv, op.Service, s)
		}
	case "dump":
		list := r.res["services"].([]protocol.ServiceOut)
		for i, s := range list {
			if k, e := protocol.ServiceKeyOf(s.ServiceKeyOut); e == nil {
				list[i] = annotate(hv, k, s)
			}
		}
		// Whether anything applies the checks: a stopped checker changes nothing (fail static), which status says.
		// A lock that cannot be read does not fail the dump (a refresh needs the table, not the checker).
		c := protocol.CheckerOut{}
		if running, err := health.Running(HealthLockPath); err != nil {
			c.Error = err.Error()
		} else {
			c.Running = running
		}
		r.res["checker"] = c
	}
	return r.res, nil
}

// annotate adds health to a service's checked real servers, and the ones the checker removed, as declared.
func annotate(hv *healthView, svc ipvs.ServiceKey, s protocol.ServiceOut) protocol.ServiceOut {
	if s.Dests == nil {
		return s
	}
	dests := *s.Dests
	seen := map[ipvs.DestKey]bool{}
	for i, d := range dests {
		k, e := protocol.DestKeyOf(d.Address, d.Port)
		if e != nil {
			continue
		}
		seen[k] = true
		dests[i].Health = health.Report(hv.cfg, hv.st, health.Key{Svc: svc, Dest: k})
		if sorry, ok := hv.st.Sorry[svc]; ok && sorry == k {
			dests[i].Sorry = true
		}
	}
	var removed []health.Key
	for k := range hv.cfg.Targets {
		if k.Svc == svc && !seen[k.Dest] {
			removed = append(removed, k)
		}
	}
	slices.SortFunc(removed, func(a, b health.Key) int {
		return ipvs.CmpDests(&ipvs.Dest{DestKey: a.Dest}, &ipvs.Dest{DestKey: b.Dest})
	})
	for _, k := range removed {
		if rep := health.Report(hv.cfg, hv.st, k); rep.Removed {
			dests = append(dests, declaredOut(hv, k, rep))
		}
	}
	s.Dests = &dests
	return s
}

func declaredOut(hv *healthView, k health.Key, rep *protocol.DestHealthOut) protocol.DestOut {
	d := protocol.DestJSON(hv.cfg.Targets[k].Declared)
	d.Health = rep
	return d
}
