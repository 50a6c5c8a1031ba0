//go:build linux

package health

import (
	"io"
	"net"
	"os"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
)

// An answer that came in time is taken although the reactor looks at its probe only at the deadline (a starved
// loop): the connection of a tcp probe, the answer of an http probe whose request was sent.
func TestReactorTakesWhatCameBeforeALateLook(t *testing.T) {
	rx, err := newReactor() // its loop not started: the test turns it by hand
	if err != nil {
		t.Fatal(err)
	}
	defer func() { go rx.loop(); rx.Close() }()
	tcp := check("tcp", listenTCP(t, func(c net.Conn) { io.Copy(io.Discard, c); c.Close() }))
	tcp.TimeoutSeconds = 0.2
	if err := rx.Start(keyOf(1), *tcp, 0); err != nil {
		t.Fatal(err)
	}
	http := check("http", listenTCP(t, func(c net.Conn) {
		c.Read(make([]byte, 4096))
		time.Sleep(50 * time.Millisecond) // sent after the probe's request has been seen through
		io.WriteString(c, "HTTP/1.0 200 OK\r\n\r\n")
		io.Copy(io.Discard, c)
		c.Close()
	}))
	http.TimeoutSeconds = 0.3
	if err := rx.Start(keyOf(2), *http, 0); err != nil {
		t.Fatal(err)
	}
	// Turn the loop until the http probe's request is sent (the tcp probe ends in the same turns: it is started
	// again, to be looked at late only).
	events := make([]syscall.EpollEvent, 8)
	for sent := false; !sent; time.Sleep(time.Millisecond) {
		rx.serve(events[:epollWait(rx.epfd, events)])
		rx.mu.Lock()
		for _, p := range rx.byDeadline {
			sent = sent || p.http != nil && p.connected && p.sent == len(p.req)
		}
		rx.mu.Unlock()
	}
	rx.Take(nil)
	tcp.TimeoutSeconds = 0.3
	if err := rx.Start(keyOf(1), *tcp, 0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond) // past both deadlines, unlooked at
	rx.serve(nil)                      // the wake at the deadline, its sockets not asked
	got := rx.Take(nil)
	if len(got) != 2 {
		t.Fatalf("%d results at the deadline, want 2", len(got))
	}
	for _, res := range got {
		if res.err != nil {
			t.Errorf("probe %d looked at late: %v, want healthy", res.key.Svc.Port, res.err)
		}
	}
}

// 500 probes at once (tcp and http) are all judged, healthy.
func TestReactorJudgesManyProbesAtOnce(t *testing.T) {
	rx, err := NewReactor()
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	port := listenTCP(t, func(c net.Conn) {
		c.Read(make([]byte, 4096))
		io.WriteString(c, "HTTP/1.0 200 OK\r\n\r\n")
		c.Close()
	})
	for i := range 500 {
		c := check([]string{"tcp", "http"}[i%2], port)
		c.TimeoutSeconds = 5 // a loaded test machine: 500 connections to one accept loop
		if err := rx.Start(keyOf(i), *c, 0); err != nil {
			t.Fatalf("probe %d: %v", i, err)
		}
	}
	for k, err := range takeResults(t, rx, 500) {
		if err != nil {
			t.Errorf("probe %d: %v", k.Svc.Port, err)
		}
	}
}

// Out of file descriptors, a probe fails with why (the checker carries on), and the probes started carry on to
// their end.
func TestReactorWithoutSocketsFailsTheProbe(t *testing.T) {
	rx, err := NewReactor()
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0") // never accepts: connected probes wait for an answer
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c := check("http", portOf(t, l.Addr().String()))
	var limit syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &limit); err != nil {
		t.Fatal(err)
	}
	low := limit
	low.Cur = uint64(highestFd(t) + 4)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	started := 0
	var noSocket error
	for i := 0; i < int(low.Cur) && noSocket == nil; i++ { // as many as there can be free descriptors under it
		if noSocket = rx.Start(keyOf(i), *c, 0); noSocket == nil {
			started++
		}
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &limit); err != nil {
		t.Fatal(err)
	}
	if noSocket == nil || noSocket.Error() != "no socket for the probe: too many open files" {
		t.Fatalf("probes with at most %d file descriptors: %v, want no socket for the probe: too many open files", low.Cur, noSocket)
	}
	for k, err := range takeResults(t, rx, started) {
		if err == nil || err.Error() != "no answer within 500ms" {
			t.Errorf("probe %d: %v, want no answer within 500ms", k.Svc.Port, err)
		}
	}
}

// Closing the reactor (the checker stopping) closes every probe's socket in flight, connecting or waiting for an
// answer, and its epoll set.
func TestReactorCloseClosesEverySocket(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0") // never accepts: connected probes wait for an answer
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	waiting, connecting := check("http", portOf(t, l.Addr().String())), check("tcp", fullListener(t))
	before := openFds(t)
	rx, err := NewReactor()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		c := []*protocol.HealthCheck{waiting, connecting}[i%2]
		if err := rx.Start(keyOf(i), *c, 0); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(50 * time.Millisecond) // the http probes connected and sent their requests
	if n := len(openFds(t)); n < len(before)+41 {
		t.Fatalf("%d file descriptors open with 40 probes in flight, want at least %d", n, len(before)+41)
	}
	rx.Close()
	// Only what appeared counts: another test's server may close a connection meanwhile.
	if left := slices.DeleteFunc(openFds(t), func(fd string) bool { return slices.Contains(before, fd) }); len(left) > 0 {
		t.Fatalf("file descriptors left open after Close: %v", left)
	}
}

// openFds are this process's open file descriptors (/proc/self/fd), sorted, each with what it is.
func openFds(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var fds []string
	for _, e := range entries {
		if what, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil { // not the directory's own, gone
			fds = append(fds, e.Name()+"="+what)
		}
	}
	sort.Strings(fds)
	return fds
}

// OpenFds is openFds for the package's external tests (run_linux_test.go).
var OpenFds = openFds

// highestFd is the highest file descriptor open in this process.
func highestFd(t *testing.T) int {
	t.Helper()
	high := 0
	for _, fd := range openFds(t) {
		n := 0
		for _, c := range fd[:strings.IndexByte(fd, '=')] {
			n = n*10 + int(c-'0')
		}
		high = max(high, n)
	}
	return high
}

// Urgent is told of a result its probe's urgency named (one that changes a real server's health), and only then:
// not of a success where a failure was urgent, nor of a failure where a success was.
func TestReactorTellsUrgentResults(t *testing.T) {
	rx, err := NewReactor()
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	answer := func(status string) uint16 {
		return listenTCP(t, func(c net.Conn) {
			c.Read(make([]byte, 4096))
			io.WriteString(c, "HTTP/1.0 "+status+"\r\n\r\n")
			c.Close()
		})
	}
	ok, unavailable := check("http", answer("200 OK")), check("http", answer("503 Service Unavailable"))
	if err := rx.Start(keyOf(1), *ok, UrgentFailure); err != nil {
		t.Fatal(err)
	}
	if err := rx.Start(keyOf(2), *unavailable, UrgentSuccess); err != nil {
		t.Fatal(err)
	}
	got := takeResults(t, rx, 2) // Urgent is told before Ready
	if got[keyOf(1)] != nil || got[keyOf(2)] == nil {
		t.Fatalf("results: %v", got)
	}
	select {
	case <-rx.Urgent():
		t.Fatal("Urgent told of results their urgency did not name")
	default:
	}
	if err := rx.Start(keyOf(3), *unavailable, UrgentFailure); err != nil {
		t.Fatal(err)
	}
	select {
	case <-rx.Urgent():
	case <-time.After(10 * time.Second):
		t.Fatal("Urgent not told of a failure whose urgency named it within 10 s")
	}
	if got := rx.Take(nil); len(got) != 1 || got[0].key != keyOf(3) || got[0].err == nil {
		t.Fatalf("taken after Urgent: %v, want the failure of probe 3", got)
	}
}
