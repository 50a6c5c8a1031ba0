package health_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/health"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ledger"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ledger/ledgertest"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
)

// BenchmarkRunner runs the checker with the real prober over 20, 200 and 2,000 real servers (127.0.x.y: one
// listener, in a process of its own, on all of loopback) with the lab benchmark's checks (test/bench/health.ts: tcp
// every second, http every 2 s), wired as `ipvs-helper health` wires it (the ledger watched), for 3 s per
// iteration, and reports the CPU time each probe cost the checker (the figure that benchmark compares with
// keepalived's, here without the VM, for profiling: go test -run - -bench Runner -cpuprofile cpu.out) and the probes
// that failed (every server answers: each one a false alarm).
func BenchmarkRunner(b *testing.B) {
	if os.Getenv("HEALTH_BENCH_SERVER") != "" {
		serve(os.NewFile(3, "listener"))
		return
	}
	for _, n := range []int{20, 200, 2000} {
		b.Run(fmt.Sprintf("tcp/%d", n), func(b *testing.B) {
			benchmarkRunner(b, n, protocol.HealthCheck{Type: "tcp", IntervalSeconds: 1, TimeoutSeconds: 0.5, Rise: 1, Fall: 3, OnFailure: "quiesce"})
		})
		b.Run(fmt.Sprintf("http/%d", n), func(b *testing.B) {
			benchmarkRunner(b, n, protocol.HealthCheck{Type: "http", IntervalSeconds: 2, TimeoutSeconds: 1, Rise: 1, Fall: 3, OnFailure: "quiesce",
				HTTP: &protocol.HTTPCheck{Path: "/", Method: "GET", ExpectStatus: "200"}})
		})
	}
}

func benchmarkRunner(b *testing.B, n int, check protocol.HealthCheck) {
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		b.Fatal(err)
	}
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	lf, _ := ln.(*net.TCPListener).File()
	ln.Close()
	srv := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^BenchmarkRunner$")
	srv.Env = append(os.Environ(), "HEALTH_BENCH_SERVER=1")
	srv.ExtraFiles = []*os.File{lf}
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	lf.Close()

	root := ledgertest.Use(b)
	l, err := ledger.Open(time.Now().Add(time.Second), nil)
	if err != nil {
		b.Fatal(err)
	}
	k := &table{dests: map[ipvs.DestKey]ipvs.Dest{}}
	check.Port = port
	for s := 0; s < (n+99)/100; s++ {
		sk := ipvs.ServiceKey{AF: ipvs.AFInet, Protocol: ipvs.ProtoTCP, Addr: netip.AddrFrom4([4]byte{192, 0, 2, byte(100 + s)}), Port: 80}
		l.PutService("a/b/c", sk, protocol.ServiceJSON(ipvs.Service{ServiceKey: sk, ServiceSettings: ipvs.DefaultService(ipvs.AFInet)}, nil).ServiceSpecOut)
		for i := s * 100; i < min((s+1)*100, n); i++ {
			dk := ipvs.DestKey{AF: ipvs.AFInet, Addr: netip.AddrFrom4([4]byte{127, 0, byte(i/250 + 1), byte(i%250 + 1)}), Port: port}
			d := ipvs.Dest{DestKey: dk, DestSettings: ipvs.DestSettings{Fwd: ipvs.FwdMasq, Weight: 1}}
			k.dests[dk] = d
			l.PutDest("a/b/c", "", sk, dk, protocol.DestJSON(d).DestSpecOut)
			l.SetDestCheck("a/b/c", sk, dk, &check)
		}
	}
	if err := l.Save(); err != nil {
		b.Fatal(err)
	}
	l.Close()
	var probes, failed atomic.Int64
	r := &health.Runner{Kernel: k, Ledger: ledger.Open, Now: time.Now, StatePath: filepath.Join(root, "state.json"),
		Watch: ledger.Watch, Reload: time.Second, Resync: 30 * time.Second, LockWait: time.Second, MaxProbes: 256, Log: func(l string) { b.Log(l) },
		Probe: health.Probe, Reactor: health.NewReactor,
		Observed: func(_ health.Key, err error) {
			probes.Add(1)
			if err != nil {
				failed.Add(1)
			}
		}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	time.Sleep(2 * time.Second) // every real server probed once
	var before, after syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	p0 := probes.Load()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		time.Sleep(3 * time.Second)
	}
	b.StopTimer()
	syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	got := probes.Load() - p0
	cancel()
	<-done
	cpu := time.Duration(syscall.TimevalToNsec(after.Utime) + syscall.TimevalToNsec(after.Stime) - syscall.TimevalToNsec(before.Utime) - syscall.TimevalToNsec(before.Stime))
	b.ReportMetric(float64(cpu.Microseconds())/float64(max(got, 1)), "µs-cpu/probe")
	b.ReportMetric(float64(got)/(3*float64(b.N)), "probes/s")
	// At 20 and 200 servers (10 to 200 probes a second) the fixed costs of the loop show: CPU per second of checking.
	b.ReportMetric(float64(cpu.Microseconds())/1000/(3*float64(b.N)), "ms-cpu/s")
	b.ReportMetric(float64(failed.Load()), "failed")
}

// serve answers every connection on l with an HTTP 200 (a tcp check reads nothing) and closes it, until killed:
// the real servers of BenchmarkRunner.
func serve(l *os.File) {
	ln, err := net.FileListener(l)
	if err != nil {
		os.Exit(1)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			os.Exit(1)
		}
		go func() {
			c.SetDeadline(time.Now().Add(5 * time.Second))
			c.Write([]byte("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"))
			c.Close()
		}()
	}
}
