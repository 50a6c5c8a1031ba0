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
	p, ok, err := placeUnit(UnitName, "the boot unit")
	if !ok || err != nil {
		return false, err
	}
	if want {
		changed, err = p.install([]byte(UnitText(exe)))
	} else {
		changed, err = p.remove()
	}
	if err != nil || !changed {
		return changed, err
	}
	return true, daemonReload(limit)
}

// unitPlace is where a unit is installed (unit) and enabled (link in wants, what `systemctl enable` makes); what
// names it in messages. The boot unit and the checker's unit (healthunit.go) are kept the same way.
type unitPlace struct{ what, unit, wants, link string }

// placeUnit is where the unit name goes, when systemd runs (ok) and its unit directory is one root may write into.
func placeUnit(name, what string) (p unitPlace, ok bool, err error) {
	if !SystemdRuns() {
		return p, false, nil
	}
	if err := judgeDirs(UnitDir, false, 0); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return p, false, fmt.Errorf("systemd runs but its unit directory %s is missing; %s was not installed", UnitDir, what)
		}
		return p, false, err
	}
	wants := filepath.Join(UnitDir, "multi-user.target.wants")
	return unitPlace{what: what, unit: filepath.Join(UnitDir, name), wants: wants, link: filepath.Join(wants, name)}, true, nil
}

// install writes the unit when its text differs and enables it. changed: a file was written.
func (p unitPlace) install(text []byte) (changed bool, err error) {
	cur, _, rerr := readTrusted(p.unit)
	if rerr != nil || !bytes.Equal(cur, text) {
		if _, serr := os.Lstat(p.unit); serr == nil && rerr != nil {
			return false, rerr // something is there that root must not overwrite blindly (a symlink, another owner)
		}
		if err := writeAtomic(p.unit, text, 0o644); err != nil {
			return false, err
		}
		changed = true
	}
	if err := judgeDirs(p.wants, true, 0o755); err != nil {
		return changed, err
	}
	if target, err := os.Readlink(p.link); err == nil && target == p.unit {
		return changed, nil
	}
	if err := os.Remove(p.link); err != nil && !errors.Is(err, os.ErrNotExist) {
		return changed, fmt.Errorf("replacing %s failed: %v", p.link, err)
	}
	if err := os.Symlink(p.unit, p.link); err != nil {
		return changed, fmt.Errorf("enabling %s failed: symlink %s: %v", p.what, p.link, err)
	}
	return true, nil
}

// remove disables and removes the unit. changed: a file was removed.
func (p unitPlace) remove() (changed bool, err error) {
	for _, f := range []string{p.link, p.unit} {
		if err := os.Remove(f); err == nil {
			changed = true
		} else if !errors.Is(err, os.ErrNotExist) {
			return changed, fmt.Errorf("removing %s file %s failed: %v", p.what, f, err)
		}
	}
	return changed, nil
}

// daemonReload runs systemctl daemon-reload after the boot unit changed.
func daemonReload(limit time.Duration) error {
	if bin, err := runSystemctl(limit, "daemon-reload"); err != nil {
		return fmt.Errorf("the boot unit was written but %s daemon-reload failed: %v", bin, err)
	}
	return nil
}

// systemctl runs systemctl with args (see runSystemctl), its error naming the command.
func systemctl(limit time.Duration, args ...string) error {
	if bin, err := runSystemctl(limit, args...); err != nil {
		return fmt.Errorf("%s %v failed: %v", bin, args, err)
	}
	return nil
}

// runSystemctl runs the first of Systemctls found with args, bounded by limit; none found: nothing to do. bin is
// the one it ran; err holds its output.
func runSystemctl(limit time.Duration, args ...string) (bin string, err error) {
	for _, bin := range Systemctls {
		if _, err := os.Stat(bin); err != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), limit)
		defer cancel()
		out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
		if err != nil {
			return bin, fmt.Errorf("%v %s", err, bytes.TrimSpace(out))
		}
		return bin, nil
	}
	return "", nil
}
