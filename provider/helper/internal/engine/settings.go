package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"syscall"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ledger"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/sysctl"
)

func timeoutsJSON(t ipvs.Timeouts) map[string]uint32 {
	return map[string]uint32{"tcp": t.TCP, "tcpfin": t.TCPFin, "udp": t.UDP}
}

func (e *Engine) setTimeouts(op *protocol.Op) (protocol.Result, *protocol.Error) {
	cur, err := e.k.Timeouts()
	if err != nil {
		return nil, kernelError("reading the connection timeouts", err, false)
	}
	want := cur
	for _, f := range []struct {
		from uint32
		to   *uint32
	}{{op.Timeouts.TCP, &want.TCP}, {op.Timeouts.TCPFin, &want.TCPFin}, {op.Timeouts.UDP, &want.UDP}} {
		if f.from != 0 {
			*f.to = f.from
		}
	}
	if want == cur {
		return protocol.Result{"changed": false, "timeouts": timeoutsJSON(cur)}, nil
	}
	if err := e.k.SetTimeouts(op.Timeouts); err != nil {
		return nil, kernelError("setting the connection timeouts", err, false)
	}
	return protocol.Result{"changed": true, "timeouts": timeoutsJSON(want)}, nil
}

func stateName(s uint32) string {
	if s == ipvs.DaemonBackup {
		return "backup"
	}
	return "master"
}

// daemonMatches: the running daemon has every field the request gave (absent ones take the kernel's defaults).
func daemonMatches(run, want ipvs.Daemon) bool {
	return run.Interface == want.Interface && run.SyncID == want.SyncID &&
		(want.MaxLen == 0 || run.MaxLen == want.MaxLen) &&
		(!want.Group.IsValid() || run.Group == want.Group) &&
		(want.Port == 0 || run.Port == want.Port) &&
		(want.TTL == 0 || run.TTL == want.TTL)
}

// ensureDaemon starts the sync daemon, or restarts it when its settings differ (a daemon cannot be changed in place).
func (e *Engine) ensureDaemon(op *protocol.Op) (protocol.Result, *protocol.Error) {
	d, changed, perr := e.applyDaemon(op.Daemon)
	if perr != nil {
		return nil, perr
	}
	return protocol.Result{"changed": changed, "daemon": protocol.DaemonJSON(d)}, nil
}

// applyDaemon makes want the running daemon of its state; d is the daemon now running.
func (e *Engine) applyDaemon(want ipvs.Daemon) (d ipvs.Daemon, changed bool, perr *protocol.Error) {
	doing := "starting the " + stateName(want.State) + " sync daemon on " + want.Interface
	running, err := e.k.Daemons()
	if err != nil {
		return d, false, kernelError("reading the sync daemons", err, false)
	}
	stopped := false
	for _, d := range running {
		if d.State != want.State {
			continue
		}
		if daemonMatches(d, want) {
			return d, false, nil
		}
		if err := e.k.DelDaemon(d.State); err != nil {
			return d, false, kernelError("stopping the "+stateName(d.State)+" sync daemon to restart it with new settings", err, false)
		}
		stopped = true
	}
	if err := e.k.NewDaemon(want); err != nil {
		pe := kernelError(doing, err, false)
		if ipvs.Errno(err) == syscall.ENODEV {
			pe.Code, pe.Message = protocol.CodeInvalid, doing+" failed: there is no network interface "+want.Interface+"."
		}
		return d, stopped, pe
	}
	return want, true, nil
}

func (e *Engine) deleteDaemon(op *protocol.Op) (protocol.Result, *protocol.Error) {
	if err := e.k.DelDaemon(op.State); err != nil {
		if ipvs.Errno(err) == syscall.ESRCH {
			return protocol.Result{"changed": false}, nil
		}
		return nil, kernelError("stopping the "+stateName(op.State)+" sync daemon", err, false)
	}
	return protocol.Result{"changed": true}, nil
}

func (e *Engine) getDaemons() (protocol.Result, *protocol.Error) {
	list, err := e.k.Daemons()
	if err != nil {
		return nil, kernelError("reading the sync daemons", err, false)
	}
	out := make([]protocol.DaemonOut, len(list))
	for i, d := range list {
		out[i] = protocol.DaemonJSON(d)
	}
	return protocol.Result{"daemons": out}, nil
}

// Director settings (PROTOCOL.md "Director settings ops"): at most one stack's record per director, holding what it
// applied and the values found before it first set each item, so that dropping an item puts the director back.

// settingsRecord is a stack's decoded settings record: the managed items are those of applied.
type settingsRecord struct{ applied, original protocol.Settings }

func emptySettings() protocol.Settings { return protocol.Settings{Sysctls: map[string]sysctl.Value{}} }

func (r settingsRecord) empty() bool {
	return len(r.applied.Sysctls) == 0 && r.applied.Timeouts == (ipvs.Timeouts{}) && len(r.applied.Daemons) == 0
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
	var set *ledger.Settings
	if !rec.empty() {
		applied, _ := json.Marshal(protocol.SettingsJSON(rec.applied))
		original, _ := json.Marshal(protocol.SettingsJSON(rec.original))
		set = &ledger.Settings{Applied: applied, Original: original}
	}
	if e.own.led.SetSettings(owner, set) {
		e.own.ownOps = append(e.own.ownOps, idx)
	}
}

// readSysctls reads the named sysctls; a missing one is UNSUPPORTED_KERNEL naming it.
func (e *Engine) readSysctls(names []string) (map[string]sysctl.Value, *protocol.Error) {
	out := make(map[string]sysctl.Value, len(names))
	for _, n := range names {
		v, err := e.Sysctl.Read(n)
		if errors.Is(err, sysctl.ErrMissing) {
			return nil, &protocol.Error{Code: protocol.CodeUnsupported, Message: err.Error() + "."}
		}
		if err != nil {
			return nil, &protocol.Error{Code: protocol.CodeInternal, Message: fmt.Sprintf("reading %s failed: %v.", n, err)}
		}
		out[n] = v
	}
	return out, nil
}

func (e *Engine) writeSysctl(name string, v sysctl.Value) *protocol.Error {
	if err := e.Sysctl.Write(name, v); err != nil {
		code := protocol.CodeInternal
		if errors.Is(err, syscall.EINVAL) {
			code = protocol.CodeInvalid
		} else if errors.Is(err, sysctl.ErrMissing) {
			code = protocol.CodeUnsupported
		}
		return &protocol.Error{Code: code, Message: fmt.Sprintf("setting %s to %s failed: %v.", name, v.Text(), err)}
	}
	return nil
}

func names(m map[string]sysctl.Value) []string {
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// setTimeoutsTo sets the non-zero fields of want that differ from cur.
func (e *Engine) setTimeoutsTo(cur, want ipvs.Timeouts) (changed bool, perr *protocol.Error) {
	if (want.TCP == 0 || want.TCP == cur.TCP) && (want.TCPFin == 0 || want.TCPFin == cur.TCPFin) && (want.UDP == 0 || want.UDP == cur.UDP) {
		return false, nil
	}
	if err := e.k.SetTimeouts(want); err != nil {
		return false, kernelError("setting the connection timeouts", err, false)
	}
	return true, nil
}

// restoreDaemon puts a state's daemon back: the original one running, or none.
func (e *Engine) restoreDaemon(state uint32, orig *ipvs.Daemon) (changed bool, perr *protocol.Error) {
	if orig != nil {
		_, changed, perr = e.applyDaemon(*orig)
		return changed, perr
	}
	res, perr := e.deleteDaemon(&protocol.Op{State: state})
	return perr == nil && res["changed"] == true, perr
}

func settingsOwned(doing, holder string) *protocol.Error {
	return &protocol.Error{Code: protocol.CodeOwned, Message: fmt.Sprintf(
		"%s refused: this director's settings belong to stack %s (in its ownership ledger); a director has one stack's DirectorSettings.", doing, holder)}
}

// moveSettings gives a stack's settings record, as it is (applied values and originals), to another stack.
func (e *Engine) moveSettings(idx int, from, to string) {
	rec := e.own.led.Settings(from)
	moved := e.own.led.SetSettings(to, rec)
	if e.own.led.SetSettings(from, nil) || moved {
		e.own.ownOps = append(e.own.ownOps, idx)
	}
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
	// Everything is read first: a sysctl this kernel lacks changes nothing.
	all := map[string]sysctl.Value{}
	for n, v := range rec.applied.Sysctls {
		all[n] = v
	}
	for n, v := range want.Sysctls {
		all[n] = v
	}
	cur, perr := e.readSysctls(names(all))
	if perr != nil {
		return nil, perr
	}
	curT, err := e.k.Timeouts()
	if err != nil {
		return nil, kernelError("reading the connection timeouts", err, false)
	}
	running, err := e.k.Daemons()
	if err != nil {
		return nil, kernelError("reading the sync daemons", err, false)
	}
	// The original of every newly managed item, recorded before anything changes; until the end the record holds
	// the old items too, so a failure half-way still knows how to put everything back.
	merged := settingsRecord{applied: emptySettings(), original: rec.original}
	for n, v := range rec.applied.Sysctls {
		merged.applied.Sysctls[n] = v
	}
	for n, v := range want.Sysctls {
		if _, ok := rec.applied.Sysctls[n]; !ok {
			merged.original.Sysctls[n] = cur[n]
		}
		merged.applied.Sysctls[n] = v
	}
	for _, f := range []struct{ want, applied, cur, orig, out *uint32 }{
		{&want.Timeouts.TCP, &rec.applied.Timeouts.TCP, &curT.TCP, &merged.original.Timeouts.TCP, &merged.applied.Timeouts.TCP},
		{&want.Timeouts.TCPFin, &rec.applied.Timeouts.TCPFin, &curT.TCPFin, &merged.original.Timeouts.TCPFin, &merged.applied.Timeouts.TCPFin},
		{&want.Timeouts.UDP, &rec.applied.Timeouts.UDP, &curT.UDP, &merged.original.Timeouts.UDP, &merged.applied.Timeouts.UDP}} {
		*f.out = *f.applied
		if *f.want != 0 {
			if *f.applied == 0 {
				*f.orig = *f.cur
			}
			*f.out = *f.want
		}
	}
	for _, st := range []uint32{ipvs.DaemonMaster, ipvs.DaemonBackup} {
		w, a := want.Daemon(st), rec.applied.Daemon(st)
		if w != nil && a == nil {
			for _, d := range running {
				if d.State == st {
					merged.original.Daemons = append(merged.original.Daemons, d)
				}
			}
		}
		if w != nil {
			merged.applied.Daemons = append(merged.applied.Daemons, *w)
		} else if a != nil {
			merged.applied.Daemons = append(merged.applied.Daemons, *a)
		}
	}
	e.storeSettings(idx, op.Owner, merged)

	changed := false
	// Items no longer listed go back to their original; then the listed values are applied.
	for _, n := range names(rec.applied.Sysctls) {
		if _, keep := want.Sysctls[n]; keep {
			continue
		}
		if orig := rec.original.Sysctls[n]; !cur[n].Equal(orig) {
			if perr := e.writeSysctl(n, orig); perr != nil {
				return nil, perr
			}
			changed = true
		}
	}
	for _, n := range names(want.Sysctls) {
		if !cur[n].Equal(want.Sysctls[n]) {
			if perr := e.writeSysctl(n, want.Sysctls[n]); perr != nil {
				return nil, perr
			}
			changed = true
		}
	}
	target := want.Timeouts
	for _, f := range []struct{ want, applied, orig, out *uint32 }{
		{&want.Timeouts.TCP, &rec.applied.Timeouts.TCP, &rec.original.Timeouts.TCP, &target.TCP},
		{&want.Timeouts.TCPFin, &rec.applied.Timeouts.TCPFin, &rec.original.Timeouts.TCPFin, &target.TCPFin},
		{&want.Timeouts.UDP, &rec.applied.Timeouts.UDP, &rec.original.Timeouts.UDP, &target.UDP}} {
		if *f.want == 0 && *f.applied != 0 {
			*f.out = *f.orig
		}
	}
	c, perr := e.setTimeoutsTo(curT, target)
	if perr != nil {
		return nil, perr
	}
	changed = changed || c
	for _, st := range []uint32{ipvs.DaemonMaster, ipvs.DaemonBackup} {
		w := want.Daemon(st)
		switch {
		case w != nil:
			_, c, perr = e.applyDaemon(*w)
		case rec.applied.Daemon(st) != nil:
			c, perr = e.restoreDaemon(st, rec.original.Daemon(st))
		default:
			continue
		}
		changed = changed || c
		if perr != nil {
			return nil, perr
		}
	}
	// Done: the record is exactly the listed items and their originals.
	final := settingsRecord{applied: want, original: emptySettings()}
	for n := range want.Sysctls {
		final.original.Sysctls[n] = merged.original.Sysctls[n]
	}
	for _, f := range []struct{ want, orig, out *uint32 }{
		{&want.Timeouts.TCP, &merged.original.Timeouts.TCP, &final.original.Timeouts.TCP},
		{&want.Timeouts.TCPFin, &merged.original.Timeouts.TCPFin, &final.original.Timeouts.TCPFin},
		{&want.Timeouts.UDP, &merged.original.Timeouts.UDP, &final.original.Timeouts.UDP}} {
		if *f.want != 0 {
			*f.out = *f.orig
		}
	}
	for _, d := range want.Daemons {
		if o := merged.original.Daemon(d.State); o != nil {
			final.original.Daemons = append(final.original.Daemons, *o)
		}
	}
	e.storeSettings(idx, op.Owner, final)
	now, perr := e.managedNow(want)
	if perr != nil {
		return nil, perr
	}
	return protocol.Result{"changed": changed, "settings": protocol.SettingsJSON(now)}, nil
}

// managedNow reads the managed items of s as they are in the kernel.
func (e *Engine) managedNow(s protocol.Settings) (protocol.Settings, *protocol.Error) {
	out := emptySettings()
	var perr *protocol.Error
	if out.Sysctls, perr = e.readSysctls(names(s.Sysctls)); perr != nil {
		return out, perr
	}
	t, err := e.k.Timeouts()
	if err != nil {
		return out, kernelError("reading the connection timeouts", err, false)
	}
	for _, f := range []struct{ managed, cur, out *uint32 }{{&s.Timeouts.TCP, &t.TCP, &out.Timeouts.TCP},
		{&s.Timeouts.TCPFin, &t.TCPFin, &out.Timeouts.TCPFin}, {&s.Timeouts.UDP, &t.UDP, &out.Timeouts.UDP}} {
		if *f.managed != 0 {
			*f.out = *f.cur
		}
	}
	running, err := e.k.Daemons()
	if err != nil {
		return out, kernelError("reading the sync daemons", err, false)
	}
	for _, d := range running {
		if s.Daemon(d.State) != nil {
			out.Daemons = append(out.Daemons, d)
		}
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
	cur, perr := e.readSysctls(names(rec.applied.Sysctls))
	if perr != nil {
		return nil, perr
	}
	changed := false
	for _, n := range names(rec.applied.Sysctls) {
		if orig := rec.original.Sysctls[n]; !cur[n].Equal(orig) {
			if perr := e.writeSysctl(n, orig); perr != nil {
				return nil, perr
			}
			changed = true
		}
	}
	curT, err := e.k.Timeouts()
	if err != nil {
		return nil, kernelError("reading the connection timeouts", err, false)
	}
	target := ipvs.Timeouts{}
	for _, f := range []struct{ applied, orig, out *uint32 }{{&rec.applied.Timeouts.TCP, &rec.original.Timeouts.TCP, &target.TCP},
		{&rec.applied.Timeouts.TCPFin, &rec.original.Timeouts.TCPFin, &target.TCPFin}, {&rec.applied.Timeouts.UDP, &rec.original.Timeouts.UDP, &target.UDP}} {
		if *f.applied != 0 {
			*f.out = *f.orig
		}
	}
	c, perr := e.setTimeoutsTo(curT, target)
	if perr != nil {
		return nil, perr
	}
	changed = changed || c
	for _, d := range rec.applied.Daemons {
		c, perr := e.restoreDaemon(d.State, rec.original.Daemon(d.State))
		changed = changed || c
		if perr != nil {
			return nil, perr
		}
	}
	e.storeSettings(idx, op.Owner, settingsRecord{applied: emptySettings(), original: emptySettings()})
	return protocol.Result{"changed": changed}, nil
}

// getSettings reads the named sysctls, all timeouts and running daemons, and which stack holds the settings.
func (e *Engine) getSettings(op *protocol.Op) (protocol.Result, *protocol.Error) {
	out := emptySettings()
	var perr *protocol.Error
	if out.Sysctls, perr = e.readSysctls(op.Sysctls); perr != nil {
		return nil, perr
	}
	t, err := e.k.Timeouts()
	if err != nil {
		return nil, kernelError("reading the connection timeouts", err, false)
	}
	out.Timeouts = t
	if out.Daemons, err = e.k.Daemons(); err != nil {
		return nil, kernelError("reading the sync daemons", err, false)
	}
	l := e.own.led
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
