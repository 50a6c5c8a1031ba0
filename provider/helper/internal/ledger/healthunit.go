package ledger

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
)

// HealthUnitName is the checker's unit (issue 27): `ipvs-helper health`, installed while any stack declares a check.
const HealthUnitName = "pulumi-ipvs-health.service"

// HealthStateDir is the checker's own state directory (state.json), the only place its unit may write besides the
// ledger lock.
const HealthStateDir = "/var/lib/pulumi-ipvs-health"

// HealthUnitText is the checker's systemd unit with the helper at exe. It starts after the boot restore (which it
// then adjusts), restarts on failure, and is confined as far as a netlink client allows: root, but only
// CAP_NET_ADMIN (IPVS netlink) and CAP_NET_RAW; a read-only system except its state directory and the ledger lock.
// (Its inotify watch of the ledger needs no write access, and @system-service allows inotify_init1 and
// inotify_add_watch, through @file-system.)
// When it stops the kernel keeps the weights it left (fail static). metricsDir (a DirectorSettings'
// healthMetricsDirectory, checked by protocol.CheckMetricsDir: nothing in it needs quoting) is passed as
// --metrics-dir and made writable; "" for none.
func HealthUnitText(exe, metricsDir string) string {
	args, writable := "", ""
	if metricsDir != "" {
		args, writable = " --metrics-dir "+metricsDir, " "+metricsDir
	}
	return `[Unit]
Description=Health checks of the real servers pulumi-ipvs stacks declare (quiesce or remove the dead ones, restore them)
Documentation=https://www.npmjs.com/package/pulumi-ipvs
After=network-online.target ` + UnitName + `
Wants=network-online.target

[Service]
Type=simple
ExecStart=` + exe + ` health` + args + `
Restart=on-failure
RestartSec=2s
StateDirectory=pulumi-ipvs-health
StateDirectoryMode=0700
ReadWritePaths=-` + LockPath + writable + `
CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
RestrictAddressFamilies=AF_INET AF_INET6 AF_NETLINK AF_UNIX
LockPersonality=yes
MemoryDenyWriteExecute=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallErrorNumber=EPERM
UMask=0077
TasksMax=256

[Install]
WantedBy=multi-user.target
`
}

// SyncHealthUnit installs, enables and starts the checker's unit (want: some stack declares a check) or stops and
// removes it, when systemd runs. Each systemctl call is bounded by limit. A unit whose text changed (a new helper, a
// new metrics directory) is restarted so that the new checker runs. The metrics directory is created when missing:
// a read-only system leaves the checker no way to create it, and systemd refuses to start a unit whose
// ReadWritePaths is missing.
func SyncHealthUnit(want bool, exe, metricsDir string, limit time.Duration) (changed bool, err error) {
	p, ok, err := placeUnit(HealthUnitName, "the health check unit")
	if !ok || err != nil {
		return false, err
	}
	if !want {
		if _, err := os.Lstat(p.unit); errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		// Stopped first: removing a running unit's file leaves the checker running, unsupervised.
		if err := systemctl(limit, "stop", HealthUnitName); err != nil {
			return false, err
		}
		if changed, err = p.remove(); err != nil || !changed {
			return changed, err
		}
		return true, systemctl(limit, "daemon-reload")
	}
	if metricsDir != "" {
		if err := os.MkdirAll(metricsDir, 0o755); err != nil {
			return false, fmt.Errorf("creating the health metrics directory: %v", err)
		}
	}
	if changed, err = p.install([]byte(HealthUnitText(exe, metricsDir))); err != nil || !changed {
		return changed, err
	}
	if err := systemctl(limit, "daemon-reload"); err != nil {
		return true, err
	}
	return true, systemctl(limit, "restart", HealthUnitName)
}

// HasChecks tells whether some stack declares a health check for one of its real servers.
func (l *Ledger) HasChecks() bool {
	for _, s := range l.stacks {
		for _, d := range s.Dests {
			if d.HealthCheck != nil {
				return true
			}
		}
	}
	return false
}

// UnreadableStack tells whether owner's stack file is one this load could not read (the checker then keeps that
// stack's checks as it last read them, rather than forget its depooled servers).
func (l *Ledger) UnreadableStack(owner string) bool {
	_, bad := l.unreadable[filepath.Join(stacksDir(), FileName(owner))]
	return bad
}

// DestCheck is the health check owner's record of a real server holds, nil when none.
func (l *Ledger) DestCheck(owner string, svc ipvs.ServiceKey, d ipvs.DestKey) *protocol.HealthCheck {
	if s := l.stacks[owner]; s != nil {
		return s.Dests[DestID{svc, d}].HealthCheck
	}
	return nil
}
