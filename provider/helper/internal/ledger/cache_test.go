package ledger_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ledger"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ledger/ledgertest"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
)

const other = "acme/web/prod"

var otherKey = ipvs.ServiceKey{AF: ipvs.AFInet, Protocol: ipvs.ProtoTCP, Addr: netip.MustParseAddr("192.0.2.2"), Port: 80}

func otherSpec(sched string) protocol.ServiceSpecOut {
	return protocol.ServiceJSON(ipvs.Service{ServiceKey: otherKey, ServiceSettings: ipvs.ServiceSettings{Sched: sched}}, nil).ServiceSpecOut
}

// reopen is one request of a serving helper: open with the previous ledger, change, save, close.
func reopen(t *testing.T, prev *ledger.Ledger, change func(*ledger.Ledger)) *ledger.Ledger {
	t.Helper()
	l, err := ledger.Open(time.Now().Add(time.Second), prev)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if change != nil {
		change(l)
		if err := l.Save(); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

func stackOf(l *ledger.Ledger, owner string) *ledger.Stack {
	for _, s := range l.Stacks() {
		if s.Owner == owner {
			return s
		}
	}
	return nil
}

// A serving helper's ledger sees what other helpers wrote between its requests (a new file, a replaced one, a
// removed one) and reads again only those files.
func TestCachedLedgerSeesOtherWriters(t *testing.T) {
	ledgertest.Use(t)
	cached := reopen(t, nil, func(l *ledger.Ledger) { l.PutService(stack, key, spec("rr")) })
	mine := stackOf(cached, stack)
	// Another helper (its own process: a fresh ledger) records another stack.
	reopen(t, nil, func(l *ledger.Ledger) { l.PutService(other, otherKey, otherSpec("wlc")) })
	cached = reopen(t, cached, nil)
	if cached.ServiceOwner(otherKey) != other || stackOf(cached, other).Services[otherKey].Scheduler != "wlc" {
		t.Fatalf("new file not seen: %v", cached.Stacks())
	}
	if stackOf(cached, stack) != mine {
		t.Error("an unchanged file was read again")
	}
	// It replaces our file too, taking our service.
	reopen(t, nil, func(l *ledger.Ledger) { l.PutService(other, key, spec("sh")) })
	cached = reopen(t, cached, nil)
	if cached.ServiceOwner(key) != other || stackOf(cached, stack) != nil || stackOf(cached, other).Services[key].Scheduler != "sh" {
		t.Fatalf("replaced and removed files not seen: %v owner %q", cached.Stacks(), cached.ServiceOwner(key))
	}
	// It drops everything: every file and the state directory go.
	reopen(t, nil, func(l *ledger.Ledger) { l.DropService(key); l.DropService(otherKey) })
	cached = reopen(t, cached, nil)
	if len(cached.Stacks()) != 0 || cached.ServiceOwner(key) != "" || cached.ServiceOwner(otherKey) != "" {
		t.Fatalf("removed files still seen: %v", cached.Stacks())
	}
	// What we write next is written whole from our records.
	reopen(t, cached, func(l *ledger.Ledger) { l.PutService(stack, key, spec("rr")) })
	if l, err := ledger.Load(); err != nil || len(l.Stacks()) != 1 || l.ServiceOwner(key) != stack {
		t.Fatalf("reloaded %v %v", l, err)
	}
}

// A file another writer changed in place (same inode) is read again.
func TestCachedLedgerSeesInPlaceWrite(t *testing.T) {
	ledgertest.Use(t)
	cached := reopen(t, nil, func(l *ledger.Ledger) { l.PutService(stack, key, spec("rr")) })
	text, _ := os.ReadFile(stackPath())
	f, err := os.OpenFile(stackPath(), os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(bytes.Replace(text, []byte(`"scheduler":"rr"`), []byte(`"scheduler":"wlc"`), 1))
	f.Close()
	if cached = reopen(t, cached, nil); cached.Stacks()[0].Services[key].Scheduler != "wlc" {
		t.Fatalf("in-place write not seen: %v", cached.Stacks()[0].Services[key])
	}
}

// A corrupt or badly owned file written by someone else is reported through the cache as by a fresh load, every
// time until it is fixed.
func TestCachedLedgerReportsBadFiles(t *testing.T) {
	ledgertest.Use(t)
	cached := reopen(t, nil, func(l *ledger.Ledger) { l.PutService(stack, key, spec("rr")) })
	good, _ := os.ReadFile(stackPath())
	tmp := filepath.Join(filepath.Dir(stackPath()), ".x.tmp")
	os.WriteFile(tmp, []byte(`{"v":1,"owner":"acme/lb/prod","services":[{"service":{}}],"dests":[],"settings":null,"extra":1}`), 0o600)
	os.Rename(tmp, stackPath())
	for i, prev := range []*ledger.Ledger{cached, nil} {
		if err := ledger.OpenProblemForTest(prev); err == nil || !strings.Contains(err.Error(), stackPath()+" is not a valid stack record") {
			t.Fatalf("open %d: error %v", i, err)
		}
	}
	os.WriteFile(stackPath(), good, 0o600)
	cached = reopen(t, nil, nil)
	os.Chmod(stackPath(), 0o666)
	if err := ledger.OpenProblemForTest(cached); err == nil || !strings.Contains(err.Error(), "is writable by group or others") {
		t.Fatalf("group-writable file: error %v", err)
	}
}

// After a failed save the memory is ahead of the disk: the next open loads the ledger whole from disk.
func TestFailedSaveDropsTheCache(t *testing.T) {
	ledgertest.Use(t)
	cached := reopen(t, nil, func(l *ledger.Ledger) { l.PutService(stack, key, spec("rr")) })
	l, err := ledger.Open(time.Now().Add(time.Second), cached)
	if err != nil {
		t.Fatal(err)
	}
	l.PutService(stack, key, spec("wlc"))
	l.PutService(other, otherKey, otherSpec("wlc"))
	restore := ledger.FailSyncForTest(errors.New("disk on fire"))
	err = l.Save()
	restore()
	l.Close()
	if err == nil {
		t.Fatal("save did not fail")
	}
	next := reopen(t, l, nil)
	if next == l || next.Stacks()[0].Services[key].Scheduler != "rr" || next.ServiceOwner(otherKey) != "" {
		t.Fatalf("after a failed save: %v", next.Stacks())
	}
	reopen(t, next, func(l *ledger.Ledger) { l.PutService(stack, key, spec("wlc")) })
	if got, _ := ledger.Load(); got.Stacks()[0].Services[key].Scheduler != "wlc" {
		t.Fatalf("saved after: %v", got.Stacks()[0].Services[key])
	}
}

// Random requests over several stacks, most through one serving helper's cache and some by other helpers, leave
// the cache equal to a fresh load (snapshot and change lines) after every open and save, its record lines byte for
// byte what a fresh load renders, records in ipvsadm's order, and change lines within their bound.
func TestCachedLedgerMatchesFreshLoad(t *testing.T) {
	ledgertest.Use(t)
	bound := ledger.CompactAtForTest(t, 2<<10) // small files rewritten often too
	rng := rand.New(rand.NewPCG(12, 2))
	owners := []string{stack, other, "acme/lb/staging"}
	svcs := []ipvs.ServiceKey{key, otherKey,
		{AF: ipvs.AFInet, Protocol: ipvs.ProtoUDP, Addr: netip.MustParseAddr("192.0.2.1"), Port: 53},
		{AF: ipvs.AFInet, FWMark: 7},
		{AF: ipvs.AFInet6, Protocol: ipvs.ProtoTCP, Addr: netip.MustParseAddr("2001:db8::1"), Port: 443}}
	destOf := func(svc ipvs.ServiceKey, i int) ipvs.DestKey {
		if svc.AF == ipvs.AFInet6 {
			return ipvs.DestKey{AF: ipvs.AFInet6, Addr: netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i + 1)}), Port: 8080}
		}
		return ipvs.DestKey{AF: ipvs.AFInet, Addr: netip.AddrFrom4([4]byte{10, 0, byte(i % 3), byte(i + 1)}), Port: uint16(8080 + i%2)}
	}
	const destsPer = 8
	change := func(l *ledger.Ledger) {
		for n := 1 + rng.IntN(6); n > 0; n-- {
			o, svc := owners[rng.IntN(len(owners))], svcs[rng.IntN(len(svcs))]
			d := destOf(svc, rng.IntN(destsPer))
			switch rng.IntN(10) {
			case 0, 1:
				l.PutService(o, svc, protocol.ServiceJSON(ipvs.Service{ServiceKey: svc, ServiceSettings: ipvs.ServiceSettings{Sched: []string{"rr", "wlc", "sh"}[rng.IntN(3)]}}, nil).ServiceSpecOut)
			case 2, 3, 4, 5:
				holder := []string{"", "urn:a", "urn:b"}[rng.IntN(3)]
				l.PutDest(o, holder, svc, d, protocol.DestJSON(ipvs.Dest{DestKey: d, DestSettings: ipvs.DestSettings{Weight: uint32(rng.IntN(3))}}).DestSpecOut)
			case 6:
				l.DropService(svc)
			case 7, 8:
				l.DropDest(svc, d)
			default:
				var set *ledger.SettingsRecord
				if v := rng.IntN(3); v > 0 {
					set = &ledger.SettingsRecord{Applied: json.RawMessage(fmt.Sprintf(`{"timeouts":{"udp":%d}}`, v)), Original: json.RawMessage(`{"timeouts":{"udp":300}}`)}
				}
				l.SetSettings(o, set)
			}
		}
	}
	appended := false
	same := func(when string, got *ledger.Ledger) {
		t.Helper()
		want, err := ledger.Load()
		if err != nil {
			t.Fatal(err)
		}
		records := func(l *ledger.Ledger) string {
			var out []any
			for _, s := range l.Stacks() {
				if !s.InOrderForTest() {
					t.Errorf("%s: stack %s out of order: %v", when, s.Owner, s.DestList())
				}
				out = append(out, s.Record())
			}
			b, _ := json.Marshal(out)
			return string(b)
		}
		if g, w := records(got), records(want); g != w {
			t.Fatalf("%s: records\n%s\nwant (fresh load)\n%s", when, g, w)
		}
		for _, svc := range svcs {
			if got.ServiceOwner(svc) != want.ServiceOwner(svc) {
				t.Fatalf("%s: owner of %s %q, fresh load %q", when, svc, got.ServiceOwner(svc), want.ServiceOwner(svc))
			}
			for i := 0; i < destsPer; i++ {
				d := destOf(svc, i)
				if got.DestOwner(svc, d) != want.DestOwner(svc, d) || got.DestHolder(svc, d) != want.DestHolder(svc, d) {
					t.Fatalf("%s: %s of %s: %q/%q, fresh load %q/%q", when, d, svc, got.DestOwner(svc, d), got.DestHolder(svc, d), want.DestOwner(svc, d), want.DestHolder(svc, d))
				}
			}
		}
		for _, o := range owners {
			if g, w := got.Settings(o), want.Settings(o); (g == nil) != (w == nil) || g != nil && (string(g.Applied) != string(w.Applied) || string(g.Original) != string(w.Original)) {
				t.Fatalf("%s: settings of %s %v, fresh load %v", when, o, g, w)
			}
			// The lines this ledger appends and rewrites are byte for byte what a fresh load renders.
			fresh, err := ledger.FreshEncodeForTest(o)
			if mine := got.EncodeForTest(o); err != nil || !bytes.Equal(mine, fresh) {
				t.Fatalf("%s: records of %s as this ledger writes them\n%s\nfresh encode (%v)\n%s", when, o, mine, err, fresh)
			}
			snap, changeBytes, err := ledger.ChangeLinesForTest(o)
			if err != nil || changeBytes > max(snap, bound) {
				t.Fatalf("%s: file of %s: %d bytes of change lines after a %d-byte snapshot (%v)", when, o, changeBytes, snap, err)
			}
			appended = appended || changeBytes > 0
		}
	}
	var cached *ledger.Ledger
	for req := 0; req < 400; req++ {
		foreign := rng.IntN(4) == 0
		prev := cached
		if foreign {
			prev = nil
		}
		l, err := ledger.Open(time.Now().Add(time.Second), prev)
		if err != nil {
			t.Fatal(err)
		}
		same(fmt.Sprintf("request %d opened", req), l)
		change(l)
		if err := l.Save(); err != nil {
			t.Fatal(err)
		}
		same(fmt.Sprintf("request %d saved", req), l)
		l.Close()
		if !foreign {
			cached = l
		}
	}
	if !appended {
		t.Fatal("no save appended change lines: the test did not exercise them")
	}
}

// A lock another helper holds past the request's deadline fails Open, saying who held what for how long and that
// nothing was changed.
func TestOpenWaitsForTheLockUntilTheDeadline(t *testing.T) {
	ledgertest.Use(t)
	held, err := ledger.Open(time.Now().Add(time.Second), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if _, err := ledger.Open(time.Now().Add(200*time.Millisecond), nil); err == nil ||
		!regexp.MustCompile(`^another ipvs-helper held `+regexp.QuoteMeta(ledger.LockPath)+` for [0-9.]+m?s, longer than this request may wait; nothing was changed \(try again when it is done\)$`).MatchString(err.Error()) {
		t.Fatalf("held lock: %v", err)
	}
}
