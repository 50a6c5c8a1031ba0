package health

import (
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestProbesLeaveNoSocketBehind: a probe's connection is reset on close, so that a checker probing thousands of
// real servers a second does not fill the director's TIME_WAIT table: a graceful close by the prober, which closes
// first, left each probe's socket in FIN_WAIT and then TIME_WAIT for 60 s. A reset socket is gone when close returns.
func TestProbesLeaveNoSocketBehind(t *testing.T) {
	// The server closes after the prober, as one waiting for a request.
	port := listenTCP(t, func(c net.Conn) { io.Copy(io.Discard, c); c.Close() })
	for _, p := range probers(t, "tcp") {
		for range 5 {
			if err := p.probe(check("tcp", port)); err != nil {
				t.Fatalf("%s: %v", p.name, err)
			}
		}
		if left := socketsTo(t, port); len(left) != 0 {
			t.Fatalf("after 5 tcp probes (%s), %d of their sockets are left, in states %v (/proc/net/tcp), want none", p.name, len(left), left)
		}
	}
}

// socketsTo is the state (/proc/net/tcp's hex code: 04 FIN_WAIT1, 05 FIN_WAIT2, 06 TIME_WAIT…) of each socket
// whose remote end is 127.0.0.1:port (the listener the probes connect to): the connecting ends, not the accepted
// ones, and no other process's socket (a source port the kernel gives out is never one a listener holds there).
func socketsTo(t *testing.T, port uint16) []string {
	t.Helper()
	data, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("0100007F:%04X", port) // 127.0.0.1 as /proc/net/tcp writes it (little-endian hex)
	var states []string
	for _, line := range strings.Split(string(data), "\n")[1:] {
		if f := strings.Fields(line); len(f) > 3 && f[2] == want {
			states = append(states, f[3])
		}
	}
	return states
}

// A real server that takes no connection (its listener's queue full) fails a tcp probe at the deadline.
func TestTCPProbeDeadline(t *testing.T) {
	wantProbe(t, check("tcp", fullListener(t)), "no answer within 500ms")
}

// fullListener is a loopback port whose listener's accept queue is full (backlog 0, one connection queued, never
// accepted): the kernel drops a new connection's SYN, so its connect never completes.
func fullListener(t *testing.T) uint16 {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	port := uint16(sa.(*syscall.SockaddrInet4).Port)
	queued, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { queued.Close() })
	return port
}
