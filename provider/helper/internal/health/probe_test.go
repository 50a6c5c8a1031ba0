package health

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
)

var loopback = netip.MustParseAddr("127.0.0.1")

func portOf(t *testing.T, addr string) uint16 {
	t.Helper()
	_, p, _ := net.SplitHostPort(addr)
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return uint16(n)
}

func check(typ string, port uint16) *protocol.HealthCheck {
	c := &protocol.HealthCheck{Type: typ, Port: port, IntervalSeconds: 2, TimeoutSeconds: 0.5, Rise: 1, Fall: 1, OnFailure: "quiesce"}
	if typ == "http" || typ == "https" {
		c.HTTP = &protocol.HTTPCheck{Path: "/health", Method: "GET", ExpectStatus: "200-299"}
	}
	return c
}

// freePort is a port nothing listens on: one a listener just released.
func freePort(t *testing.T) uint16 {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := portOf(t, l.Addr().String())
	l.Close()
	return p
}

// wantProbe runs c's probe every way the checker can run it (probers) and wants the same outcome from each: want
// "" healthy, else an error containing want.
func wantProbe(t *testing.T, c *protocol.HealthCheck, want string) {
	t.Helper()
	for _, p := range probers(t, c.Type) {
		err := p.probe(c)
		switch {
		case want == "" && err != nil:
			t.Fatalf("%s probe (%s) failed: %v", c.Type, p.name, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Fatalf("%s probe (%s): %v, want an error containing %q", c.Type, p.name, err, want)
		}
	}
}

// prober is one way to run a probe of loopback.
type prober struct {
	name  string
	probe func(c *protocol.HealthCheck) error
}

// probers are the ways the checker runs a probe of checkType: Probe (on a worker goroutine), and the reactor
// (NewReactor) where there is one and it takes the type. The reactor is closed when the test ends.
func probers(t *testing.T, checkType string) []prober {
	t.Helper()
	ps := []prober{{"goroutine", func(c *protocol.HealthCheck) error { return Probe(context.Background(), loopback, c) }}}
	rx, err := NewReactor()
	if err != nil {
		return ps
	}
	t.Cleanup(func() { rx.Close() })
	if rx.Takes(checkType) {
		ps = append(ps, prober{"reactor", func(c *protocol.HealthCheck) error {
			k := keyOf(0)
			if err := rx.Start(k, *c, 0); err != nil {
				return err
			}
			return takeResults(t, rx, 1)[k]
		}})
	}
	return ps
}

// keyOf is the i-th of distinct keys for probes of loopback (the check says which port).
func keyOf(i int) Key {
	return Key{Svc: ipvs.ServiceKey{AF: ipvs.AFInet, Protocol: ipvs.ProtoTCP, Addr: netip.MustParseAddr("192.0.2.1"), Port: uint16(i)},
		Dest: ipvs.DestKey{AF: ipvs.AFInet, Addr: loopback, Port: 80}}
}

// takeResults waits for n results from rx, by their keys; the test fails when they do not come within 10 s.
func takeResults(t *testing.T, rx Reactor, n int) map[Key]error {
	t.Helper()
	got := map[Key]error{}
	timeout := time.After(10 * time.Second)
	for len(got) < n {
		select {
		case <-rx.Ready():
			for _, res := range rx.Take(nil) {
				got[res.key] = res.err
			}
		case <-timeout:
			t.Fatalf("%d of %d probes judged in 10 s", len(got), n)
		}
	}
	return got
}

// listenTCP accepts on a loopback port until the test ends, handing each connection to serve; it returns the port.
func listenTCP(t *testing.T, serve func(net.Conn)) uint16 {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go serve(c)
		}
	}()
	return portOf(t, l.Addr().String())
}

func TestTCPProbe(t *testing.T) {
	wantProbe(t, check("tcp", listenTCP(t, func(c net.Conn) { c.Close() })), "")
	wantProbe(t, check("tcp", freePort(t)), "connection refused")
}

func TestHTTPProbe(t *testing.T) {
	// The status is read by the server's goroutines, which the probes do not synchronize with (the reactor's raw
	// reads give the race detector no edge from the server's writes).
	var status atomic.Int64
	body := "all good"
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" || r.Host != "web.example" {
			w.WriteHeader(404)
			return
		}
		w.WriteHeader(int(status.Load()))
		io.WriteString(w, strings.Repeat("x", 70<<10)) // expectBody is sought in the first 64 KiB only
		io.WriteString(w, body)
	})
	for _, typ := range []string{"http", "https"} {
		srv := httptest.NewUnstartedServer(handler)
		if typ == "https" {
			srv.StartTLS() // a self-signed certificate: not verified, as keepalived's SSL_GET
		} else {
			srv.Start()
		}
		c := check(typ, portOf(t, srv.Listener.Addr().String()))
		c.HTTP.Host = "web.example"
		status.Store(200)
		wantProbe(t, c, "")
		status.Store(503)
		wantProbe(t, c, "status 503, not in 200-299")
		c.HTTP.ExpectStatus = "200,500-503"
		wantProbe(t, c, "")
		c.HTTP.ExpectBody = "all good"
		wantProbe(t, c, "lack \"all good\"")
		c.HTTP.ExpectBody = "xxxx"
		wantProbe(t, c, "")
		c.HTTP.Host = "other.example"
		wantProbe(t, c, "status 404")
		srv.Close()
		wantProbe(t, c, "connection refused")
	}
}

// A server that accepts and never answers fails the probe at its deadline, not later.
func TestProbeDeadline(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var held []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	c := check("http", portOf(t, l.Addr().String()))
	for _, p := range probers(t, c.Type) {
		start := time.Now()
		if err := p.probe(c); err == nil || err.Error() != "no answer within 500ms" {
			t.Fatalf("%s: %v, want no answer within 500ms", p.name, err)
		}
		if d := time.Since(start); d > 1500*time.Millisecond {
			t.Fatalf("%s: the probe took %s, past its 500ms deadline", p.name, d)
		}
	}
}

// dnsServer answers "ok.test." with NOERROR and anything else with NXDOMAIN, over UDP and TCP on one port.
func dnsServer(t *testing.T) uint16 {
	t.Helper()
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := portOf(t, tl.Addr().String())
	ul, err := net.ListenPacket("udp", tl.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tl.Close(); ul.Close() })
	answer := func(q []byte) []byte {
		var p dnsmessage.Parser
		h, err := p.Start(q)
		if err != nil {
			return nil
		}
		qs, _ := p.AllQuestions()
		rc := dnsmessage.RCodeNameError
		if len(qs) == 1 && qs[0].Name.String() == "ok.test." {
			rc = dnsmessage.RCodeSuccess
		}
		m := dnsmessage.Message{Header: dnsmessage.Header{ID: h.ID, Response: true, RCode: rc}, Questions: qs}
		b, _ := m.Pack()
		return b
	}
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := ul.ReadFrom(buf)
			if err != nil {
				return
			}
			ul.WriteTo(answer(buf[:n]), from)
		}
	}()
	go func() {
		for {
			c, err := tl.Accept()
			if err != nil {
				return
			}
			var n [2]byte
			io.ReadFull(c, n[:])
			q := make([]byte, binary.BigEndian.Uint16(n[:]))
			io.ReadFull(c, q)
			a := answer(q)
			c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(a))), a...))
			c.Close()
		}
	}()
	return port
}

func TestDNSProbe(t *testing.T) {
	port := dnsServer(t)
	for _, tr := range []string{"udp", "tcp"} {
		c := check("dns", port)
		c.DNS = &protocol.DNSCheck{Name: "ok.test", Type: "A", Transport: tr}
		wantProbe(t, c, "")
		c.DNS.Name = "missing.test"
		wantProbe(t, c, "DNS answer NXDOMAIN for A missing.test")
	}
	c := check("dns", freePort(t))
	c.DNS = &protocol.DNSCheck{Name: "ok.test", Type: "A", Transport: "tcp"}
	wantProbe(t, c, "connection refused")
}

// Answers that are not healthy HTTP fail the probe with what was wrong with them.
func TestHTTPProbeBadAnswers(t *testing.T) {
	answering := func(answer string) *protocol.HealthCheck {
		c := check("http", listenTCP(t, func(c net.Conn) {
			c.Read(make([]byte, 4096)) // the request
			io.WriteString(c, answer)
			c.Close()
		}))
		c.HTTP.ExpectBody = "ok"
		return c
	}
	for answer, want := range map[string]string{
		"HTTP/1.0 200 OK\r\n\r\nall ok":                      "",
		"SSH-2.0-OpenSSH_9.6\r\n":                            `not an HTTP answer: "SSH-2.0-OpenSSH_9.6"`,
		"HTTP/1.0 200 OK\r\nX: " + strings.Repeat("y", 5000): "an HTTP header line longer than 4096 bytes",
		"HTTP/1.0 200 OK\r\nServer: half":                    "connection closed before a whole answer",
		"HTTP/1.0 200":                                       "connection closed before a whole answer",
		"":                                                   "connection closed before a whole answer",
		"HTTP/1.0 200 OK\r\n\r\nnothing here":                `status 200 but the first 12 bytes of the body lack "ok"`,
		"HTTP/1.0 200 OK\r\n" + strings.Repeat("X: y\r\n", 202) + "\r\nok": "more than 200 HTTP headers",
	} {
		wantProbe(t, answering(answer), want)
	}
}
