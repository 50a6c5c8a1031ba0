package engine

import (
	"encoding/json"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
)

// fakeModules is ip_vs_ftp as the kernel would hold it: loaded with ports or not, refs bound connections.
type fakeModules struct {
	ports []uint16 // nil: not loaded
	refs  int
	log   []string
}

func (m *fakeModules) Param(module, name string) (string, bool, error) {
	if module != ftpModule || name != "ports" || m.ports == nil {
		return "", false, nil
	}
	// As sysfs prints an array parameter: every slot given at load.
	return protocol.FTPPortList(m.ports), true, nil
}

func (m *fakeModules) Refs(string) (int, error) { return m.refs, nil }

func (m *fakeModules) Unload(module string) error {
	if m.refs > 0 {
		return syscall.EWOULDBLOCK
	}
	m.log = append(m.log, "unload")
	m.ports = nil
	return nil
}

// load is the Modprober: modprobe ip_vs_ftp ports=….
func (m *fakeModules) load(module string, params ...string) error {
	m.log = append(m.log, strings.TrimSpace("load "+module+" "+strings.Join(params, " ")))
	if module == ftpModule && m.ports == nil {
		m.ports = []uint16{21}
		for _, p := range params {
			if v, ok := strings.CutPrefix(p, "ports="); ok {
				m.ports, _ = parseFTPPorts(v)
			}
		}
	}
	return nil
}

func ftpEngine(t *testing.T) (*fakeModules, *Engine) {
	_, e, _ := newSettingsEngine(t)
	m := e.Modules.(*fakeModules)
	e.modprobe = m.load
	return m, e
}

func ftpOf(r protocol.Result) string {
	b, _ := json.Marshal(r["settings"].(protocol.SettingsOut).FTP)
	return string(b)
}

// ensureSettings loads ip_vs_ftp with the stack's ports once; other ports reload it only while no connection uses
// it (refused naming the field otherwise, nothing changed); deleteSettings unloads what the stack loaded.
func TestFTPPortsLoadReloadAndUnload(t *testing.T) {
	m, e := ftpEngine(t)
	r := run(t, e, ensureSettings(stackA, `{"ftp":{"ports":[21,2121]}}`))[0]
	wantCode(t, "first ensure", r, "ok")
	if r["changed"] != true || ftpOf(r) != `{"ports":[21,2121]}` || !slices.Equal(m.log, []string{"load ip_vs_ftp ports=21,2121"}) {
		t.Fatalf("first ensure %v, %s, log %v", r, ftpOf(r), m.log)
	}
	r = run(t, e, ensureSettings(stackA, `{"ftp":{"ports":[2121,21]}}`))[0]
	if r["changed"] != false || len(m.log) != 1 {
		t.Fatalf("same ports in another order: %v, log %v", r, m.log)
	}
	m.refs = 2
	r = run(t, e, ensureSettings(stackA, `{"ftp":{"ports":[21]}}`))[0]
	wantCode(t, "ports change in use", r, "INVALID", "ftp.ports changed", "ip_vs_ftp ports 21,2121 to ip_vs_ftp ports 21", "2 connection(s) use it", "Retry once")
	if !slices.Equal(m.ports, []uint16{21, 2121}) {
		t.Fatalf("refused change touched the module: %v", m.ports)
	}
	got := run(t, e, `{"op":"getSettings","sysctls":[]}`)[0]
	if ftpOf(got) != `{"ports":[21,2121]}` {
		t.Fatalf("getSettings reads %s", ftpOf(got))
	}
	m.refs = 0
	r = run(t, e, ensureSettings(stackA, `{"ftp":{"ports":[21]}}`))[0]
	if r["changed"] != true || !slices.Equal(m.ports, []uint16{21}) || !slices.Equal(m.log[1:], []string{"unload", "load ip_vs_ftp ports=21"}) {
		t.Fatalf("reload: %v, log %v", r, m.log)
	}
	wantCode(t, "delete", run(t, e, `{"op":"deleteSettings",`+owner(stackA)+`}`)[0], "ok")
	if m.ports != nil || ledgerSettings(t, stackA)[0] != nil {
		t.Fatalf("after delete: ports %v, record %s", m.ports, show(ledgerSettings(t, stackA)[0]))
	}
}

// A module someone loaded before the stack is put back as found: dropping the item reloads the old ports; while in
// use the drop is refused and the record kept, so a retry finishes it.
func TestFTPFoundLoadedIsPutBack(t *testing.T) {
	m, e := ftpEngine(t)
	m.ports = []uint16{21}
	wantCode(t, "ensure", run(t, e, ensureSettings(stackA, `{"sysctls":{"net.ipv4.vs.conntrack":1},"ftp":{"ports":[2121]}}`))[0], "ok")
	if _, orig, _ := strings.Cut(show(ledgerSettings(t, stackA)[0]), "(original "); !strings.Contains(orig, `"ftp":{"ports":[21]}`) {
		t.Fatalf("original %s", orig)
	}
	m.refs = 1
	wantCode(t, "drop in use", run(t, e, ensureSettings(stackA, `{"sysctls":{"net.ipv4.vs.conntrack":1}}`))[0], "INVALID",
		"the stack no longer sets ftp", "1 connection(s)")
	if !strings.Contains(show(ledgerSettings(t, stackA)[0]), `"ftp":{"ports":[2121]}`) {
		t.Fatalf("record after a refused drop %s", show(ledgerSettings(t, stackA)[0]))
	}
	m.refs = 0
	wantCode(t, "drop", run(t, e, ensureSettings(stackA, `{"sysctls":{"net.ipv4.vs.conntrack":1}}`))[0], "ok")
	if !slices.Equal(m.ports, []uint16{21}) || strings.Contains(show(ledgerSettings(t, stackA)[0]), "ftp") {
		t.Fatalf("after drop: ports %v, record %s", m.ports, show(ledgerSettings(t, stackA)[0]))
	}
}

func TestFTPPortsRules(t *testing.T) {
	for in, want := range map[string]string{
		`{"ftp":{"ports":[]}}`:                  "ftp.ports must list 1..8 ports",
		`{"ftp":{"ports":[0]}}`:                 "ftp.ports[0] must be a TCP port 1..65535, not 0",
		`{"ftp":{"ports":[21,65536]}}`:          "ftp.ports[1] must be a TCP port 1..65535, not 65536",
		`{"ftp":{"ports":[21,2121,21]}}`:        "ftp.ports[2]: port 21 is listed twice",
		`{"ftp":{"ports":[1,2,3,4,5,6,7,8,9]}}`: "at most 8 ports (ip_vs_ftp's IP_VS_APP_MAX_PORTS), not 9",
		`{"ftp":{"ports":[21],"other":1}}`:      "malformed",
	} {
		_, perr := protocol.DecodeSettings(json.RawMessage(in), false)
		if perr == nil || !strings.Contains(perr.Message, want) {
			t.Errorf("%s: %v, want %q", in, perr, want)
		}
	}
	// A recorded original may say "not loaded".
	if s, perr := protocol.DecodeSettings(json.RawMessage(`{"ftp":{"ports":[]}}`), true); perr != nil || s.FTP == nil || len(s.FTP) != 0 {
		t.Errorf("stored empty ports: %v %v", s.FTP, perr)
	}
	if p, err := parseFTPPorts("21,0,0"); err != nil || !slices.Equal(p, []uint16{21}) {
		t.Errorf("parseFTPPorts: %v %v", p, err)
	}
}
