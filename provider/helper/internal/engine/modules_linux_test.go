//go:build linux

package engine

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/kmod"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
)

// A modprobe that hangs is killed at its own deadline, shorter than the request's: its op fails with TIMEOUT and the
// request goes on.
func TestHangingModprobeFailsItsOpAndTheRequestGoesOn(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "modprobe"), []byte("#!/bin/sh\nexec "+sleep+" 600\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	mp := kmod.Modprobe(300 * time.Millisecond)
	if mp == nil {
		t.Fatal("the fake modprobe was not found")
	}
	e := New(newFake(), ipvs.KernelVersion{Major: 6, Minor: 1}, mp)
	req := request(svcJSON("192.0.2.4", "mh"), svcJSON("192.0.2.1", "rr"))
	resp, hung := Watch(req, 20*time.Second, func(p *Progress) protocol.Response { return e.RunTracked(req, p) })
	if hung || code(resp.Results[0]) != "TIMEOUT" || code(resp.Results[1]) != "ok" {
		t.Fatalf("hung %v, results %v", hung, resp.Results)
	}
	if m := message(resp.Results[0]); m != "creating service tcp 192.0.2.4:80 failed: scheduler 'mh' is not available on this kernel "+
		"(module ip_vs_mh could not be loaded: modprobe ip_vs_mh did not finish within 300ms (killed))." {
		t.Errorf("message %q", m)
	}
}
