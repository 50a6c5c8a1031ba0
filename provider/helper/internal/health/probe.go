// Package health is the checker of `ipvs-helper health` (issue 27): probers, the rise/fall state of each checked
// real server, the decisions (quiesce or remove, never below minHealthy, the sorry server) and the loop that runs
// them against the kernel under the ledger lock. The logic is pure behind seams (Kernel, a clock, the prober) and
// unit-tested; the probers are tested against real loopback servers.
package health

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
)

// MaxBody is how much of a response body expectBody is sought in; also the bound of every other read.
const MaxBody = 64 << 10

// maxHeader bounds an HTTP response's status line and headers.
const maxHeader = 16 << 10

// Probe runs one check of the real server at addr, within timeout (or by ctx's deadline, when sooner): nil when
// healthy, else why not, in words a log line can carry ("connection refused", "status 503, not in 200-399"). It
// takes no context of its own (no timer, no goroutine watching it): the deadline is the sockets'.
func Probe(ctx context.Context, addr netip.Addr, c *protocol.HealthCheck) error {
	timeout := time.Duration(c.TimeoutSeconds * float64(time.Second))
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	target := netip.AddrPortFrom(addr, c.Port)
	var err error
	switch c.Type {
	case "tcp":
		err = probeTCP(target, deadline)
	case "http", "https":
		err = probeHTTP(target, deadline, c)
	case "dns":
		err = probeDNS(target, deadline, c.DNS)
	default:
		err = fmt.Errorf("unknown check type %q", c.Type)
	}
	return overdue(err, deadline, timeout)
}

// overdue is a probe's error as it is logged: past the deadline, whatever failed (a TLS handshake cut short says so
// in its own words) failed for want of time.
func overdue(err error, deadline time.Time, timeout time.Duration) error {
	if err != nil && (errors.Is(err, os.ErrDeadlineExceeded) || !time.Now().Before(deadline)) {
		return fmt.Errorf("no answer within %s", timeout)
	}
	return err
}

// short turns a network error into its cause alone ("connection refused"): the log line names the target already.
func short(err error) error {
	var se syscall.Errno
	if errors.As(err, &se) {
		return errors.New(se.Error())
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errClosedEarly
	}
	return err
}

func probeTCP(target netip.AddrPort, deadline time.Time) error {
	conn, err := connect(target, deadline)
	if err != nil {
		return err
	}
	return conn.Close()
}

// probeHTTP sends one HTTP/1.0 request (no chunked answers, the server closes) and judges the status and, when
// asked, the first MaxBody bytes of the body. https does not verify the certificate (a real server's certificate
// names the service, not the address probed), as keepalived's SSL_GET; the SNI is the host when one is given.
func probeHTTP(target netip.AddrPort, deadline time.Time, c *protocol.HealthCheck) error {
	h := c.HTTP
	sc, err := connect(target, deadline)
	if err != nil {
		return err
	}
	var conn net.Conn = sc
	defer conn.Close()
	if c.Type == "https" {
		cfg := &tls.Config{InsecureSkipVerify: true} // see above: availability is checked, not identity
		if h.Host != "" && net.ParseIP(h.Host) == nil {
			cfg.ServerName = h.Host
		}
		tc := tls.Client(conn, cfg)
		if err := tc.Handshake(); err != nil { // by the socket's deadline
			return fmt.Errorf("TLS handshake failed: %v", short(err))
		}
		conn = tc
	}
	// Write, not io.WriteString: that would find the WriteString sockConn inherits from its *os.File and bypass
	// sockConn.Write's raw system call.
	if _, err := conn.Write(appendRequest(nil, target, h)); err != nil {
		return short(err)
	}
	return readHTTP(conn, h)
}

// appendRequest appends an HTTP probe's request to b: HTTP/1.0, the server closes after its answer.
func appendRequest(b []byte, target netip.AddrPort, h *protocol.HTTPCheck) []byte {
	b = append(append(append(b, h.Method...), ' '), h.Path...)
	b = append(b, " HTTP/1.0\r\nHost: "...)
	if h.Host != "" {
		b = append(b, h.Host...)
	} else {
		b = target.AppendTo(b)
	}
	return append(b, "\r\nUser-Agent: pulumi-ipvs-health\r\nConnection: close\r\n\r\n"...)
}

// answers are readHTTP's buffers, reused: one each per probe was most of a probe's garbage.
var answers = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// probeDNS asks one question; healthy is an answer to it with RCODE NOERROR (an empty answer too: the server works).
func probeDNS(target netip.AddrPort, deadline time.Time, q *protocol.DNSCheck) error {
	name, err := dnsmessage.NewName(fqdn(q.Name))
	if err != nil {
		return fmt.Errorf("dns name %q: %v", q.Name, err)
	}
	id := uint16(rand.Uint32())
	msg := dnsmessage.Message{Header: dnsmessage.Header{ID: id, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: name, Type: dnsType(q.Type), Class: dnsmessage.ClassINET}}}
	packed, err := msg.Pack()
	if err != nil {
		return err
	}
	var conn net.Conn
	if q.Transport == "tcp" {
		conn, err = connect(target, deadline)
	} else {
		conn, err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(target))
		if err == nil {
			conn.SetDeadline(deadline)
		}
	}
	if err != nil {
		return short(err)
	}
	defer conn.Close()
	var answer []byte
	if q.Transport == "tcp" {
		framed := binary.BigEndian.AppendUint16(nil, uint16(len(packed)))
		if _, err := conn.Write(append(framed, packed...)); err != nil {
			return short(err)
		}
		var n [2]byte
		if _, err := io.ReadFull(conn, n[:]); err != nil {
			return short(err)
		}
		answer = make([]byte, binary.BigEndian.Uint16(n[:]))
		if _, err := io.ReadFull(conn, answer); err != nil {
			return short(err)
		}
	} else {
		if _, err := conn.Write(packed); err != nil {
			return short(err)
		}
		buf := make([]byte, 65535)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return short(err)
			}
			var p dnsmessage.Parser
			if h, err := p.Start(buf[:n]); err == nil && h.ID == id && h.Response {
				answer = buf[:n]
				break
			} // a stray datagram: wait for ours until the deadline
		}
	}
	var p dnsmessage.Parser
	h, err := p.Start(answer)
	if err != nil {
		return fmt.Errorf("not a DNS answer: %v", err)
	}
	if h.ID != id || !h.Response {
		return errors.New("a DNS message that does not answer the question")
	}
	if h.RCode != dnsmessage.RCodeSuccess {
		return fmt.Errorf("DNS answer %s for %s %s", rcodeName(h.RCode), q.Type, q.Name)
	}
	return nil
}

func fqdn(n string) string {
	if strings.HasSuffix(n, ".") {
		return n
	}
	return n + "."
}

func dnsType(t string) dnsmessage.Type {
	switch t {
	case "AAAA":
		return dnsmessage.TypeAAAA
	case "SOA":
		return dnsmessage.TypeSOA
	case "NS":
		return dnsmessage.TypeNS
	case "MX":
		return dnsmessage.TypeMX
	case "TXT":
		return dnsmessage.TypeTXT
	case "SRV":
		return dnsmessage.TypeSRV
	}
	return dnsmessage.TypeA
}

// rcodeName is an RCODE as dig prints it.
func rcodeName(rc dnsmessage.RCode) string {
	switch rc {
	case dnsmessage.RCodeFormatError:
		return "FORMERR"
	case dnsmessage.RCodeServerFailure:
		return "SERVFAIL"
	case dnsmessage.RCodeNameError:
		return "NXDOMAIN"
	case dnsmessage.RCodeNotImplemented:
		return "NOTIMP"
	case dnsmessage.RCodeRefused:
		return "REFUSED"
	}
	return "RCODE " + strconv.Itoa(int(rc))
}
