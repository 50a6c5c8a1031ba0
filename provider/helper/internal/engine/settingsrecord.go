package engine

import (
	"encoding/json"
	"fmt"
	"maps"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ledger"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/sysctl"
)

// Director settings (PROTOCOL.md "Director settings ops"): at most one stack's record per director, holding what it
// applied and the values found before it first set each item, so that dropping an item puts the director back.

// settingsRecord is a stack's decoded settings record: the managed items are those of applied.
type settingsRecord struct{ applied, original protocol.Settings }

func emptySettings() protocol.Settings { return protocol.Settings{Sysctls: map[string]sysctl.Value{}} }

func (r settingsRecord) empty() bool {
	return len(r.applied.Sysctls) == 0 && r.applied.Timeouts == (ipvs.Timeouts{}) && len(r.applied.Daemons) == 0 && r.applied.FTP == nil && r.applied.HealthMetricsDir == ""
}

// withNew is r with want's items added, before any of them is applied: applied holds the old items and want's, and
// original gains now's value of every newly managed item. Stored first, it lets a failure half-way put everything
// back.
func (r settingsRecord) withNew(want protocol.Settings, now current) settingsRecord {
	// The metrics directory is not a kernel item: nothing to put back, so want's from the start.
	m := settingsRecord{applied: emptySettings(), original: r.original}
	m.applied.HealthMetricsDir = want.HealthMetricsDir
	m.original.Sysctls = maps.Clone(r.original.Sysctls)
	m.original.Daemons = append([]ipvs.Daemon(nil), r.original.Daemons...)
	maps.Copy(m.applied.Sysctls, r.applied.Sysctls)
	for n, v := range want.Sysctls {
		if _, ok := r.applied.Sysctls[n]; !ok {
			m.original.Sysctls[n] = now.sysctls[n]
		}
		m.applied.Sysctls[n] = v
	}
	m.applied.Timeouts = r.applied.Timeouts
	wantT, appliedT, cur := timeoutFields(&want.Timeouts), timeoutFields(&r.applied.Timeouts), timeoutFields(&now.timeouts)
	for i, orig := range timeoutFields(&m.original.Timeouts) {
		if *wantT[i] != 0 && *appliedT[i] == 0 {
			*orig = *cur[i]
		}
		if *wantT[i] != 0 {
			*timeoutFields(&m.applied.Timeouts)[i] = *wantT[i]
		}
	}
	for _, st := range daemonStates {
		w, a := want.Daemon(st), r.applied.Daemon(st)
		if w != nil && a == nil {
			for _, d := range now.daemons {
				if d.State == st {
					m.original.Daemons = append(m.original.Daemons, d)
				}
			}
		}
		if w == nil {
			w = a
		}
		if w != nil {
			m.applied.Daemons = append(m.applied.Daemons, *w)
		}
	}
	m.applied.FTP = r.applied.FTP
	if want.FTP != nil {
		if r.applied.FTP == nil {
			// As found: empty (not nil) records "not loaded", so dropping the item unloads it again.
			m.original.FTP = append([]uint16{}, now.ftp...)
		}
		m.applied.FTP = want.FTP
	}
	return m
}

// narrowedTo is the record once want is applied: exactly want's items, with their originals from r.
func (r settingsRecord) narrowedTo(want protocol.Settings) settingsRecord {
	f := settingsRecord{applied: want, original: emptySettings()}
	for n := range want.Sysctls {
		f.original.Sysctls[n] = r.original.Sysctls[n]
	}
	wantT, orig := timeoutFields(&want.Timeouts), timeoutFields(&r.original.Timeouts)
	for i, out := range timeoutFields(&f.original.Timeouts) {
		if *wantT[i] != 0 {
			*out = *orig[i]
		}
	}
	for _, d := range want.Daemons {
		if o := r.original.Daemon(d.State); o != nil {
			f.original.Daemons = append(f.original.Daemons, *o)
		}
	}
	if want.FTP != nil {
		f.original.FTP = r.original.FTP
	}
	return f
}

func (e *Engine) loadSettings(owner string) (settingsRecord, *protocol.Error) {
	rec := settingsRecord{emptySettings(), emptySettings()}
	raw := e.own.led.Settings(owner)
	if raw == nil {
		return rec, nil
	}
	var perr *protocol.Error
	if rec.applied, perr = protocol.DecodeSettings(raw.Applied, true); perr == nil {
		rec.original, perr = protocol.DecodeSettings(raw.Original, true)
	}
	if perr != nil {
		return rec, ledgerError(fmt.Errorf("the settings record of stack %s in %s is not valid: %s", owner, ledger.FileName(owner), perr.Message))
	}
	return rec, nil
}

// storeSettings puts a stack's record in the ledger (an empty one is dropped).
func (e *Engine) storeSettings(idx int, owner string, rec settingsRecord) {
	var set *ledger.SettingsRecord
	if !rec.empty() {
		applied, _ := json.Marshal(protocol.SettingsJSON(rec.applied))
		original, _ := json.Marshal(protocol.SettingsJSON(rec.original))
		set = &ledger.SettingsRecord{Applied: applied, Original: original}
	}
	if e.own.led.SetSettings(owner, set) {
		e.own.ownOps = append(e.own.ownOps, idx)
	}
}

// moveSettings gives a stack's settings record, as it is (applied values and originals), to another stack.
func (e *Engine) moveSettings(idx int, from, to string) {
	rec := e.own.led.Settings(from)
	moved := e.own.led.SetSettings(to, rec)
	if e.own.led.SetSettings(from, nil) || moved {
		e.own.ownOps = append(e.own.ownOps, idx)
	}
}
