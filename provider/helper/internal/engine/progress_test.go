package engine

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
)

// stuckKernel is the fake kernel whose GetService of one service, or whose first Pipeline call, blocks until
// released: a kernel call that never returns, like a sendmsg the kernel holds while its own modprobe hangs.
type stuckKernel struct {
	*fakeKernel
	release      chan struct{}
	stuckGet     ipvs.ServiceKey
	stuckWrite   bool
	onceStuck    sync.Once
	writeBlocked bool
}

func (k *stuckKernel) GetService(key ipvs.ServiceKey) (ipvs.Service, bool, error) {
	if key == k.stuckGet {
		<-k.release
	}
	return k.fakeKernel.GetService(key)
}

func (k *stuckKernel) Pipeline(ws []ipvs.Write) []error {
	if k.stuckWrite {
		k.onceStuck.Do(func() { <-k.release })
	}
	return k.fakeKernel.Pipeline(ws)
}

func request(ops ...string) protocol.Request {
	req := protocol.Request{V: 1}
	for _, o := range ops {
		req.Ops = append(req.Ops, json.RawMessage(o))
	}
	return req
}

// watch runs req on e under Watch with limit; the stuck call is released when the test ends, and the test waits for
// the request's goroutine to finish (under -race: it settles results while the answer is encoded).
func watch(t *testing.T, e *Engine, release chan struct{}, req protocol.Request, limit time.Duration) (protocol.Response, bool) {
	t.Helper()
	finished := make(chan struct{})
	resp, hung := Watch(req, limit, func(p *Progress) protocol.Response {
		defer close(finished)
		return e.RunTracked(req, p)
	})
	before, err := json.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	close(release)
	<-finished
	if after, _ := json.Marshal(resp); string(after) != string(before) {
		t.Errorf("the answer changed after it was given:\n%s\n%s", before, after)
	}
	return resp, hung
}

func message(r protocol.Result) string {
	if e, ok := r["error"].(*protocol.Error); ok {
		return e.Message
	}
	return ""
}

func TestWatchAnswersAHungReadWithTimeoutsAfterTheFinishedOps(t *testing.T) {
	f := newFake()
	k := &stuckKernel{fakeKernel: f, release: make(chan struct{}),
		stuckGet: ipvs.ServiceKey{AF: ipvs.AFInet, Protocol: ipvs.ProtoTCP, Addr: mustAddr("192.0.2.2"), Port: 80}}
	e := New(k, ipvs.KernelVersion{Major: 6, Minor: 1}, nil)
	resp, hung := watch(t, e, k.release, request(
		svcJSON("192.0.2.1", "rr"),
		destJSON("ensureDest", "192.0.2.1", "10.0.0.1", 1),
		`{"op":"getService","service":{"family":"ipv4","protocol":"tcp","address":"192.0.2.2","port":80}}`,
		destJSON("deleteDest", "192.0.2.1", "10.0.0.1", 0),
		`{"op":"bogus"}`,
	), 200*time.Millisecond)
	if !hung {
		t.Fatal("the hung request was not reported")
	}
	want := []string{"ok", "ok", "TIMEOUT", "TIMEOUT", "BAD_REQUEST"}
	if len(resp.Results) != len(want) {
		t.Fatalf("%d results for %d ops", len(resp.Results), len(want))
	}
	for i, r := range resp.Results {
		if code(r) != want[i] {
			t.Errorf("op %d: %s %v, want %s", i, code(r), r["error"], want[i])
		}
	}
	if resp.Results[1]["created"] != true {
		t.Errorf("a finished op lost its result: %v", resp.Results[1])
	}
	if m := message(resp.Results[2]); m != "reading service tcp 192.0.2.2:80 did not finish within 200ms (a kernel call or modprobe is hanging on this director)." {
		t.Errorf("message %q", m)
	}
	if m := message(resp.Results[3]); m != "deleting real server 10.0.0.1:8080 of service tcp 192.0.2.1:80 did not finish within 200ms "+
		"(the request stopped at op 2, reading service tcp 192.0.2.2:80: a kernel call or modprobe is hanging on this director)." {
		t.Errorf("message %q", m)
	}
	if resp.Error == nil || resp.Error.Code != protocol.CodeTimeout {
		t.Errorf("top-level error %v", resp.Error)
	}
}

func TestWatchAnswersAHungPipelinedWriteWithTimeoutsForEveryWriteInIt(t *testing.T) {
	k := &stuckKernel{fakeKernel: newFake(), release: make(chan struct{}), stuckWrite: true}
	e := New(k, ipvs.KernelVersion{Major: 6, Minor: 1}, nil)
	resp, hung := watch(t, e, k.release, request(
		svcJSON("192.0.2.1", "rr"),
		destJSON("ensureDest", "192.0.2.1", "10.0.0.1", 1),
		svcJSON("192.0.2.3", "rr"),
	), 200*time.Millisecond)
	if !hung {
		t.Fatal("the hung request was not reported")
	}
	for i, r := range resp.Results {
		if code(r) != "TIMEOUT" || !strings.Contains(message(r), "did not finish within 200ms") {
			t.Errorf("op %d: %v", i, r)
		}
	}
	if m := message(resp.Results[0]); !strings.HasPrefix(m, "ensuring service tcp 192.0.2.1:80 did not finish") {
		t.Errorf("message %q", m)
	}
	if m := message(resp.Results[1]); !strings.HasPrefix(m, "ensuring real server 10.0.0.1:8080 of service tcp 192.0.2.1:80 did not finish") {
		t.Errorf("message %q", m)
	}
}

func TestWatchAnswersAHungModprobeWithTimeouts(t *testing.T) {
	release := make(chan struct{})
	e := New(newFake(), ipvs.KernelVersion{Major: 6, Minor: 1}, func(string, ...string) error { <-release; return nil })
	resp, hung := watch(t, e, release, request(svcJSON("192.0.2.1", "rr"), svcJSON("192.0.2.4", "mh"), `{"op":"getTimeouts"}`), 200*time.Millisecond)
	if !hung || code(resp.Results[0]) != "ok" || code(resp.Results[1]) != "TIMEOUT" || code(resp.Results[2]) != "TIMEOUT" {
		t.Fatalf("hung %v, results %v", hung, resp.Results)
	}
	if m := message(resp.Results[2]); !strings.HasPrefix(m, "reading the connection timeouts did not finish within 200ms (the request stopped at op 1, ensuring service tcp 192.0.2.4:80: ") {
		t.Errorf("message %q", m)
	}
}

func TestWatchNamesTheStageBeforeTheOps(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	resp, hung := Watch(request(svcJSON("192.0.2.1", "rr"), `{"op":"flush","service":{}}`), 100*time.Millisecond, func(p *Progress) protocol.Response {
		p.Stage("connecting to IPVS")
		<-release
		return protocol.Response{}
	})
	if !hung || code(resp.Results[0]) != "TIMEOUT" || code(resp.Results[1]) != "BAD_REQUEST" {
		t.Fatalf("hung %v, results %v", hung, resp.Results)
	}
	if m := message(resp.Results[0]); m != "ensuring service tcp 192.0.2.1:80 did not finish within 100ms (stopped while connecting to IPVS: a kernel call or modprobe is hanging on this director)." {
		t.Errorf("message %q", m)
	}
}

func TestWatchPassesAFinishedRequestThrough(t *testing.T) {
	e := New(newFake(), ipvs.KernelVersion{Major: 6, Minor: 1}, nil)
	req := request(svcJSON("192.0.2.1", "rr"), `{"op":"bogus"}`)
	resp, hung := Watch(req, time.Minute, func(p *Progress) protocol.Response { return e.RunTracked(req, p) })
	if hung || resp.Error != nil || code(resp.Results[0]) != "ok" || code(resp.Results[1]) != "BAD_REQUEST" {
		t.Fatalf("hung %v, %v", hung, resp)
	}
	if r := e.Run(protocol.Request{V: 1}); r.Results == nil {
		t.Error("an empty request must answer results: [], not null")
	}
}

// lateKernel is the fake kernel whose reads of one service run past the netlink socket deadline.
type lateKernel struct {
	*fakeKernel
	late ipvs.ServiceKey
}

func (k *lateKernel) GetService(key ipvs.ServiceKey) (ipvs.Service, bool, error) {
	if key == k.late {
		return ipvs.Service{}, false, fmt.Errorf("the kernel did not answer within 20s: %w", os.ErrDeadlineExceeded)
	}
	return k.fakeKernel.GetService(key)
}

func TestASocketDeadlineFailsItsOpWithTimeoutAndTheRequestGoesOn(t *testing.T) {
	k := &lateKernel{fakeKernel: newFake(), late: ipvs.ServiceKey{AF: ipvs.AFInet, Protocol: ipvs.ProtoTCP, Addr: mustAddr("192.0.2.2"), Port: 80}}
	res := run(t, New(k, ipvs.KernelVersion{Major: 6, Minor: 1}, nil), svcJSON("192.0.2.2", "rr"), svcJSON("192.0.2.1", "rr"))
	if code(res[0]) != "TIMEOUT" || code(res[1]) != "ok" {
		t.Fatalf("results %v", res)
	}
	if m := message(res[0]); m != "reading service tcp 192.0.2.2:80 failed: the kernel did not answer within 20s: i/o timeout." {
		t.Errorf("message %q", m)
	}
}
