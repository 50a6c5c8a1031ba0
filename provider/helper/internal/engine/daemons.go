package engine

import (
	"syscall"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
)

// Sync daemons: the daemon ops and the daemons item of director settings. A daemon cannot be changed in place, so
// a different one is stopped and started again.

// daemonStates are the states a director runs at most one daemon of each, in the order they are handled.
var daemonStates = []uint32{ipvs.DaemonMaster, ipvs.DaemonBackup}

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
	doing := "starting the " + ipvs.DaemonStateName(want.State) + " sync daemon on " + want.Interface
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
			return d, false, kernelError("stopping the "+ipvs.DaemonStateName(d.State)+" sync daemon to restart it with new settings", err, false)
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
		return nil, kernelError("stopping the "+ipvs.DaemonStateName(op.State)+" sync daemon", err, false)
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

// restoreDaemon puts a state's daemon back: the original one running, or none.
func (e *Engine) restoreDaemon(state uint32, orig *ipvs.Daemon) (changed bool, perr *protocol.Error) {
	if orig != nil {
		_, changed, perr = e.applyDaemon(*orig)
		return changed, perr
	}
	res, perr := e.deleteDaemon(&protocol.Op{State: state})
	return perr == nil && res["changed"] == true, perr
}

// applyDaemons puts the daemons rec manages and want drops back to their originals, and runs want's.
func (e *Engine) applyDaemons(rec settingsRecord, want protocol.Settings) (changed bool, perr *protocol.Error) {
	for _, st := range daemonStates {
		var c bool
		switch w := want.Daemon(st); {
		case w != nil:
			_, c, perr = e.applyDaemon(*w)
		case rec.applied.Daemon(st) != nil:
			c, perr = e.restoreDaemon(st, rec.original.Daemon(st))
		}
		changed = changed || c
		if perr != nil {
			return changed, perr
		}
	}
	return changed, nil
}
