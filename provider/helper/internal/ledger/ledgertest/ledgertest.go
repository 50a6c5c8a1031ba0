// Package ledgertest points the ledger, the boot unit and the manager detection at a temporary root for a test.
package ledgertest

import (
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ledger"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/managers"
)

// Use makes a temporary root with var/lib, run, etc/systemd/system and proc (no systemd running, no keepalived,
// no kube-ipvs0), points the package variables at it until the test ends, and returns it.
func Use(t testing.TB) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"var/lib", "run", "etc/systemd/system", "proc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	saved := []any{ledger.Root, ledger.Dir, ledger.LockPath, ledger.SystemdRun, ledger.UnitDir, ledger.Systemctls, ledger.TrustedUID,
		managers.ProcRoot, managers.FSRoot, managers.InterfaceAddrs, managers.TrustedUID}
	ledger.Root, ledger.Dir, ledger.LockPath = root, filepath.Join(root, "var/lib/pulumi-ipvs"), filepath.Join(root, "run/pulumi-ipvs.lock")
	ledger.SystemdRun, ledger.UnitDir, ledger.Systemctls = filepath.Join(root, "run/systemd/system"), filepath.Join(root, "etc/systemd/system"), nil
	ledger.TrustedUID = os.Getuid()
	managers.ProcRoot, managers.FSRoot, managers.TrustedUID = filepath.Join(root, "proc"), root, os.Getuid()
	managers.InterfaceAddrs = func(string) ([]netip.Addr, error) { return nil, nil }
	t.Cleanup(func() {
		ledger.Root, ledger.Dir, ledger.LockPath = saved[0].(string), saved[1].(string), saved[2].(string)
		ledger.SystemdRun, ledger.UnitDir, ledger.Systemctls = saved[3].(string), saved[4].(string), saved[5].([]string)
		ledger.TrustedUID = saved[6].(int)
		managers.ProcRoot, managers.FSRoot = saved[7].(string), saved[8].(string)
		managers.InterfaceAddrs = saved[9].(func(string) ([]netip.Addr, error))
		managers.TrustedUID = saved[10].(int)
	})
	return root
}

// Process makes a process in the fixture's proc directory (under root, from Use): its comm, its cmdline (argv),
// a status whose uids are all uid, and an exe linking to an executable file owned by the test's user.
func Process(t testing.TB, root string, pid int, comm string, uid int, argv ...string) {
	t.Helper()
	dir := filepath.Join(root, "proc", strconv.Itoa(pid))
	exe := filepath.Join(root, "usr/sbin", comm)
	os.MkdirAll(filepath.Dir(exe), 0o755)
	os.MkdirAll(dir, 0o755)
	id := strconv.Itoa(uid)
	for name, text := range map[string]string{"comm": comm + "\n", "cmdline": strings.Join(argv, "\x00") + "\x00",
		"status": "Name:\t" + comm + "\nUid:\t" + id + "\t" + id + "\t" + id + "\t" + id + "\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(exe, []byte("#!/bin/false\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, "exe"))
	if err := os.Symlink(exe, filepath.Join(dir, "exe")); err != nil {
		t.Fatal(err)
	}
}
