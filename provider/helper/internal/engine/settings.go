package engine

import (
	"fmt"
	"maps"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ledger"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/sysctl"
)

// The director settings ops (ensureSettings, deleteSettings, getSettings) over the items of sysctls.go,
// timeouts.go and daemons.go and the record of settingsrecord.go.

// current is what the director holds of the settings items, read before anything changes: a sysctl this kernel
// lacks then changes nothing.
type current struct {
	sysctls  map[string]sysctl.Value
	timeouts ipvs.Timeouts
	daemons  []ipvs.Daemon
	ftp      []uint16 // nil: ip_vs_ftp is not loaded
}

func (e *Engine) readCurrent(sysctls []string) (now current, perr *protocol.Error) {
	if now.sysctls, perr = e.readSysctls(sysctls); perr != nil {
		return now, perr
	}
	var err error
	if now.timeouts, err = e.k.Timeouts(); err != nil {
		return now, kernelError("reading the connection timeouts", err, false)
	}
	if now.daemons, err = e.k.Daemons(); err != nil {
		return now, kernelError("reading the sync daemons", err, false)
	}
	now.ftp, perr = e.ftpNow()
	return now, perr
}

func settingsOwned(doing, holder string) *protocol.Error {
	return &protocol.Error{Code: protocol.CodeOwned, Message: fmt.Sprintf(
		"%s refused: this director's settings belong to stack %s (in its ownership ledger); a director has one stack's DirectorSettings.", doing, holder)}
}

// ensureSettings: with formerOwner holding the settings (a renamed stack), the record moves to owner first, so
// nothing is put back and a running daemon with the same settings is not restarted; a formerOwner that does not
// hold them is judged as without it (as for services and dests).
func (e *Engine) ensureSettings(idx int, op *protocol.Op) (protocol.Result, *protocol.Error) {
	if e.own.err != nil {
		return nil, e.own.err
	}
	h := e.own.led.SettingsOwner()
	if perr := unreadableLedger(e.own.led, describe(op), "the director settings", op.Owner, h == ""); perr != nil {
		return nil, perr
	}
	if h == "" || h == op.Owner {
		return e.applySettings(idx, op)
	}
	if h != op.FormerOwner {
		return nil, settingsOwned("setting the director settings of stack "+op.Owner, h)
	}
	e.moveSettings(idx, h, op.Owner)
	res, perr := e.applySettings(idx, op)
	if perr != nil {
		// The caller's state still names the former owner (a failed update keeps it), so the record (now holding
		// whatever this op did, with the originals) goes back to it: its deleteSettings or a retry finds it.
		e.moveSettings(idx, op.Owner, h)
	}
	return res, perr
}

// applySettings makes op.Settings the managed set of op.Owner, which holds the settings or nobody does.
func (e *Engine) applySettings(idx int, op *protocol.Op) (protocol.Result, *protocol.Error) {
	want := op.Settings
	rec, perr := e.loadSettings(op.Owner)
	if perr != nil {
		return nil, perr
	}
	all := maps.Clone(rec.applied.Sysctls)
	maps.Copy(all, want.Sysctls)
	now, perr := e.readCurrent(names(all))
	if perr != nil {
		return nil, perr
	}
	// Until the end the record holds the old items too, so a failure half-way still knows how to put everything back.
	merged := rec.withNew(want, now)
	e.storeSettings(idx, op.Owner, merged)
	changed, perr := e.applyItems(rec, want, now)
	if perr != nil {
		return nil, perr
	}
	// Recorded only (the checker's unit takes it when the ledger is saved).
	changed = changed || rec.applied.HealthMetricsDir != want.HealthMetricsDir
	e.storeSettings(idx, op.Owner, merged.narrowedTo(want))
	managed, perr := e.managedNow(want)
	if perr != nil {
		return nil, perr
	}
	return protocol.Result{"changed": changed, "settings": protocol.SettingsJSON(managed)}, nil
}

// applyItems puts every item rec manages and want drops back to its original, and applies want's items.
func (e *Engine) applyItems(rec settingsRecord, want protocol.Settings, now current) (changed bool, perr *protocol.Error) {
	for _, apply := range []func() (bool, *protocol.Error){
		func() (bool, *protocol.Error) { return e.applySysctls(rec, want, now.sysctls) },
		func() (bool, *protocol.Error) { return e.applyTimeouts(rec, want, now.timeouts) },
		func() (bool, *protocol.Error) { return e.applyDaemons(rec, want) },
		func() (bool, *protocol.Error) { return e.applyFTP(rec, want, now.ftp) },
	} {
		c, perr := apply()
		changed = changed || c
		if perr != nil {
			return changed, perr
		}
	}
	return changed, nil
}

// managedNow reads the managed items of s as they are in the kernel.
func (e *Engine) managedNow(s protocol.Settings) (protocol.Settings, *protocol.Error) {
	out := emptySettings()
	now, perr := e.readCurrent(names(s.Sysctls))
	if perr != nil {
		return out, perr
	}
	out.Sysctls = now.sysctls
	managed, cur := timeoutFields(&s.Timeouts), timeoutFields(&now.timeouts)
	for i, t := range timeoutFields(&out.Timeouts) {
		if *managed[i] != 0 {
			*t = *cur[i]
		}
	}
	for _, d := range now.daemons {
		if s.Daemon(d.State) != nil {
			out.Daemons = append(out.Daemons, d)
		}
	}
	if s.FTP != nil {
		out.FTP = now.ftp
	}
	return out, nil
}

// deleteSettings puts every managed item back to its original and drops the record; on a failure the record stays
// (what was put back already is put back again, harmlessly, by the next attempt).
func (e *Engine) deleteSettings(idx int, op *protocol.Op) (protocol.Result, *protocol.Error) {
	if e.own.err != nil {
		return nil, e.own.err
	}
	if perr := unreadableLedger(e.own.led, describe(op), "the director settings", op.Owner, false); perr != nil {
		return nil, perr
	}
	if e.own.led.Settings(op.Owner) == nil {
		return protocol.Result{"changed": false}, nil
	}
	rec, perr := e.loadSettings(op.Owner)
	if perr != nil {
		return nil, perr
	}
	now, perr := e.readCurrent(names(rec.applied.Sysctls))
	if perr != nil {
		return nil, perr
	}
	changed, perr := e.applyItems(rec, emptySettings(), now)
	if perr != nil {
		return nil, perr
	}
	e.storeSettings(idx, op.Owner, settingsRecord{applied: emptySettings(), original: emptySettings()})
	return protocol.Result{"changed": changed}, nil
}

// getSettings reads the named sysctls, all timeouts, running daemons and ip_vs_ftp's ports (when loaded), and which stack holds the settings.
func (e *Engine) getSettings(op *protocol.Op) (protocol.Result, *protocol.Error) {
	now, perr := e.readCurrent(op.Sysctls)
	if perr != nil {
		return nil, perr
	}
	out := protocol.Settings{Sysctls: now.sysctls, Timeouts: now.timeouts, Daemons: now.daemons, FTP: now.ftp}
	l, err := e.own.led, error(nil)
	if l == nil {
		// No owner in this request, so no lock: stack files are replaced by rename or appended to by whole lines.
		if l, err = ledger.Load(); err != nil {
			return nil, ledgerError(err)
		}
	}
	var holder any
	if h := l.SettingsOwner(); h != "" {
		holder = h
	}
	return protocol.Result{"settings": protocol.SettingsJSON(out), "owner": holder}, nil
}
