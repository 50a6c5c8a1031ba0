package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"syscall"
	"testing"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
)

// fakeKernel is an in-memory IPVS table that answers writes the way the kernel does (EEXIST, ESRCH, ENOENT for a
// scheduler whose module is not loaded) and counts the pipelined system calls.
type fakeKernel struct {
	svcs    map[ipvs.ServiceKey]ipvs.Service
	dests   map[ipvs.ServiceKey]map[ipvs.DestKey]ipvs.Dest
	loaded  map[string]bool
	batches []int // writes per Pipeline call
	log     []string
	dumps   int // Dests calls
	gets    int // GetService calls
}

func newFake() *fakeKernel {
	return &fakeKernel{svcs: map[ipvs.ServiceKey]ipvs.Service{}, dests: map[ipvs.ServiceKey]map[ipvs.DestKey]ipvs.Dest{},
		loaded: map[string]bool{"wlc": true, "rr": true}}
}

func (f *fakeKernel) apply(w ipvs.Write) error {
	s, err := ipvs.DecodeService(w.Payload)
	if err != nil {
		return err
	}
	k := s.ServiceKey
	_, exists := f.svcs[k]
	var d ipvs.Dest
	if w.Cmd >= ipvs.CmdNewDest {
		if d, err = ipvs.DecodeDest(w.Payload, k.AF); err != nil {
			return err
		}
		if !exists {
			return syscall.ESRCH
		}
	}
	_, destExists := f.dests[k][d.DestKey]
	f.log = append(f.log, fmt.Sprintf("%d %s %s", w.Cmd, k, d.DestKey))
	switch w.Cmd {
	case ipvs.CmdNewService, ipvs.CmdSetService:
		switch {
		case w.Cmd == ipvs.CmdNewService && exists:
			return syscall.EEXIST
		case w.Cmd == ipvs.CmdSetService && !exists:
			return syscall.ESRCH
		case !f.loaded[s.Sched]:
			return syscall.ENOENT
		}
		f.svcs[k] = s
		if !exists {
			f.dests[k] = map[ipvs.DestKey]ipvs.Dest{}
		}
	case ipvs.CmdDelService:
		if !exists {
			return syscall.ESRCH
		}
		delete(f.svcs, k)
		delete(f.dests, k)
	case ipvs.CmdNewDest, ipvs.CmdSetDest:
		if w.Cmd == ipvs.CmdNewDest && destExists {
			return syscall.EEXIST
		}
		if w.Cmd == ipvs.CmdSetDest && !destExists {
			return syscall.ENOENT
		}
		f.dests[k][d.DestKey] = d
	case ipvs.CmdDelDest:
		if !destExists {
			return syscall.ENOENT
		}
		delete(f.dests[k], d.DestKey)
	}
	return nil
}

func (f *fakeKernel) Pipeline(ws []ipvs.Write) []error {
	f.batches = append(f.batches, len(ws))
	errs := make([]error, len(ws))
	for i, w := range ws {
		errs[i] = f.apply(w)
	}
	return errs
}

func (f *fakeKernel) GetService(k ipvs.ServiceKey) (ipvs.Service, bool, error) {
	f.gets++
	s, ok := f.svcs[k]
	return s, ok, nil
}

func (f *fakeKernel) Services() ([]ipvs.Service, error) {
	var out []ipvs.Service
	for _, s := range f.svcs {
		out = append(out, s)
	}
	return out, nil
}

func (f *fakeKernel) Dests(k ipvs.ServiceKey) ([]ipvs.Dest, error) {
	f.dumps++
	var out []ipvs.Dest
	for _, d := range f.dests[k] {
		out = append(out, d)
	}
	return out, nil
}

var errUnused = errors.New("not used by this test")

func (f *fakeKernel) NewService(ipvs.Service) error               { return errUnused }
func (f *fakeKernel) SetService(ipvs.Service) error               { return errUnused }
func (f *fakeKernel) DelService(ipvs.ServiceKey) error            { return errUnused }
func (f *fakeKernel) NewDest(ipvs.ServiceKey, ipvs.Dest) error    { return errUnused }
func (f *fakeKernel) SetDest(ipvs.ServiceKey, ipvs.Dest) error    { return errUnused }
func (f *fakeKernel) DelDest(ipvs.ServiceKey, ipvs.DestKey) error { return errUnused }
func (f *fakeKernel) Daemons() ([]ipvs.Daemon, error)             { return nil, nil }
func (f *fakeKernel) NewDaemon(ipvs.Daemon) error                 { return errUnused }
func (f *fakeKernel) DelDaemon(uint32) error                      { return errUnused }
func (f *fakeKernel) Timeouts() (ipvs.Timeouts, error)            { return ipvs.Timeouts{}, nil }
func (f *fakeKernel) SetTimeouts(ipvs.Timeouts) error             { return errUnused }
func (f *fakeKernel) Info() (ipvs.Info, error)                    { return ipvs.Info{}, nil }
func (f *fakeKernel) Zero(*ipvs.ServiceKey) error                 { return errUnused }
func (f *fakeKernel) Flush() error                                { return errUnused }

func run(t *testing.T, e *Engine, ops ...string) []protocol.Result {
	t.Helper()
	req := protocol.Request{V: 1}
	for _, o := range ops {
		req.Ops = append(req.Ops, json.RawMessage(o))
	}
	return e.Run(req).Results
}

func svcJSON(ip, sched string) string {
	return fmt.Sprintf(`{"op":"ensureService","service":{"family":"ipv4","protocol":"tcp","address":"%s","port":80,"scheduler":"%s"}}`, ip, sched)
}

func destJSON(op, ip, rip string, weight int) string {
	settings := ""
	if op == "ensureDest" {
		settings = fmt.Sprintf(`,"forwarding":"nat","weight":%d`, weight)
	}
	return fmt.Sprintf(`{"op":"%s","service":{"family":"ipv4","protocol":"tcp","address":"%s","port":80},"dest":{"address":"%s","port":8080%s}}`, op, ip, rip, settings)
}

func code(r protocol.Result) string {
	if e, ok := r["error"].(*protocol.Error); ok {
		return e.Code
	}
	return "ok"
}

func TestPipelineKeepsPerOpResults(t *testing.T) {
	f := newFake()
	var probed []string
	e := New(f, ipvs.KernelVersion{Major: 6, Minor: 1}, func(m string, _ ...string) error {
		probed = append(probed, m)
		if m == "ip_vs_sed" {
			return errors.New("module not found")
		}
		f.loaded[strings.TrimPrefix(m, "ip_vs_")] = true
		return nil
	})
	res := run(t, e,
		svcJSON("192.0.2.1", "mh"),                         // ENOENT in the pipeline: modprobe ip_vs_mh, created on the retry
		destJSON("ensureDest", "192.0.2.1", "10.0.0.1", 1), // ESRCH in the pipeline, retried after the service exists
		destJSON("ensureDest", "192.0.2.1", "10.0.0.2", 2),
		svcJSON("192.0.2.2", "sed"), // the module cannot be loaded
		destJSON("ensureDest", "192.0.2.2", "10.0.0.3", 3),
		destJSON("deleteDest", "192.0.2.1", "10.0.0.9", 0),
		destJSON("ensureDest", "192.0.2.1", "10.0.0.1", 5), // a second write to an entry sends the queue first
		`{"op":"getService","service":{"family":"ipv4","protocol":"tcp","address":"192.0.2.1","port":80},"withDests":true}`,
	)
	want := []string{"ok", "ok", "ok", "SCHEDULER_UNAVAILABLE", "SERVICE_NOT_FOUND", "ok", "ok", "ok"}
	for i, r := range res {
		if code(r) != want[i] {
			t.Errorf("op %d: %s %v, want %s", i, code(r), r["error"], want[i])
		}
	}
	if res[1]["created"] != true || res[5]["changed"] != false || res[6]["created"] != false || res[6]["changed"] != true {
		t.Errorf("results: %v / %v / %v", res[1], res[5], res[6])
	}
	if msg := res[4]["error"].(*protocol.Error).Message; !strings.Contains(msg, "10.0.0.3:8080") || !strings.Contains(msg, "the service does not exist") {
		t.Errorf("message %q", msg)
	}
	dests := f.dests[ipvs.ServiceKey{AF: ipvs.AFInet, Protocol: ipvs.ProtoTCP, Addr: mustAddr("192.0.2.1"), Port: 80}]
	if len(dests) != 2 || len(f.svcs) != 1 {
		t.Fatalf("table: %v %v", f.svcs, dests)
	}
	for _, d := range dests {
		if d.Addr == mustAddr("10.0.0.1") && d.Weight != 5 {
			t.Errorf("10.0.0.1 weight %d, want 5", d.Weight)
		}
	}
	if strings.Join(probed, ",") != "ip_vs_mh,ip_vs_sed" {
		t.Errorf("modprobe %v", probed)
	}
	// A small batch GETs each service: reading 192.0.2.2 sends the three queued writes first; the three retries
	// (the service after modprobe, then its two real servers) go alone; the last four writes share one sendmsg.
	if fmt.Sprint(f.batches) != "[3 1 1 1 4]" {
		t.Errorf("pipeline batches %v", f.batches)
	}
}

func TestPipelineChunksLargeBatches(t *testing.T) {
	f := newFake()
	e := New(f, ipvs.KernelVersion{Major: 6, Minor: 1}, nil)
	var ops []string
	for s := 1; s <= 10; s++ {
		ip := fmt.Sprintf("192.0.2.%d", s)
		ops = append(ops, svcJSON(ip, "wlc"))
		for r := 1; r <= 100; r++ {
			ops = append(ops, destJSON("ensureDest", ip, fmt.Sprintf("10.%d.0.%d", s, r), r))
		}
	}
	for i, r := range run(t, e, ops...) {
		if code(r) != "ok" || r["created"] != true {
			t.Fatalf("op %d: %v", i, r)
		}
	}
	total := 0
	for _, n := range f.batches {
		if n > ipvs.MaxChunkMsgs {
			t.Errorf("a batch of %d writes", n)
		}
		total += n
	}
	if total != len(ops) || len(f.batches) != (len(ops)+ipvs.MaxChunkMsgs-1)/ipvs.MaxChunkMsgs {
		t.Errorf("batches %v for %d writes", f.batches, len(ops))
	}
	// Applying the same request again reads the table and changes nothing.
	f.batches = nil
	for i, r := range run(t, e, ops...) {
		if code(r) != "ok" || r["changed"] != false {
			t.Fatalf("re-apply op %d: %v", i, r)
		}
	}
	if len(f.batches) != 0 {
		t.Errorf("re-apply wrote: %v", f.batches)
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
