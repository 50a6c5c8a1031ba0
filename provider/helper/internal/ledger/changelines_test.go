package ledger_test

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ledger"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ledger/ledgertest"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
)

func rs(i int) (ipvs.DestKey, protocol.DestSpecOut) {
	k := ipvs.DestKey{AF: ipvs.AFInet, Addr: netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), Port: 8080}
	return k, protocol.DestJSON(ipvs.Dest{DestKey: k, DestSettings: ipvs.DestSettings{Weight: 1}}).DestSpecOut
}

// savedService starts a test ledger holding the stack's one service, scheduler rr, in its file.
func savedService(t *testing.T) {
	t.Helper()
	ledgertest.Use(t)
	if err := save(t, "rr"); err != nil {
		t.Fatal(err)
	}
}

// putDest records real server rs(i) of the stack's service in one request of a fresh helper process.
func putDest(t *testing.T, i int) {
	t.Helper()
	k, s := rs(i)
	reopen(t, nil, func(l *ledger.Ledger) { l.PutDest(stack, "", key, k, s) })
}

// appendText writes text at the end of the stack's file, as a crashed or foreign writer would.
func appendText(text string) {
	f, _ := os.OpenFile(stackPath(), os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(text)
	f.Close()
}

func fileLines(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(stackPath())
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// Each request that changes a known file appends one line per changed record; a fresh load replays them, drops
// included, and the last line of the file is what the last request changed.
func TestChangesAreAppended(t *testing.T) {
	savedService(t)
	snapshot := fileLines(t)
	if !strings.HasPrefix(snapshot[0], current()) {
		t.Fatalf("snapshot %q", snapshot[0])
	}
	var l *ledger.Ledger
	for i := 1; i <= 3; i++ {
		l = reopen(t, l, func(l *ledger.Ledger) { k, s := rs(i); l.PutDest(stack, "urn:rs", key, k, s) })
	}
	d2, _ := rs(2)
	l = reopen(t, l, func(l *ledger.Ledger) { l.DropDest(key, d2) })
	got := fileLines(t)
	if len(got) != len(snapshot)+4 || strings.Join(got[:len(snapshot)], "\n") != strings.Join(snapshot, "\n") {
		t.Fatalf("file after 4 requests:\n%s", strings.Join(got, "\n"))
	}
	if want := `{"drop":{"service":{"family":"ipv4","protocol":"tcp","address":"192.0.2.1","port":80},"dest":{"address":"10.0.0.2","port":8080}}}`; got[len(got)-1] != want {
		t.Errorf("drop line %s, want %s", got[len(got)-1], want)
	}
	fresh, err := ledger.Load()
	if err != nil {
		t.Fatal(err)
	}
	if ds := fresh.Stacks()[0].DestList(); len(ds) != 2 || ds[0].Dest.Address != "10.0.0.1" || ds[1].Dest.Address != "10.0.0.3" || ds[1].Holder != "urn:rs" {
		t.Fatalf("replayed dests %+v", ds)
	}
	// Another helper process, which replayed the drop, appends only what it changed.
	l = reopen(t, nil, func(l *ledger.Ledger) { k, s := rs(4); l.PutDest(stack, "", key, k, s) })
	if n := len(fileLines(t)); n != len(got)+1 {
		t.Fatalf("a fresh helper's change appended %d lines, want 1:\n%s", n-len(got), strings.Join(fileLines(t), "\n"))
	}
	// A deleted service drops its record and its real servers' records, each with a line.
	reopen(t, l, func(l *ledger.Ledger) { l.DropService(key) })
	if _, err := os.Stat(stackPath()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("an emptied stack's file is still there: %v", err)
	}
}

// An unfinished last line (a crash mid-append, or a reader racing a writer) is ignored, and the next save rewrites
// the file whole instead of appending after it.
func TestUnfinishedChangeLineIsIgnored(t *testing.T) {
	savedService(t)
	putDest(t, 1)
	appendText(`{"service":{"family":"ipv4","protocol":"tcp","address":"192.0.2.1","port":80},"dest":{"addre`)
	l, err := ledger.Load()
	if err != nil || len(l.Stacks()[0].Dests) != 1 {
		t.Fatalf("load with an unfinished line: %v %v", l, err)
	}
	putDest(t, 2)
	if _, changeBytes, err := ledger.ChangeLinesForTest(stack); err != nil || changeBytes != 0 {
		t.Fatalf("after the next save: %d bytes of change lines (%v), want a rewritten file", changeBytes, err)
	}
	if l, _ := ledger.Load(); len(l.Stacks()[0].Dests) != 2 {
		t.Fatalf("rewritten file holds %v", l.Stacks()[0].DestList())
	}
}

// A whole change line that is not one of the four kinds fails the load, naming the file and the line.
func TestBadChangeLine(t *testing.T) {
	for _, c := range []struct{ line, want string }{
		{`{"drop":{"service":{"family":"ipv4","protocol":"tcp","address":"192.0.2.1","port":80}},"settings":null}`, "change line 1 is not one of"},
		{`{"service":{"family":"ipv4","protocol":"tcp","address":"192.0.2.1","port":80},"holder":"urn:x"}`, "change line 1 is not one of"},
		{`{"service":{"family":"ipv4","protocol":"tcp","address":"192.0.2.1","port":80},"dest":{"address":"10.0.0.1","port":1},"extra":1}`, `unknown field "extra"`},
		{`{"drop":{"service":{"family":"ipv4","protocol":"tcp","address":"192.0.2.999","port":80}}}`, "192.0.2.999"},
		{`{}`, "change line 1 is not one of"},
	} {
		savedService(t)
		appendText(c.line + "\n")
		if err := ledger.LoadProblemForTest(); err == nil || !strings.Contains(err.Error(), stackPath()+" is not a valid stack record") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.line, err, c.want)
		}
	}
}

// Version 1 files (records only, as helpers before change lines wrote them) and version 2 files (before the health,
// bindAddress and ftp fields) are read, and rewritten whole as the current version on their first change, so no line
// of a newer field follows an older version number.
func TestOlderFileVersionsAreRead(t *testing.T) {
	for _, old := range []int{1, 2} {
		savedService(t)
		b, _ := os.ReadFile(stackPath())
		os.WriteFile(stackPath(), []byte(strings.Replace(string(b), current(), fmt.Sprintf(`{"v":%d,`, old), 1)), 0o600)
		putDest(t, 1)
		if l, err := ledger.Load(); err != nil || len(l.Stacks()[0].Dests) != 1 || l.Stacks()[0].Services[key].Scheduler != "rr" {
			t.Fatalf("version %d file and a change: %v %v", old, l, err)
		}
		if lines := fileLines(t); !strings.HasPrefix(lines[0], current()) {
			t.Fatalf("a changed version %d file:\n%s", old, strings.Join(lines, "\n"))
		}
		if _, changeBytes, _ := ledger.ChangeLinesForTest(stack); changeBytes != 0 {
			t.Fatalf("change lines appended to a version %d file: %d bytes", old, changeBytes)
		}
	}
}

// A file of a later version is refused as newer, also when it holds a field this helper does not know (what a newer
// version adds), so an older helper sharing the director says to upgrade rather than that the file is broken. A
// field unknown under a version this helper reads is a broken file.
func TestNewerFileVersionIsRefusedAsNewer(t *testing.T) {
	savedService(t)
	b, _ := os.ReadFile(stackPath())
	next := fmt.Sprintf(`{"v":%d,`, ledger.FileVersion+1)
	newer := fmt.Sprintf("the ledger file %s was written by a newer version of pulumi-ipvs (file version %d; this helper reads versions 1 to %d): upgrade pulumi-ipvs in every stack that shares this director",
		stackPath(), ledger.FileVersion+1, ledger.FileVersion)
	for what, text := range map[string]string{
		"known fields":       strings.Replace(string(b), current(), next, 1),
		"a new field":        strings.Replace(string(b), current(), next+`"newField":{"x":1},`, 1),
		"a new record field": strings.Replace(strings.Replace(string(b), current(), next, 1), `"scheduler":"rr"`, `"scheduler":"rr","newField":1`, 1),
	} {
		os.WriteFile(stackPath(), []byte(text), 0o600)
		if err := ledger.LoadProblemForTest(); err == nil || err.Error() != newer {
			t.Errorf("%s: error %v, want %q", what, err, newer)
		}
	}
	os.WriteFile(stackPath(), []byte(strings.Replace(string(b), current(), current()+`"newField":1,`, 1)), 0o600)
	if err := ledger.LoadProblemForTest(); err == nil || !strings.Contains(err.Error(), stackPath()+` is not a valid stack record: json: unknown field "newField"`) {
		t.Errorf("an unknown field in a current file: %v", err)
	}
	os.WriteFile(stackPath(), []byte(strings.Replace(string(b), current(), `{"v":0,`, 1)), 0o600)
	if err := ledger.LoadProblemForTest(); err == nil || !strings.Contains(err.Error(), stackPath()+fmt.Sprintf(" is not a valid stack record: version 0 (this helper reads versions 1 to %d)", ledger.FileVersion)) {
		t.Errorf("version 0: %v", err)
	}
}

// current is how a file this helper writes begins.
func current() string { return fmt.Sprintf(`{"v":%d,`, ledger.FileVersion) }

// Change lines stay within their bound: a file whose change lines would outgrow it is rewritten whole.
func TestChangeLinesAreCompacted(t *testing.T) {
	ledgertest.Use(t)
	bound := ledger.CompactAtForTest(t, 1<<10)
	var l *ledger.Ledger
	rewrites, last := 0, 0
	for i := 0; i < 60; i++ {
		l = reopen(t, l, func(l *ledger.Ledger) {
			l.PutService(stack, key, spec([]string{"rr", "wlc"}[i%2]))
		})
		snap, changeBytes, err := ledger.ChangeLinesForTest(stack)
		if err != nil || changeBytes > max(snap, bound) {
			t.Fatalf("request %d: %d bytes of change lines after a %d-byte snapshot (%v)", i, changeBytes, snap, err)
		}
		if changeBytes < last {
			rewrites++
		}
		last = changeBytes
	}
	if rewrites == 0 {
		t.Fatal("never rewritten")
	}
}

// A failed append (fsync) cuts the file back: it keeps its old content, and the next save is whole again.
func TestFailedAppendKeepsTheFile(t *testing.T) {
	savedService(t)
	putDest(t, 1)
	before, _ := os.ReadFile(stackPath())
	restore := ledger.FailSyncForTest(errors.New("disk on fire"))
	err := save(t, "wlc")
	restore()
	if err == nil || !strings.Contains(err.Error(), "appending to "+stackPath()+" failed: fsync: disk on fire") {
		t.Fatalf("error %v", err)
	}
	if after, _ := os.ReadFile(stackPath()); string(after) != string(before) {
		t.Fatalf("file after a failed append:\n%s\nbefore:\n%s", after, before)
	}
}
