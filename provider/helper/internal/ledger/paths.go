// Package ledger is the ownership ledger of PROTOCOL.md "Ownership ledger (issue #9)": which stack owns each IPVS
// entry and director setting, one file per stack in a root-owned state directory, read and written under an
// exclusive lock, replaced atomically; and the systemd unit that restores it at boot.
package ledger

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Where the ledger lives. These are package variables, not flags or environment: the helper runs as root, and a
// caller of the installed binary must not be able to aim it at other paths. Tests point them at a temporary root.
var (
	// Root is where judging starts: every path component from Root down to Dir (and UnitDir) is judged.
	Root = "/"
	// Dir is the state directory; stack files are in Dir/stacks.
	Dir = "/var/lib/pulumi-ipvs"
	// LockPath is the lock every request with an owner holds.
	LockPath = "/run/pulumi-ipvs.lock"
	// SystemdRun exists where systemd is the running init.
	SystemdRun = "/run/systemd/system"
	// UnitDir is where the boot unit is installed.
	UnitDir = "/etc/systemd/system"
	// Systemctls are the systemctl binaries tried for daemon-reload, in order.
	Systemctls = []string{"/usr/bin/systemctl", "/bin/systemctl"}
	// TrustedUID owns every judged component (root; tests that do not run as root use their own uid).
	TrustedUID = 0
)

func stacksDir() string { return filepath.Join(Dir, "stacks") }

// judge checks one existing path component with lstat semantics: not a symlink, of the wanted kind, owned by
// TrustedUID, not writable by group or others. os.ErrNotExist when it is missing.
func judge(path string, dir bool) error {
	fi, err := os.Lstat(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return err
		}
		return fmt.Errorf("the ledger path %s cannot be examined: %v", path, err)
	}
	return judgeInfo(path, fi, dir)
}

func judgeInfo(path string, fi os.FileInfo, dir bool) error {
	why := ""
	st, _ := fi.Sys().(*syscall.Stat_t)
	switch {
	case fi.Mode()&os.ModeSymlink != 0:
		why = "is a symbolic link"
	case dir && !fi.IsDir():
		why = "is not a directory"
	case !dir && !fi.Mode().IsRegular():
		why = "is not a regular file"
	case st == nil || int(st.Uid) != TrustedUID:
		why = fmt.Sprintf("is not owned by uid %d", TrustedUID)
	case fi.Mode().Perm()&0o022 != 0:
		why = fmt.Sprintf("is writable by group or others (%s)", fi.Mode().Perm())
	default:
		return nil
	}
	return fmt.Errorf("the ledger path %s %s; the helper runs as root and refuses it (nothing there is changed: fix or remove it by hand)", path, why)
}

// components lists Root and every directory below it down to path (which must be Root or under it).
func components(path string) ([]string, error) {
	root, p := filepath.Clean(Root), filepath.Clean(path)
	rel, err := filepath.Rel(root, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") || !filepath.IsAbs(p) {
		return nil, fmt.Errorf("the ledger path %s is not below %s", p, root)
	}
	out := []string{root}
	if rel == "." {
		return out, nil
	}
	cur := root
	for _, part := range strings.Split(rel, "/") {
		cur = filepath.Join(cur, part)
		out = append(out, cur)
	}
	return out, nil
}

// judgeDirs judges every component from Root down to dir. With create, missing components are made with perm and
// judged after; otherwise a missing component ends the walk with os.ErrNotExist. Nothing that exists is ever
// chmodded or chowned.
func judgeDirs(dir string, create bool, perm os.FileMode) error {
	comps, err := components(dir)
	if err != nil {
		return err
	}
	for _, c := range comps {
		err := judge(c, true)
		if errors.Is(err, os.ErrNotExist) && create {
			if merr := os.Mkdir(c, perm); merr != nil && !errors.Is(merr, os.ErrExist) {
				return fmt.Errorf("creating the ledger directory %s failed: %v", c, merr)
			}
			err = judge(c, true) // made now (or by a concurrent helper): judged like any other
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// FileName is the stack file of an owner: the first 32 hex digits of sha256(owner).
func FileName(owner string) string {
	h := sha256.Sum256([]byte(owner))
	return hex.EncodeToString(h[:])[:32] + ".json"
}

// isStackFileName tells whether name is one FileName makes: 32 lower-case hex digits and ".json".
func isStackFileName(name string) bool {
	hexPart, ok := strings.CutSuffix(name, ".json")
	if !ok || len(hexPart) != 32 {
		return false
	}
	for _, c := range hexPart {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
