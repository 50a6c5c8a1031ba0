package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// UnitName is the boot unit's file name.
const UnitName = "pulumi-ipvs.service"

// UnitText is the systemd unit that restores the ledger at boot with the helper at exe.
func UnitText(exe string) string {
	return `[Unit]
Description=Restore the IPVS entries and director settings owned by pulumi-ipvs stacks
Documentation=https://www.npmjs.com/package/pulumi-ipvs
After=network-online.target
Wants=network-online.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=` + exe + ` boot

[Install]
WantedBy=multi-user.target
`
}

// SystemdRuns tells whether systemd is the running init (/run/systemd/system exists).
func SystemdRuns() bool {
	fi, err := os.Stat(SystemdRun)
	return err == nil && fi.IsDir()
}

// SyncUnit installs and enables the boot unit (want: some stack has records) or removes it, when systemd runs;
// after a change it runs systemctl daemon-reload, bounded by limit. changed: a file was written or removed.
func SyncUnit(want bool, exe string, limit time.Duration) (changed bool, err error) {
	if !SystemdRuns() {
		return false, nil
	}
	if err := judgeDirs(UnitDir, false, 0); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false, fmt.Errorf("systemd runs but its unit directory %s is missing; the boot unit was not installed", UnitDir)
		}
		return false, err
	}
	unit := filepath.Join(UnitDir, UnitName)
	wants := filepath.Join(UnitDir, "multi-user.target.wants")
	link := filepath.Join(wants, UnitName)
	if want {
		changed, err = installUnit(unit, wants, link, []byte(UnitText(exe)))
	} else {
		changed, err = removeUnit(unit, link)
	}
	if err != nil || !changed {
		return changed, err
	}
	return true, daemonReload(limit)
}

func installUnit(unit, wants, link string, text []byte) (changed bool, err error) {
	cur, _, rerr := readTrusted(unit)
	if rerr != nil || !bytes.Equal(cur, text) {
		if _, serr := os.Lstat(unit); serr == nil && rerr != nil {
			return false, rerr // something is there that root must not overwrite blindly (a symlink, another owner)
		}
		if err := writeAtomic(unit, text, 0o644); err != nil {
			return false, err
		}
		changed = true
	}
	if err := judgeDirs(wants, true, 0o755); err != nil {
		return changed, err
	}
	// What `systemctl enable` makes: a symlink to the unit.
	if target, err := os.Readlink(link); err == nil && target == unit {
		return changed, nil
	}
	if err := os.Remove(link); err != nil && !errors.Is(err, os.ErrNotExist) {
		return changed, fmt.Errorf("replacing %s failed: %v", link, err)
	}
	if err := os.Symlink(unit, link); err != nil {
		return changed, fmt.Errorf("enabling the boot unit failed: symlink %s: %v", link, err)
	}
	return true, nil
}

func removeUnit(unit, link string) (changed bool, err error) {
	for _, p := range []string{link, unit} {
		if err := os.Remove(p); err == nil {
			changed = true
		} else if !errors.Is(err, os.ErrNotExist) {
			return changed, fmt.Errorf("removing the boot unit file %s failed: %v", p, err)
		}
	}
	return changed, nil
}

func daemonReload(limit time.Duration) error {
	for _, bin := range Systemctls {
		if _, err := os.Stat(bin); err != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), limit)
		defer cancel()
		out, err := exec.CommandContext(ctx, bin, "daemon-reload").CombinedOutput()
		if err != nil {
			return fmt.Errorf("the boot unit was written but %s daemon-reload failed: %v %s", bin, err, bytes.TrimSpace(out))
		}
		return nil
	}
	return nil
}
