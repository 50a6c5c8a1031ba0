package managers_test

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ledger/ledgertest"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/managers"
)

func write(t *testing.T, root, path, text string) {
	t.Helper()
	p := filepath.Join(root, path)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func tcp(a string, port uint16) ipvs.ServiceKey {
	return ipvs.ServiceKey{AF: ipvs.AFInet, Protocol: ipvs.ProtoTCP, Addr: netip.MustParseAddr(a), Port: port}
}

func scan() (*managers.Snapshot, error) { return managers.Scan(time.Now().Add(10 * time.Second)) }

func TestKeepalivedAndKubeProxy(t *testing.T) {
	root := ledgertest.Use(t)
	managers.InterfaceAddrs = func(name string) ([]netip.Addr, error) {
		if name == managers.KubeInterface {
			return []netip.Addr{netip.MustParseAddr("10.96.0.1")}, nil
		}
		return nil, nil
	}
	// keepalived started with -f; its configuration includes a glob, relative to its own directory.
	ledgertest.Process(t, root, 77, "keepalived", os.Getuid(), "/usr/sbin/keepalived", "-f", "/srv/ka/main.conf")
	ledgertest.Process(t, root, 78, "sshd", os.Getuid(), "/usr/sbin/sshd")
	write(t, root, "srv/ka/main.conf", `! Configuration File for keepalived
global_defs { router_id lb1 }
include conf.d/*.conf
virtual_server 192.0.2.10 80 {   # the web VIP
    protocol TCP
    real_server 10.0.0.1 80 { weight 1 }
}
`)
	write(t, root, "srv/ka/conf.d/fw.conf", "virtual_server fwmark 7 {\n  protocol TCP\n}\n")
	write(t, root, "srv/ka/conf.d/group.conf", `virtual_server_group web {
  192.0.2.20-22 443
  fwmark 9
}
virtual_server group web { protocol TCP }
`)
	// Not running: its default configuration declares nothing.
	write(t, root, "etc/keepalived/keepalived.conf", "virtual_server 192.0.2.99 80 {\n}\n")
	s, err := scan()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		key  ipvs.ServiceKey
		want string
	}{
		{tcp("192.0.2.10", 80), "keepalived (its configuration /srv/ka/main.conf declares virtual_server 192.0.2.10 80)"},
		{tcp("192.0.2.10", 81), ""},
		{ipvs.ServiceKey{AF: ipvs.AFInet, FWMark: 7}, "/srv/ka/conf.d/fw.conf declares virtual_server fwmark 7"},
		{ipvs.ServiceKey{AF: ipvs.AFInet, FWMark: 9}, "/srv/ka/conf.d/group.conf declares virtual_server fwmark 9"},
		{tcp("192.0.2.21", 443), "virtual_server 192.0.2.21 443"},
		{tcp("192.0.2.23", 443), ""},
		{tcp("192.0.2.99", 80), ""},
		{tcp("10.96.0.1", 53), "kube-proxy (10.96.0.1 is an address of interface kube-ipvs0)"},
	} {
		got := s.Manager(c.key)
		if c.want == "" && got != "" || c.want != "" && !strings.Contains(got, c.want) {
			t.Errorf("%s: %q, want %q", c.key, got, c.want)
		}
	}
	// Without -f keepalived reads its default configuration.
	write(t, root, "proc/77/cmdline", "keepalived\x00--dont-fork\x00")
	if s, err = scan(); err != nil || s.Manager(tcp("192.0.2.99", 80)) == "" || s.Manager(tcp("192.0.2.10", 80)) != "" {
		t.Errorf("default configuration: %v", err)
	}
}

// A process named keepalived counts only when every uid of it is root's and its executable is root's: any user can
// start a program of that name, and the helper reads as root what it names with -f.
func TestKeepalivedOfAnotherUserIsIgnored(t *testing.T) {
	root := ledgertest.Use(t)
	write(t, root, "srv/ka/main.conf", "virtual_server 192.0.2.10 80 {\n}\n")
	uid := os.Getuid()
	ledgertest.Process(t, root, 77, "keepalived", uid+1, "keepalived", "-f", "/srv/ka/main.conf")
	if s, err := scan(); err != nil || s.Manager(tcp("192.0.2.10", 80)) != "" {
		t.Errorf("a keepalived of uid %d counted: %v", uid+1, err)
	}
	// Real uid root's, saved uid another's: not root's.
	write(t, root, "proc/77/status", fmt.Sprintf("Uid:\t%d\t%d\t%d\t%d\n", uid, uid, uid+1, uid))
	if s, err := scan(); err != nil || s.Manager(tcp("192.0.2.10", 80)) != "" {
		t.Errorf("a keepalived with a foreign saved uid counted: %v", err)
	}
	write(t, root, "proc/77/status", fmt.Sprintf("Uid:\t%d\t%d\t%d\t%d\n", uid, uid, uid, uid))
	if s, err := scan(); err != nil || s.Manager(tcp("192.0.2.10", 80)) == "" {
		t.Fatalf("root's keepalived not seen: %v", err)
	}
	// Root's process running an executable others may write (or, as root, one owned by another user).
	exe := filepath.Join(root, "usr/sbin/keepalived")
	os.Chmod(exe, 0o777)
	if s, err := scan(); err != nil || s.Manager(tcp("192.0.2.10", 80)) != "" {
		t.Errorf("a keepalived running a world-writable executable counted: %v", err)
	}
	os.Chmod(exe, 0o755)
	if uid == 0 {
		os.Lchown(exe, 65534, 65534)
		if s, err := scan(); err != nil || s.Manager(tcp("192.0.2.10", 80)) != "" {
			t.Errorf("a keepalived running another user's executable counted: %v", err)
		}
	}
}

// What root's keepalived names is read without blocking, following a symlink or reading without bound: a FIFO, a
// device, a symlink, a huge (sparse) file and too many includes each fail the scan at once, naming the file.
func TestKeepalivedConfigurationIsReadWithBounds(t *testing.T) {
	root := ledgertest.Use(t)
	ledgertest.Process(t, root, 77, "keepalived", os.Getuid(), "keepalived", "-f", "/srv/ka/main.conf")
	conf := filepath.Join(root, "srv/ka/main.conf")
	os.MkdirAll(filepath.Dir(conf), 0o755)
	check := func(what, want string) {
		t.Helper()
		start := time.Now()
		_, err := scan()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", what, err, want)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s: the scan took %s", what, d)
		}
	}
	if err := syscall.Mkfifo(conf, 0o644); err != nil {
		t.Fatal(err)
	}
	check("a FIFO", "reading keepalived's configuration /srv/ka/main.conf: it is not a regular file")
	os.Remove(conf)
	os.Symlink("/dev/zero", conf)
	check("a symlink to /dev/zero", "/srv/ka/main.conf: open")
	os.Remove(conf)
	f, _ := os.Create(conf)
	f.Truncate(8 << 40) // 8 TiB, sparse
	f.Close()
	check("an 8 TiB sparse file", "it is 8796093022208 bytes, more than the 1048576 this helper reads")
	os.WriteFile(conf, []byte("include /srv/ka/conf.d/*.conf\n"), 0o644)
	for i := 0; i < 70; i++ {
		write(t, root, fmt.Sprintf("srv/ka/conf.d/%02d.conf", i), fmt.Sprintf("virtual_server 192.0.2.%d 80 {\n}\n", i))
	}
	check("70 includes", "includes more than 64 files")
}

// A scan that cannot finish by its deadline (a read stuck on a hung filesystem) says so, naming what it was reading.
func TestScanHasItsOwnDeadline(t *testing.T) {
	ledgertest.Use(t)
	stuck, exited := make(chan struct{}), make(chan struct{})
	defer func() { close(stuck); <-exited }()
	// Released when the test ends, it then fails the scan at once, and the test waits for that.
	managers.InterfaceAddrs = func(string) ([]netip.Addr, error) { <-stuck; close(exited); return nil, os.ErrClosed }
	start := time.Now()
	_, err := managers.Scan(time.Now().Add(100 * time.Millisecond))
	if err == nil || !strings.Contains(err.Error(), "did not finish in time") || time.Since(start) > time.Second {
		t.Fatalf("after %s: %v", time.Since(start), err)
	}
}

func TestKeepalivedVRRPAddresses(t *testing.T) {
	root := ledgertest.Use(t)
	managers.InterfaceAddrs = func(string) ([]netip.Addr, error) { return nil, nil }
	ledgertest.Process(t, root, 80, "keepalived", os.Getuid(), "/usr/sbin/keepalived")
	write(t, root, "etc/keepalived/keepalived.conf", `vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    authentication {
        auth_type PASS
    }
    virtual_ipaddress {
        192.0.2.10/24 brd 192.0.2.255 dev eth0 label eth0:1
        2001:db8::10
    }
    virtual_ipaddress_excluded {
        198.51.100.7
    }
}
static_ipaddress {
    203.0.113.9/32 dev eth0
}
`)
	s, err := scan()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ addr, want string }{
		{"192.0.2.10", "keepalived (192.0.2.10 is a virtual_ipaddress of vrrp_instance VI_1 in /etc/keepalived/keepalived.conf)"},
		{"2001:db8::10", "vrrp_instance VI_1"},
		{"198.51.100.7", "vrrp_instance VI_1"},
		{"192.0.2.255", ""}, // a broadcast address, not one VRRP moves
		{"203.0.113.9", ""}, // static_ipaddress: not moved by VRRP
	} {
		got := s.AddressManager(netip.MustParseAddr(c.addr))
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("AddressManager(%s) = %q, want %q", c.addr, got, c.want)
		}
	}
}
