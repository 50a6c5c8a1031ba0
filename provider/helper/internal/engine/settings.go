package engine

import (
	"syscall"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
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
	want := op.Daemon
	doing := "starting the " + stateName(want.State) + " sync daemon on " + want.Interface
	running, err := e.k.Daemons()
	if err != nil {
		return nil, kernelError("reading the sync daemons", err, false)
	}
	for _, d := range running {
		if d.State != want.State {
			continue
		}
		if daemonMatches(d, want) {
			return protocol.Result{"changed": false, "daemon": protocol.DaemonJSON(d)}, nil
		}
		if err := e.k.DelDaemon(d.State); err != nil {
			return nil, kernelError("stopping the "+stateName(d.State)+" sync daemon to restart it with new settings", err, false)
		}
	}
	if err := e.k.NewDaemon(want); err != nil {
		pe := kernelError(doing, err, false)
		if ipvs.Errno(err) == syscall.ENODEV {
			pe.Code, pe.Message = protocol.CodeInvalid, doing+" failed: there is no network interface "+want.Interface+"."
		}
		return nil, pe
	}
	return protocol.Result{"changed": true, "daemon": protocol.DaemonJSON(want)}, nil
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
