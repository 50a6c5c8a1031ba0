package health

import (
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func TestRunningFollowsTheLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", LockFile)
	if run, err := Running(path); err != nil || run {
		t.Fatalf("no lock file: Running = %v, %v; want false", run, err)
	}
	f, err := HoldRunning(path)
	if err != nil {
		t.Fatal(err)
	}
	if run, err := Running(path); err != nil || !run {
		t.Fatalf("held: Running = %v, %v; want true", run, err)
	}
	// A second checker is refused, naming the file and saying to stop the first.
	if _, err := HoldRunning(path); err == nil || err.Error() != "another ipvs-helper health is running here (it holds "+path+"): stop it first, only one checker may change the kernel" {
		t.Fatalf("second checker: %v; want a refusal naming %s", err, path)
	}
	f.Close()
	if run, err := Running(path); err != nil || run {
		t.Fatalf("released: Running = %v, %v; want false", run, err)
	}
	// A reader's shared lock does not keep a checker from starting.
	if f, err = HoldRunning(path); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// A checker that dies without cleaning up (SIGKILL) leaves the file but not the lock: it reads as not running.
func TestRunningAfterAKilledHolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), LockFile)
	if _, err := exec.LookPath("flock"); err != nil {
		t.Skip("no flock(1) here")
	}
	cmd := exec.Command("flock", "-x", path, "sleep", "30")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // flock(1) and its sleep, which inherits the lock
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		if run, _ := Running(path); run {
			break
		}
		if i == 500 {
			t.Fatal("flock(1) did not take the lock within 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	cmd.Wait()
	// The sleep (not waited for: flock's child) lets go when the kernel has reaped it.
	for i := 0; ; i++ {
		run, err := Running(path)
		if err != nil {
			t.Fatal(err)
		}
		if !run {
			break
		}
		if i == 500 {
			t.Fatal("holder killed: still reads as running after 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
