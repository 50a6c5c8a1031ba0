//go:build linux

package kmod

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fakeModprobe writes a modprobe that runs body as a shell script.
func fakeModprobe(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "modprobe")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// alive: the process exists and is not a zombie waiting for a reaper.
func alive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}

// hangingModprobe is a modprobe that never finishes; its child sleep holds stderr open too, so only killing the whole
// process group ends the wait. child returns the sleep's pid once it runs.
func hangingModprobe(t *testing.T) (path string, child func() int) {
	dir := t.TempDir()
	path = fakeModprobe(t, "sleep 600 & echo $! > "+dir+"/child.tmp; mv "+dir+"/child.tmp "+dir+"/child; wait")
	return path, func() int {
		for i := 0; i < 600; i++ {
			if b, err := os.ReadFile(dir + "/child"); err == nil {
				pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
				return pid
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatal("the fake modprobe did not start")
		return 0
	}
}

// wait bounds a call that must not hang.
func wait(t *testing.T, errc <-chan error) error {
	t.Helper()
	select {
	case err := <-errc:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("modprobe was not stopped")
		return nil
	}
}

func assertDead(t *testing.T, pid int) {
	t.Helper()
	for i := 0; alive(pid) && i < 100; i++ {
		time.Sleep(50 * time.Millisecond)
	}
	if alive(pid) {
		t.Errorf("modprobe's child %d survived the kill", pid)
	}
}

func TestHangingModprobeIsKilledWithItsChildren(t *testing.T) {
	path, child := hangingModprobe(t)
	errc := make(chan error, 1)
	go func() { errc <- loader(path, 300*time.Millisecond)("ip_vs_mh") }()
	if err := wait(t, errc); err == nil || err.Error() != "modprobe ip_vs_mh did not finish within 300ms (killed)" || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("error %v", err)
	}
	assertDead(t, child())
}

func TestKillAllEndsRunningModprobesAndStartsNoMore(t *testing.T) {
	t.Cleanup(func() {
		running.Lock()
		running.stopped = false
		running.Unlock()
	})
	path, child := hangingModprobe(t)
	errc := make(chan error, 1)
	go func() { errc <- loader(path, time.Hour)("ip_vs") }()
	pid := child()
	KillAll()
	if err := wait(t, errc); err == nil {
		t.Fatal("a killed modprobe reported success")
	}
	assertDead(t, pid)
	if err := loader(path, time.Hour)("ip_vs_rr"); err == nil || !strings.Contains(err.Error(), "modprobe ip_vs_rr could not be started: the helper is exiting") {
		t.Fatalf("a modprobe after KillAll: %v", err)
	}
}

func TestModprobeFailureCarriesItsMessage(t *testing.T) {
	path := fakeModprobe(t, `echo "modprobe: FATAL: Module $1 not found." >&2; exit 1`)
	if err := loader(path, 10*time.Second)("ip_vs_xx"); err == nil || err.Error() != "modprobe: FATAL: Module ip_vs_xx not found." {
		t.Fatalf("error %v", err)
	}
	if err := loader(fakeModprobe(t, "exit 0"), 10*time.Second)("ip_vs_rr"); err != nil {
		t.Fatalf("a loaded module: %v", err)
	}
}

// Parameters follow the module name on modprobe's command line (ip_vs_ftp's ports=…).
func TestModprobePassesParameters(t *testing.T) {
	out := filepath.Join(t.TempDir(), "args")
	load := loader(fakeModprobe(t, `echo "$@" > `+out), 10*time.Second)
	if err := load("ip_vs_ftp", "ports=21,2121"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(out); string(b) != "ip_vs_ftp ports=21,2121\n" {
		t.Fatalf("modprobe ran with %q", b)
	}
}
