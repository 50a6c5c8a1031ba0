package engine

import (
	"fmt"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/savefmt"
)

// Change is one step of a restore: a human-readable line and the kernel call that makes it.
type Change struct {
	Text  string
	apply func() error
}

// PlanRestore compares the kernel table with the parsed rules and lists the fewest changes that converge it:
// entries that match are untouched (their connections and counters survive), differing ones are SET, missing
// ones added and unlisted ones deleted. Thresholds are not in the save format: a line without -x/-y keeps the
// current ones.
func (e *Engine) PlanRestore(rules []savefmt.ServiceRule) ([]Change, error) {
	tbl, err := ReadTable(e.k)
	if err != nil {
		return nil, fmt.Errorf("reading the IPVS table: %w", err)
	}
	cur := map[ipvs.ServiceKey]ipvs.ServiceDests{}
	for _, sd := range tbl {
		cur[sd.Service.ServiceKey] = sd
	}
	wanted := map[ipvs.ServiceKey]bool{}
	for _, r := range rules {
		wanted[r.Service.ServiceKey] = true
	}
	var plan []Change
	for _, sd := range tbl {
		if k := sd.Service.ServiceKey; !wanted[k] {
			plan = append(plan, Change{"delete " + savefmt.ServiceLine(sd.Service), func() error { return e.k.DelService(k) }})
		}
	}
	for _, r := range rules {
		s, k := r.Service, r.Service.ServiceKey
		have, exists := cur[k]
		switch {
		case !exists:
			plan = append(plan, Change{"add " + savefmt.ServiceLine(s), func() error { return e.withModules(s, func() error { return e.k.NewService(s) }) }})
		case have.Service.ServiceSettings != s.ServiceSettings:
			plan = append(plan, Change{"update " + savefmt.ServiceLine(s), func() error { return e.withModules(s, func() error { return e.k.SetService(s) }) }})
		}
		haveDests := map[ipvs.DestKey]ipvs.Dest{}
		for _, d := range have.Dests {
			haveDests[d.DestKey] = normalizeDest(d)
		}
		listed := map[ipvs.DestKey]bool{}
		for _, dr := range r.Dests {
			listed[dr.Dest.DestKey] = true
		}
		for _, d := range have.Dests {
			if dk := d.DestKey; !listed[dk] {
				plan = append(plan, Change{"delete " + savefmt.DestLine(k, d), func() error { return e.k.DelDest(k, dk) }})
			}
		}
		for _, dr := range r.Dests {
			d := dr.Dest
			old, ok := haveDests[d.DestKey]
			if ok && !dr.HasUThresh {
				d.UThresh = old.UThresh
			}
			if ok && !dr.HasLThresh {
				d.LThresh = old.LThresh
			}
			switch {
			case !ok:
				plan = append(plan, Change{"add " + savefmt.DestLine(k, d), func() error { return e.k.NewDest(k, d) }})
			case old.DestSettings != d.DestSettings:
				plan = append(plan, Change{"update " + savefmt.DestLine(k, d), func() error { return e.k.SetDest(k, d) }})
			}
		}
	}
	return plan, nil
}

// Apply runs one planned change.
func (c Change) Apply() error {
	if err := c.apply(); err != nil {
		return fmt.Errorf("%s: %w", c.Text, err)
	}
	return nil
}
