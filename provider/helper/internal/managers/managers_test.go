package managers_test

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

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

func TestKeepalivedAndKubeProxy(t *testing.T) {
	root := ledgertest.Use(t)
	managers.InterfaceAddrs = func(name string) ([]netip.Addr, error) {
		if name == managers.KubeInterface {
			return []netip.Addr{netip.MustParseAddr("10.96.0.1")}, nil
		}
		return nil, nil
	}
	// keepalived started with -f; its configuration includes a glob, relative to its own directory.
	write(t, root, "proc/77/comm", "keepalived\n")
	write(t, root, "proc/77/cmdline", "/usr/sbin/keepalived\x00-f\x00/srv/ka/main.conf\x00")
	write(t, root, "proc/78/comm", "sshd\n")
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
	s, err := managers.Scan()
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
	if s, err = managers.Scan(); err != nil || s.Manager(tcp("192.0.2.99", 80)) == "" || s.Manager(tcp("192.0.2.10", 80)) != "" {
		t.Errorf("default configuration: %v", err)
	}
}
