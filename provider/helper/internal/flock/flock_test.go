package flock

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A free lock is taken at once; a held one is waited for until the deadline and then refused with what waited how
// long where; released, it is taken again.
func TestExclusiveWaitsUntilTheDeadline(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	f, err := Exclusive(path, "the test lock", time.Now().Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("lock file: %v %v", fi, err)
	}
	start := time.Now()
	_, err = Exclusive(path, "the test lock", start.Add(300*time.Millisecond))
	waited := time.Since(start)
	var held *HeldError
	if !errors.As(err, &held) || held.Path != path || held.Waited <= 0 || held.Waited > 300*time.Millisecond {
		t.Fatalf("held lock: %#v", err)
	}
	if !strings.Contains(err.Error(), path+" was held by another process for ") {
		t.Errorf("message: %v", err)
	}
	// It waited until the deadline (less one poll, not to sleep past it), not longer.
	if waited < 300*time.Millisecond-2*poll || waited > 2*time.Second {
		t.Errorf("waited %s for a 300ms deadline", waited)
	}
	f.Close()
	if f, err = Exclusive(path, "the test lock", time.Now().Add(time.Second)); err != nil {
		t.Fatalf("released lock: %v", err)
	}
	f.Close()
}

// A symlink at the lock path is refused, not followed: root must not create or lock the file it points at.
func TestExclusiveRefusesASymlink(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.lock")
	os.Symlink(filepath.Join(dir, "elsewhere"), path)
	if _, err := Exclusive(path, "the test lock", time.Now().Add(time.Second)); err == nil || !strings.HasPrefix(err.Error(), "opening the test lock "+path+" failed: ") {
		t.Fatalf("symlink: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "elsewhere")); !os.IsNotExist(err) {
		t.Fatalf("the symlink's target was created: %v", err)
	}
}
