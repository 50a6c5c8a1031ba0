package health_test

import (
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/health"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ledger"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ledger/ledgertest"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
)

// With a reactor, the runner's tcp probes are the reactor's: a real server on a loopback port nothing listens on
// is depooled ("connection refused") where the fake Probe calls every server healthy. Run's end closes the
// reactor's sockets and its epoll set.
func TestRunnerProbesThroughTheReactor(t *testing.T) {
	root := ledgertest.Use(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ipvs.DestKey{AF: ipvs.AFInet, Addr: netip.MustParseAddr("127.0.0.1"), Port: uint16(l.Addr().(*net.TCPAddr).Port)}
	l.Close()
	led, err := ledger.Open(time.Now().Add(time.Second), nil)
	if err != nil {
		t.Fatal(err)
	}
	d := ipvs.Dest{DestKey: dead, DestSettings: ipvs.DestSettings{Fwd: ipvs.FwdMasq, Weight: 5}}
	led.PutService("a/b/c", svc, protocol.ServiceJSON(ipvs.Service{ServiceKey: svc, ServiceSettings: ipvs.DefaultService(ipvs.AFInet)}, nil).ServiceSpecOut)
	led.PutDest("a/b/c", "", svc, dead, protocol.DestJSON(d).DestSpecOut)
	led.SetDestCheck("a/b/c", svc, dead, &protocol.HealthCheck{Type: "tcp", Port: dead.Port, IntervalSeconds: 1, TimeoutSeconds: 0.2, Rise: 1, Fall: 1, OnFailure: "quiesce"})
	if err := led.Save(); err != nil {
		t.Fatal(err)
	}
	led.Close()
	before := socketsAndEpolls(t)
	k, _, logs, stop := startWith(t, root, &table{dests: map[ipvs.DestKey]ipvs.Dest{dead: d}}, map[netip.Addr]string{},
		func(r *health.Runner) { r.Reactor = health.NewReactor })
	defer stop()
	waitFor(t, "the server depooled by the reactor's probe", func() bool { return k.weight(dead) == 0 })
	if !strings.Contains(logs(), "connection refused") {
		t.Fatalf("the logs do not say why the server was depooled:\n%s", logs())
	}
	stop()
	// Only what appeared counts: another test's server may close a connection meanwhile.
	if left := slices.DeleteFunc(socketsAndEpolls(t), func(fd string) bool { return slices.Contains(before, fd) }); len(left) > 0 {
		t.Fatalf("sockets and epoll sets left open after Run: %v", left)
	}
}

// socketsAndEpolls are this process's open sockets and epoll sets, sorted.
func socketsAndEpolls(t *testing.T) []string {
	return slices.DeleteFunc(health.OpenFds(t), func(fd string) bool {
		return !strings.Contains(fd, "=socket:") && !strings.HasSuffix(fd, "=anon_inode:[eventpoll]")
	})
}
