package health

import (
	"fmt"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
)

// Kernel is the part of the IPVS netlink surface the checker uses; *ipvs.Conn implements it.
type Kernel interface {
	Dests(ipvs.ServiceKey) ([]ipvs.Dest, error)
	NewDest(ipvs.ServiceKey, ipvs.Dest) error
	SetDest(ipvs.ServiceKey, ipvs.Dest) error
	DelDest(ipvs.ServiceKey, ipvs.DestKey) error
}

// Outcome is what one pass over a service did: an action line per real server it changed ("quiesced, weight 5 →
// 0"), lines about the service (the sorry server, minHealthy), and whether the state to persist changed.
type Outcome struct {
	Actions map[Key]string
	Lines   []string
	Changed bool
}

// Apply brings one service's checked real servers to the plan. It changes only those the plan concerns: a
// depooled one is held at weight 0 (or kept out, with onFailure remove) even when an `up` put it back meanwhile; a
// recovered one gets its declared settings back; a healthy one the checker did not depool is left alone, so a hand
// edit of its weight stays visible as drift. The sorry server is added while the plan wants it and removed after.
func Apply(k Kernel, svc ipvs.ServiceKey, cfg Config, st *State, p Plan) (Outcome, error) {
	out := Outcome{Actions: map[Key]string{}}
	list, err := k.Dests(svc)
	if err != nil {
		return out, fmt.Errorf("reading the real servers of %s: %w", SvcName(svc), err)
	}
	cur := map[ipvs.DestKey]ipvs.Dest{}
	for _, d := range list {
		cur[d.DestKey] = d
	}
	kept := map[ipvs.DestKey]bool{}
	for _, d := range p.Kept {
		kept[d] = true
	}
	var firstErr error
	fail := func(err error) {
		if firstErr == nil {
			firstErr = err
		}
	}
	for key, t := range cfg.Targets {
		if key.Svc != svc {
			continue
		}
		ds := st.Dests[key]
		if ds == nil {
			continue // never probed yet: nothing to decide
		}
		if ds.Kept != kept[key.Dest] {
			ds.Kept, out.Changed = kept[key.Dest], true
		}
		d, present := cur[key.Dest]
		switch {
		case p.Depool[key.Dest] && t.Check.OnFailure == "remove":
			if present {
				if err := k.DelDest(svc, key.Dest); err != nil {
					fail(fmt.Errorf("removing %s: %w", Name(key), err))
					continue
				}
				out.Actions[key] = fmt.Sprintf("removed (weight was %d)", d.Weight)
			}
			if !ds.Depooled {
				ds.Depooled, out.Changed = true, true
			}
		case p.Depool[key.Dest]:
			if present && d.Weight != 0 {
				was := d.Weight
				d.Weight = 0
				if err := k.SetDest(svc, d); err != nil {
					fail(fmt.Errorf("quiescing %s: %w", Name(key), err))
					continue
				}
				out.Actions[key] = fmt.Sprintf("quiesced, weight %d → 0", was)
			}
			if !ds.Depooled {
				ds.Depooled, out.Changed = true, true
			}
		case ds.Depooled:
			// Back: the declared entry as the ledger records it (an `up` meanwhile recorded any new weight).
			want := t.Declared
			switch {
			case !present:
				if err := k.NewDest(svc, want); err != nil {
					fail(fmt.Errorf("re-adding %s: %w", Name(key), err))
					continue
				}
				out.Actions[key] = fmt.Sprintf("re-added at weight %d", want.Weight)
			case d.DestSettings != want.DestSettings:
				if err := k.SetDest(svc, want); err != nil {
					fail(fmt.Errorf("restoring %s: %w", Name(key), err))
					continue
				}
				out.Actions[key] = fmt.Sprintf("restored, weight %d → %d", d.Weight, want.Weight)
			}
			ds.Depooled, out.Changed = false, true
		}
	}
	if len(p.Kept) > 0 {
		n := 0
		for key := range cfg.Targets {
			if key.Svc == svc {
				n++
			}
		}
		out.Lines = append(out.Lines, SvcName(svc)+": "+keptLine(p, n))
	}
	if err := applySorry(k, svc, cfg, st, p, cur, &out); err != nil {
		fail(err)
	}
	return out, firstErr
}

func applySorry(k Kernel, svc ipvs.ServiceKey, cfg Config, st *State, p Plan, cur map[ipvs.DestKey]ipvs.Dest, out *Outcome) error {
	added, had := st.Sorry[svc]
	if p.Sorry {
		sorry := cfg.Services[svc].SorryServer.SorryDest()
		if had && added != sorry.DestKey {
			// The sorry server was changed by an `up`: the old one goes first.
			if err := removeSorry(k, svc, added, cur, out); err != nil {
				return err
			}
			had = false
		}
		if _, present := cur[sorry.DestKey]; !present {
			if err := k.NewDest(svc, sorry); err != nil {
				return fmt.Errorf("adding the sorry server %s to %s: %w", ipvs.HostPort(sorry.Addr, sorry.Port), SvcName(svc), err)
			}
			out.Lines = append(out.Lines, fmt.Sprintf("%s: no real server is healthy; sorry server %s added (weight 1)", SvcName(svc), ipvs.HostPort(sorry.Addr, sorry.Port)))
		}
		if !had {
			st.Sorry[svc], out.Changed = sorry.DestKey, true
		}
		return nil
	}
	if had {
		if err := removeSorry(k, svc, added, cur, out); err != nil {
			return err
		}
		delete(st.Sorry, svc)
		out.Changed = true
	}
	return nil
}

func removeSorry(k Kernel, svc ipvs.ServiceKey, d ipvs.DestKey, cur map[ipvs.DestKey]ipvs.Dest, out *Outcome) error {
	if _, present := cur[d]; !present {
		return nil
	}
	if err := k.DelDest(svc, d); err != nil {
		return fmt.Errorf("removing the sorry server %s from %s: %w", ipvs.HostPort(d.Addr, d.Port), SvcName(svc), err)
	}
	out.Lines = append(out.Lines, fmt.Sprintf("%s: a real server is healthy again; sorry server %s removed", SvcName(svc), ipvs.HostPort(d.Addr, d.Port)))
	return nil
}
