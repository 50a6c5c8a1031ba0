// rsd: the real servers of the health-check benchmark (test/bench/health.ts), one process for thousands of
// addresses. It runs in a network namespace that owns a whole /16 (an AnyIP route), listens on 0.0.0.0:80 and
// answers every connection as the real server at the address it was made to: HTTP/1.0 "200 ok" (503 for the path
// /down, to fail one server's check on purpose), or just the accept, for tcp checks. One goroutine per connection,
// no fork (busybox httpd forks per request: at 1,000 probes a second under TCG the servers would eat the VM the
// checkers are measured in).
//
// It also records when each address was last probed: on SIGUSR1 it writes, per address, the longest gap between two
// probes since the previous SIGUSR1 and the number of probes, to the file named by -gaps, then starts over. That is
// how the benchmark sees a probe pause (a checker reload that skips an interval).
//
// Built on the host with the Go toolchain (standard library only): go build -o rsd rsd.go
package main

import (
	"bytes"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

type seen struct {
	last   time.Time
	maxGap time.Duration
	probes int
}

var (
	mu    sync.Mutex
	addrs = map[string]*seen{}
)

func record(addr string, now time.Time) {
	mu.Lock()
	defer mu.Unlock()
	s := addrs[addr]
	if s == nil {
		s = &seen{}
		addrs[addr] = s
	}
	if !s.last.IsZero() && now.Sub(s.last) > s.maxGap {
		s.maxGap = now.Sub(s.last)
	}
	s.last = now
	s.probes++
}

// dump writes "address max-gap-ms probes" per address probed since the last dump, and starts a new period (the
// last probe time is kept, so the first gap of the new period counts too).
func dump(path string) error {
	mu.Lock()
	var lines []string
	for a, s := range addrs {
		if s.probes > 0 {
			lines = append(lines, fmt.Sprintf("%s %d %d", a, s.maxGap.Milliseconds(), s.probes))
		}
		s.maxGap, s.probes = 0, 0
	}
	mu.Unlock()
	sort.Strings(lines)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func serve(c net.Conn) {
	defer c.Close()
	local := c.LocalAddr().(*net.TCPAddr).IP.String()
	record(local, time.Now())
	c.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 0, 1024)
	tmp := make([]byte, 1024)
	for !bytes.Contains(buf, []byte("\r\n\r\n")) {
		n, err := c.Read(tmp)
		if err != nil || len(buf)+n > 8192 {
			return // a tcp check closes without a request
		}
		buf = append(buf, tmp[:n]...)
	}
	status, body := "200 OK", "ok\n"
	if f := strings.Fields(string(buf[:bytes.IndexByte(buf, '\n')])); len(f) > 1 && f[1] == "/down" {
		status, body = "503 Service Unavailable", "down\n"
	}
	fmt.Fprintf(c, "HTTP/1.0 %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", status, len(body), body)
}

func main() {
	listen := flag.String("listen", ":80", "address to listen on")
	gaps := flag.String("gaps", "/run/hb/gaps", "file SIGUSR1 writes the probe gaps to")
	flag.Parse()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1)
	go func() {
		for range sig {
			if err := dump(*gaps); err != nil {
				log.Print(err)
			}
		}
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Print(err)
			time.Sleep(10 * time.Millisecond) // out of descriptors: let connections finish
			continue
		}
		go serve(c)
	}
}
