package ledger_test

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ledger"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ledger/ledgertest"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
)

const stack = "acme/lb/prod"

var key = ipvs.ServiceKey{AF: ipvs.AFInet, Protocol: ipvs.ProtoTCP, Addr: netip.MustParseAddr("192.0.2.1"), Port: 80}

func spec(sched string) protocol.ServiceSpecOut {
	return protocol.ServiceJSON(ipvs.Service{ServiceKey: key, ServiceSettings: ipvs.ServiceSettings{Sched: sched}}, nil).ServiceSpecOut
}

func save(t *testing.T, sched string) error {
	t.Helper()
	l, err := ledger.Open(time.Now().Add(time.Second), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.PutService(stack, key, spec(sched))
	return l.Save()
}

func stackPath() string { return filepath.Join(ledger.Dir, "stacks", ledger.FileName(stack)) }

// A failed write never replaces the file: the old record stays whole and no temp file is left.
func TestWriteIsAtomic(t *testing.T) {
	ledgertest.Use(t)
	if err := save(t, "rr"); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(stackPath())
	if fi, _ := os.Stat(stackPath()); fi.Mode().Perm() != 0o600 {
		t.Errorf("stack file mode %s", fi.Mode().Perm())
	}
	if fi, _ := os.Stat(ledger.Dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("state directory mode %s", fi.Mode().Perm())
	}
	restore := ledger.FailSyncForTest(errors.New("disk on fire"))
	err := save(t, "wlc")
	restore()
	if err == nil || !strings.Contains(err.Error(), "disk on fire") || !strings.Contains(err.Error(), stackPath()) {
		t.Fatalf("error %v", err)
	}
	after, _ := os.ReadFile(stackPath())
	if string(after) != string(before) || !strings.Contains(string(after), `"scheduler":"rr"`) {
		t.Errorf("file replaced by a failed write:\n%s", after)
	}
	ents, _ := os.ReadDir(filepath.Dir(stackPath()))
	if len(ents) != 1 {
		t.Errorf("left in the stacks directory: %v", ents)
	}
	if err := save(t, "wlc"); err != nil {
		t.Fatal(err)
	}
	l, err := ledger.Load()
	if err != nil || l.ServiceOwner(key) != stack || l.Stacks()[0].Services[key].Scheduler != "wlc" {
		t.Fatalf("reloaded: %v %v", l, err)
	}
}

// Every component from the root down is judged with lstat semantics; nothing is changed through a bad one.
func TestJudgedComponents(t *testing.T) {
	for _, c := range []struct {
		name, want string
		spoil      func(root string)
	}{
		{"symlink", "is a symbolic link", func(root string) {
			os.Rename(filepath.Join(root, "var/lib"), filepath.Join(root, "lib2"))
			os.Symlink(filepath.Join(root, "lib2"), filepath.Join(root, "var/lib"))
		}},
		{"group-writable", "is writable by group or others", func(root string) { os.Chmod(filepath.Join(root, "var"), 0o775) }},
		{"other owner", "is not owned by uid", func(root string) { os.Chown(filepath.Join(root, "var/lib"), 4242, 4242) }},
		{"file", "is not a regular file", func(root string) {
			os.MkdirAll(filepath.Join(root, "var/lib/pulumi-ipvs/stacks", ledger.FileName(stack)), 0o700)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := ledgertest.Use(t)
			if c.name == "other owner" && os.Getuid() != 0 {
				t.Skip("chown needs root")
			}
			c.spoil(root)
			err := ledger.OpenProblemForTest(nil)
			if err == nil && c.name != "file" {
				// The state directory does not exist yet: the walk stops at the bad component when saving.
				l, _ := ledger.Open(time.Now().Add(time.Second), nil)
				l.PutService(stack, key, spec("rr"))
				err = l.Save()
				l.Close()
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
			if _, serr := os.Stat(filepath.Join(root, "lib2/pulumi-ipvs")); serr == nil {
				t.Error("created the state directory through the symlink")
			}
		})
	}
}

// A serving helper judges the directories again at every request, not once per process: Save and removals within a
// request rely on that judgement (see Ledger.chainJudged), so it must be fresh.
func TestEveryRequestJudgesTheDirectories(t *testing.T) {
	root := ledgertest.Use(t)
	l, err := ledger.Open(time.Now().Add(time.Second), nil)
	if err != nil {
		t.Fatal(err)
	}
	l.PutService(stack, key, spec("rr"))
	if err := l.Save(); err != nil {
		t.Fatal(err)
	}
	l.Close()
	os.Chmod(filepath.Join(root, "var/lib"), 0o777)
	if _, err := ledger.Open(time.Now().Add(time.Second), l); err == nil || !strings.Contains(err.Error(), "is writable by group or others") {
		t.Fatalf("the next request of the same helper opened the ledger under a world-writable directory: %v", err)
	}
}

// A held lock makes Open wait until its deadline and say who held it.
func TestLockDeadline(t *testing.T) {
	ledgertest.Use(t)
	held, err := ledger.Open(time.Now().Add(time.Second), nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = ledger.Open(time.Now().Add(100*time.Millisecond), nil)
	if err == nil || !strings.Contains(err.Error(), "another ipvs-helper held") || time.Since(start) > time.Second {
		t.Fatalf("error %v after %s", err, time.Since(start))
	}
	held.Close()
	l, err := ledger.Open(time.Now().Add(100*time.Millisecond), nil)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	l.Close()
}

// The boot unit is managed only where systemd runs: installed and enabled while stacks have records, removed after.
func TestUnitInstallAndRemove(t *testing.T) {
	ledgertest.Use(t)
	if changed, err := ledger.SyncUnit(true, "/opt/ipvs-helper", time.Second); changed || err != nil {
		t.Fatalf("without systemd: %v %v", changed, err)
	}
	os.MkdirAll(ledger.SystemdRun, 0o755)
	unit := filepath.Join(ledger.UnitDir, ledger.UnitName)
	link := filepath.Join(ledger.UnitDir, "multi-user.target.wants", ledger.UnitName)
	if changed, err := ledger.SyncUnit(true, "/opt/ipvs-helper", time.Second); !changed || err != nil {
		t.Fatalf("install: %v %v", changed, err)
	}
	text, _ := os.ReadFile(unit)
	for _, s := range []string{"Type=oneshot\n", "RemainAfterExit=yes\n", "After=network-online.target\n", "Wants=network-online.target\n",
		"ExecStart=/opt/ipvs-helper boot\n", "WantedBy=multi-user.target\n", "Description=", "Documentation="} {
		if !strings.Contains(string(text), s) {
			t.Errorf("unit lacks %q:\n%s", s, text)
		}
	}
	if target, err := os.Readlink(link); err != nil || target != unit {
		t.Errorf("wants link %q %v", target, err)
	}
	if changed, err := ledger.SyncUnit(true, "/opt/ipvs-helper", time.Second); changed || err != nil {
		t.Errorf("second install: %v %v", changed, err)
	}
	if changed, err := ledger.SyncUnit(false, "/opt/ipvs-helper", time.Second); !changed || err != nil {
		t.Fatalf("remove: %v %v", changed, err)
	}
	for _, p := range []string{unit, link} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s left: %v", p, err)
		}
	}
}

// The last record going leaves a state directory that cannot be removed (a mount point: EBUSY; a volume's
// lost+found: ENOTEMPTY) in place, and the save that dropped the record succeeds; the next record is saved in it.
func TestStateDirThatCannotBeRemovedIsKept(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.EBUSY, syscall.ENOTEMPTY} {
		ledgertest.Use(t)
		if err := save(t, "rr"); err != nil {
			t.Fatal(err)
		}
		ledger.FailRemoveDirForTest(t, &os.PathError{Op: "remove", Path: ledger.Dir, Err: errno})
		l, err := ledger.Open(time.Now().Add(time.Second), nil)
		if err != nil {
			t.Fatal(err)
		}
		l.DropService(key)
		err = l.Save()
		l.Close()
		if err != nil {
			t.Fatalf("%v: the save that emptied the ledger failed: %v", errno, err)
		}
		if _, err := os.Stat(stackPath()); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%v: stack file left: %v", errno, err)
		}
		if got, err := ledger.Load(); err != nil || len(got.Stacks()) != 0 {
			t.Errorf("%v: ledger after: %v %v", errno, got, err)
		}
		if err := save(t, "wlc"); err != nil {
			t.Fatalf("%v: saving in the kept directory: %v", errno, err)
		}
	}
}
