package sysctl

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
)

func TestTableSanity(t *testing.T) {
	all := All()
	if !sort.SliceIsSorted(all, func(i, j int) bool { return all[i].Name < all[j].Name }) {
		t.Fatal("All() is not sorted")
	}
	// Every variable of Documentation/networking/ipvs-sysctl.rst, the scheduler ones and forwarding.
	want := []string{"am_droprate", "amemthresh", "backup_only", "cache_bypass", "conn_reuse_mode", "conntrack",
		"debug_level", "drop_entry", "drop_packet", "est_cpulist", "est_nice", "expire_nodest_conn",
		"expire_quiescent_template", "ignore_tunneled", "lblc_expiration", "lblcr_expiration", "nat_icmp_send",
		"pmtu_disc", "run_estimation", "schedule_icmp", "secure_tcp", "sloppy_sctp", "sloppy_tcp", "snat_reroute",
		"sync_persist_mode", "sync_ports", "sync_qlen_max", "sync_refresh_period", "sync_retries",
		"sync_sock_size", "sync_threshold", "sync_version"}
	names := map[string]bool{}
	for _, s := range all {
		names[s.Name] = true
		if s.Min > s.Max {
			t.Errorf("%s: min %d > max %d", s.Name, s.Min, s.Max)
		}
		if s.Kind != KindInt && s.Kind != KindPair && s.Kind != KindCPUList {
			t.Errorf("%s: kind %q", s.Name, s.Kind)
		}
		if got, ok := Lookup(s.Name); !ok || got.Name != s.Name {
			t.Errorf("Lookup(%s) = %v, %v", s.Name, got, ok)
		}
		if strings.ContainsAny(s.Name, "/ ") {
			t.Errorf("%s: a name maps to a /proc/sys path by dots only", s.Name)
		}
	}
	for _, n := range want {
		if !names["net.ipv4.vs."+n] {
			t.Errorf("missing net.ipv4.vs.%s", n)
		}
	}
	if !names["net.ipv4.ip_forward"] || !names["net.ipv6.conf.all.forwarding"] {
		t.Error("missing forwarding sysctls")
	}
	if len(all) != len(want)+2 {
		t.Errorf("%d settings, want %d", len(all), len(want)+2)
	}
	if _, ok := Lookup("net.ipv4.vs.nope"); ok {
		t.Error("Lookup of an unknown name succeeded")
	}
}

func mustLookup(t *testing.T, name string) Setting {
	t.Helper()
	s, ok := Lookup(name)
	if !ok {
		t.Fatalf("no %s", name)
	}
	return s
}

func TestDecode(t *testing.T) {
	cases := []struct {
		name, raw, text, json, err string
	}{
		{name: "net.ipv4.vs.conn_reuse_mode", raw: "0", text: "0", json: "0"},
		{name: "net.ipv4.vs.conn_reuse_mode", raw: " 3 ", text: "3", json: "3"},
		{name: "net.ipv4.vs.conn_reuse_mode", raw: "4", err: "net.ipv4.vs.conn_reuse_mode must be 0..3, not 4"},
		{name: "net.ipv4.vs.conn_reuse_mode", raw: "-1", err: "must be 0..3, not -1"},
		{name: "net.ipv4.vs.conn_reuse_mode", raw: "1.0", err: "must be an integer, 0..3, not 1.0"},
		{name: "net.ipv4.vs.conn_reuse_mode", raw: "1e0", err: "must be an integer"},
		{name: "net.ipv4.vs.conn_reuse_mode", raw: "true", err: "must be an integer"},
		{name: "net.ipv4.vs.conn_reuse_mode", raw: `"1"`, err: "must be an integer"},
		{name: "net.ipv4.vs.expire_nodest_conn", raw: "2", err: "net.ipv4.vs.expire_nodest_conn must be 0..1, not 2"},
		{name: "net.ipv4.vs.est_nice", raw: "-20", text: "-20", json: "-20"},
		{name: "net.ipv4.vs.est_nice", raw: "20", err: "must be -20..19, not 20"},
		{name: "net.ipv4.vs.sync_ports", raw: "8", text: "8", json: "8"},
		{name: "net.ipv4.vs.sync_ports", raw: "6", err: "net.ipv4.vs.sync_ports must be a power of two in 1..64, not 6"},
		{name: "net.ipv4.vs.sync_ports", raw: "0", err: "must be a power of two in 1..64, not 0"},
		{name: "net.ipv4.vs.sync_qlen_max", raw: "9007199254740991", text: "9007199254740991", json: "9007199254740991"},
		{name: "net.ipv4.vs.sync_qlen_max", raw: "9007199254740992", err: "must be 0..9007199254740991"},
		{name: "net.ipv4.vs.lblc_expiration", raw: "2147484", err: "must be 0..2147483"},
		{name: "net.ipv4.vs.sync_threshold", raw: "[3, 50]", text: "3 50", json: "[3,50]"},
		{name: "net.ipv4.vs.sync_threshold", raw: "[3,0]", text: "3 0", json: "[3,0]"},
		{name: "net.ipv4.vs.sync_threshold", raw: "[50,50]", err: "threshold must be below the period (or the period 0), not [50,50]"},
		{name: "net.ipv4.vs.sync_threshold", raw: "[-1,50]", err: "each 0..2147483647, not [-1,50]"},
		{name: "net.ipv4.vs.sync_threshold", raw: "[1,2,3]", err: "must be [threshold, period] (two integers)"},
		{name: "net.ipv4.vs.sync_threshold", raw: "3", err: "must be [threshold, period]"},
		{name: "net.ipv4.vs.est_cpulist", raw: `"0-3,8"`, text: "0-3,8", json: `"0-3,8"`},
		{name: "net.ipv4.vs.est_cpulist", raw: `"3,0,1,2"`, text: "0-3", json: `"0-3"`},
		{name: "net.ipv4.vs.est_cpulist", raw: `"0-7:1/2"`, text: "0,2,4,6", json: `"0,2,4,6"`},
		{name: "net.ipv4.vs.est_cpulist", raw: `"0-9:2/4"`, text: "0-1,4-5,8-9", json: `"0-1,4-5,8-9"`},
		{name: "net.ipv4.vs.est_cpulist", raw: `""`, text: "", json: `""`},
		{name: "net.ipv4.vs.est_cpulist", raw: `"all"`, err: `net.ipv4.vs.est_cpulist: cpulist "all": "all" is not a CPU number`},
		{name: "net.ipv4.vs.est_cpulist", raw: `"3-1"`, err: "ends before it starts"},
		{name: "net.ipv4.vs.est_cpulist", raw: `"8192"`, err: "CPU 8192 is beyond 8191"},
		{name: "net.ipv4.vs.est_cpulist", raw: `"0-3:3/2"`, err: "1 <= used <= size"},
		{name: "net.ipv4.vs.est_cpulist", raw: `3`, err: "must be a cpulist string"},
	}
	for _, c := range cases {
		v, err := mustLookup(t, c.name).Decode(json.RawMessage(c.raw))
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s %s: error %v, want one containing %q", c.name, c.raw, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s %s: %v", c.name, c.raw, err)
			continue
		}
		if v.Text() != c.text || string(v.JSON()) != c.json {
			t.Errorf("%s %s: text %q json %s, want %q %s", c.name, c.raw, v.Text(), v.JSON(), c.text, c.json)
		}
		if b, _ := json.Marshal(v); string(b) != c.json {
			t.Errorf("%s %s: MarshalJSON %s", c.name, c.raw, b)
		}
		// What JSON() writes, Decode reads back as the same value.
		if back, err := mustLookup(t, c.name).Decode(v.JSON()); err != nil || !back.Equal(v) {
			t.Errorf("%s %s: round trip %v %v", c.name, c.raw, back, err)
		}
	}
}

func TestLoadKeepsKernelValuesOutsideTheRange(t *testing.T) {
	s := mustLookup(t, "net.ipv4.vs.expire_nodest_conn")
	v, err := s.Load(json.RawMessage("5"))
	if err != nil || v.Text() != "5" {
		t.Fatalf("Load 5: %v %v", v, err)
	}
	if _, err := s.Load(json.RawMessage(`[1,2]`)); err == nil {
		t.Error("Load accepted a pair for an int")
	}
	if v, err := mustLookup(t, "net.ipv4.vs.sync_threshold").Load(json.RawMessage("[50,3]")); err != nil || v.Text() != "50 3" {
		t.Errorf("Load pair: %v %v", v, err)
	}
}

func TestEqual(t *testing.T) {
	dec := func(name, raw string) Value {
		v, err := mustLookup(t, name).Decode(json.RawMessage(raw))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if !dec("net.ipv4.vs.drop_entry", "1").Equal(dec("net.ipv4.vs.drop_entry", "2")) {
		t.Error("drop_entry 1 and 2 are the same automatic mode")
	}
	if dec("net.ipv4.vs.drop_entry", "1").Equal(dec("net.ipv4.vs.drop_entry", "3")) {
		t.Error("drop_entry 1 and 3 differ")
	}
	if dec("net.ipv4.vs.sync_retries", "1").Equal(dec("net.ipv4.vs.sync_retries", "2")) {
		t.Error("sync_retries 1 and 2 differ")
	}
	if dec("net.ipv4.vs.sync_retries", "0").Equal(Value{}) {
		t.Error("a value equals no value")
	}
}

func writeFile(t *testing.T, root, name, content string) string {
	t.Helper()
	p := filepath.Join(root, strings.ReplaceAll(name, ".", "/"))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestProc(t *testing.T) {
	root := t.TempDir()
	fs := Proc(root)
	reuse := writeFile(t, root, "net.ipv4.vs.conn_reuse_mode", "1\n")
	writeFile(t, root, "net.ipv4.vs.sync_threshold", "3\t50\n")
	writeFile(t, root, "net.ipv4.vs.est_cpulist", "0-1\n")
	writeFile(t, root, "net.ipv6.conf.all.forwarding", "0\n")

	v, err := fs.Read("net.ipv4.vs.conn_reuse_mode")
	if err != nil || v.Text() != "1" {
		t.Fatalf("Read conn_reuse_mode: %v %v", v, err)
	}
	two, _ := mustLookup(t, "net.ipv4.vs.conn_reuse_mode").Decode(json.RawMessage("2"))
	if err := fs.Write("net.ipv4.vs.conn_reuse_mode", two); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(reuse); string(b) != "2\n" {
		t.Errorf("file holds %q after writing 2", b)
	}
	if v, _ := fs.Read("net.ipv4.vs.conn_reuse_mode"); !v.Equal(two) {
		t.Errorf("read back %v", v)
	}
	if v, err := fs.Read("net.ipv4.vs.sync_threshold"); err != nil || string(v.JSON()) != "[3,50]" {
		t.Errorf("Read sync_threshold: %v %v", v, err)
	}
	if v, err := fs.Read("net.ipv4.vs.est_cpulist"); err != nil || string(v.JSON()) != `"0-1"` {
		t.Errorf("Read est_cpulist: %v %v", v, err)
	}
	one, _ := mustLookup(t, "net.ipv6.conf.all.forwarding").Decode(json.RawMessage("1"))
	if err := fs.Write("net.ipv6.conf.all.forwarding", one); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "net/ipv6/conf/all/forwarding")); string(b) != "1\n" {
		t.Errorf("forwarding holds %q", b)
	}

	// Absent: ErrMissing naming the sysctl, and nothing created.
	_, err = fs.Read("net.ipv4.vs.lblc_expiration")
	var missing *MissingError
	if !errors.Is(err, ErrMissing) || !errors.As(err, &missing) || !strings.Contains(err.Error(), "net.ipv4.vs.lblc_expiration") ||
		!strings.Contains(err.Error(), "ip_vs_lblc module") {
		t.Errorf("Read absent: %v", err)
	}
	lblc, _ := mustLookup(t, "net.ipv4.vs.lblc_expiration").Decode(json.RawMessage("60"))
	if err := fs.Write("net.ipv4.vs.lblc_expiration", lblc); !errors.Is(err, ErrMissing) {
		t.Errorf("Write absent: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "net/ipv4/vs/lblc_expiration")); !os.IsNotExist(err) {
		t.Error("Write created the absent file")
	}
	if _, err := fs.Read("net.ipv4.ip_forward"); !errors.Is(err, ErrMissing) {
		t.Errorf("Read under an absent directory: %v", err)
	}

	// A symlink is never followed.
	target := writeFile(t, root, "elsewhere", "1\n")
	link := filepath.Join(root, "net/ipv4/vs/expire_nodest_conn")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Read("net.ipv4.vs.expire_nodest_conn"); err == nil || errors.Is(err, ErrMissing) || !errors.Is(err, syscall.ELOOP) {
		t.Errorf("Read through a symlink: %v", err)
	}
	zero, _ := mustLookup(t, "net.ipv4.vs.expire_nodest_conn").Decode(json.RawMessage("0"))
	if err := fs.Write("net.ipv4.vs.expire_nodest_conn", zero); err == nil {
		t.Error("Write through a symlink succeeded")
	}
	if b, _ := os.ReadFile(target); string(b) != "1\n" {
		t.Errorf("symlink target changed to %q", b)
	}

	// Unknown names and mismatched kinds are refused before any file is touched.
	if _, err := fs.Read("net.ipv4.tcp_syncookies"); err == nil {
		t.Error("Read of an unmanaged sysctl succeeded")
	}
	if err := fs.Write("net.ipv4.vs.sync_threshold", two); err == nil {
		t.Error("Write of an int to a pair succeeded")
	}
	// A file whose content is not of the setting's kind.
	writeFile(t, root, "net.ipv4.vs.sync_retries", "x\n")
	if _, err := fs.Read("net.ipv4.vs.sync_retries"); err == nil || !strings.Contains(err.Error(), "net.ipv4.vs.sync_retries holds") {
		t.Errorf("Read of garbage: %v", err)
	}
}
