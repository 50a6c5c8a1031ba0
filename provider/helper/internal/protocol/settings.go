package protocol

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/sysctl"
)

// Settings are director settings (ensureSettings, getSettings, the ledger): sysctls by full name, the connection
// timeouts (a 0 field is not managed), sync daemons (one per state; a state not listed is not managed) and the ports
// ip_vs_ftp is loaded with (nil: not managed; empty, only as a recorded original: the module was not loaded).
type Settings struct {
	Sysctls  map[string]sysctl.Value
	Timeouts ipvs.Timeouts
	Daemons  []ipvs.Daemon
	FTP      []uint16
	// HealthMetricsDir is where the health checker writes its Prometheus textfile metrics (`--metrics-dir`), ""
	// for none. Not a kernel item: it is recorded with the stack's settings and goes into the checker's unit.
	HealthMetricsDir string
}

// MaxFTPPorts is ip_vs_ftp's IP_VS_APP_MAX_PORTS: the module takes at most that many ports.
const MaxFTPPorts = 8

// Daemon is the daemon of a state, nil when the settings have none.
func (s Settings) Daemon(state uint32) *ipvs.Daemon {
	for i := range s.Daemons {
		if s.Daemons[i].State == state {
			return &s.Daemons[i]
		}
	}
	return nil
}

type wireTimeouts struct {
	TCP    *int64 `json:"tcp"`
	TCPFin *int64 `json:"tcpfin"`
	UDP    *int64 `json:"udp"`
}

type wireFTP struct {
	Ports []int64 `json:"ports"`
}

type wireSettings struct {
	Sysctls          map[string]json.RawMessage `json:"sysctls"`
	Timeouts         *wireTimeouts              `json:"timeouts"`
	Daemons          []wireDaemon               `json:"daemons"`
	FTP              *wireFTP                   `json:"ftp"`
	HealthMetricsDir *string                    `json:"healthMetricsDirectory"`
}

// ftpPortsOf checks ip_vs_ftp's ports: 1..MaxFTPPorts distinct TCP ports; stored (a recorded original) may be empty.
func ftpPortsOf(w *wireFTP, stored bool) ([]uint16, *Error) {
	if !stored && len(w.Ports) == 0 {
		return nil, bad("ftp.ports must list 1..%d ports (ip_vs_ftp takes at most %d), not none", MaxFTPPorts, MaxFTPPorts)
	}
	if len(w.Ports) > MaxFTPPorts {
		return nil, bad("ftp.ports must list at most %d ports (ip_vs_ftp's IP_VS_APP_MAX_PORTS), not %d", MaxFTPPorts, len(w.Ports))
	}
	out := make([]uint16, 0, len(w.Ports))
	for i, p := range w.Ports {
		// ip_vs_ftp binds to services by their port, and skips a port 0 (no port): a service port other than 0.
		if p < 1 || p > ipvs.ServicePortRange.Max {
			return nil, bad("ftp.ports[%d] must be a TCP port 1..%d, not %d", i, ipvs.ServicePortRange.Max, p)
		}
		if slices.Contains(out, uint16(p)) {
			return nil, bad("ftp.ports[%d]: port %d is listed twice", i, p)
		}
		out = append(out, uint16(p))
	}
	return out, nil
}

// CheckMetricsDir refuses a healthMetricsDirectory that is not a clean absolute path, or that holds what a systemd
// unit line would read otherwise (white space, quotes, backslashes, "%" specifiers, control characters).
func CheckMetricsDir(dir string) *Error {
	switch {
	case !filepath.IsAbs(dir) || filepath.Clean(dir) != dir || dir == "/":
		return bad("healthMetricsDirectory %q must be a clean absolute directory path such as /var/lib/node_exporter/textfile_collector", dir)
	case len(dir) > 1024:
		return bad("healthMetricsDirectory must be at most 1024 characters, not %d", len(dir))
	case strings.ContainsFunc(dir, func(r rune) bool { return r <= ' ' || r == 0x7f || strings.ContainsRune("\"'%\\", r) }):
		return bad("healthMetricsDirectory %q must not hold white space, quotes, backslashes, %% or control characters", dir)
	}
	return nil
}

func unknownSysctl(name string) *Error {
	return bad("%q is not a sysctl the helper manages (ipvs-helper names lists them)", name)
}

// DecodeSettings reads a Settings object. stored: values recorded earlier (the ledger's), whose range is not
// checked (an original value found in the kernel may lie outside what a stack may set).
func DecodeSettings(raw json.RawMessage, stored bool) (Settings, *Error) {
	var w wireSettings
	if err := strictUnmarshal(raw, &w); err != nil {
		return Settings{}, bad("settings are malformed: %v", err)
	}
	out := Settings{Sysctls: map[string]sysctl.Value{}}
	for name, v := range w.Sysctls {
		s, ok := sysctl.Lookup(name)
		if !ok {
			return Settings{}, unknownSysctl(name)
		}
		decode := s.Decode
		if stored {
			decode = s.Load
		}
		val, err := decode(v)
		if err != nil {
			return Settings{}, bad("%v", err)
		}
		out.Sysctls[name] = val
	}
	if t := w.Timeouts; t != nil {
		var e *Error
		if out.Timeouts, e = timeoutsOf(t.TCP, t.TCPFin, t.UDP); e != nil {
			return Settings{}, e
		}
	}
	if w.HealthMetricsDir != nil {
		if e := CheckMetricsDir(*w.HealthMetricsDir); e != nil {
			return Settings{}, e
		}
		out.HealthMetricsDir = *w.HealthMetricsDir
	}
	for i := range w.Daemons {
		d, e := daemonOf(&w.Daemons[i])
		if e != nil {
			return Settings{}, e
		}
		if out.Daemon(d.State) != nil {
			return Settings{}, bad("settings list two %s sync daemons; there is at most one per state", w.Daemons[i].State)
		}
		out.Daemons = append(out.Daemons, d)
	}
	if w.FTP != nil {
		var e *Error
		if out.FTP, e = ftpPortsOf(w.FTP, stored); e != nil {
			return Settings{}, e
		}
	}
	return out, nil
}

// TimeoutsOut are connection timeouts; a field that is 0 (not managed) is left out.
type TimeoutsOut struct {
	TCP    uint32 `json:"tcp,omitempty"`
	TCPFin uint32 `json:"tcpfin,omitempty"`
	UDP    uint32 `json:"udp,omitempty"`
}

// SettingsOut renders Settings; DecodeSettings reads it back.
type SettingsOut struct {
	Sysctls          map[string]sysctl.Value `json:"sysctls"`
	Timeouts         TimeoutsOut             `json:"timeouts"`
	Daemons          []map[string]any        `json:"daemons"`
	FTP              *FTPOut                 `json:"ftp,omitempty"`
	HealthMetricsDir string                  `json:"healthMetricsDirectory,omitempty"`
}

// FTPOut is the ftp item: the ports ip_vs_ftp is loaded with (none: not loaded).
type FTPOut struct {
	Ports []uint16 `json:"ports"`
}

// SettingsJSON renders settings (daemons by state, master first; default daemon fields left out).
func SettingsJSON(s Settings) SettingsOut {
	o := SettingsOut{Sysctls: s.Sysctls, Timeouts: TimeoutsOut{s.Timeouts.TCP, s.Timeouts.TCPFin, s.Timeouts.UDP}, Daemons: []map[string]any{},
		HealthMetricsDir: s.HealthMetricsDir}
	if o.Sysctls == nil {
		o.Sysctls = map[string]sysctl.Value{}
	}
	ds := append([]ipvs.Daemon(nil), s.Daemons...)
	sort.Slice(ds, func(i, j int) bool { return ds[i].State < ds[j].State })
	for _, d := range ds {
		j := DaemonJSON(d)
		m := map[string]any{"state": j.State, "interface": j.Interface, "syncId": j.SyncID}
		if j.MaxLen != 0 {
			m["maxLen"] = j.MaxLen
		}
		if j.Group != "" {
			m["group"] = j.Group
		}
		if j.Port != 0 {
			m["port"] = j.Port
		}
		if j.TTL != 0 {
			m["ttl"] = j.TTL
		}
		o.Daemons = append(o.Daemons, m)
	}
	if s.FTP != nil {
		o.FTP = &FTPOut{Ports: append([]uint16{}, s.FTP...)}
	}
	return o
}

// SysctlNames lists the names of a settings object's sysctls, sorted.
func (s Settings) SysctlNames() []string {
	names := make([]string, 0, len(s.Sysctls))
	for n := range s.Sysctls {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Describe says what a Settings object holds, for the helper's printed lines ("net.ipv4.vs.conntrack=1, timeouts
// tcp 900, master sync daemon on eth0").
func (s Settings) Describe() string {
	var parts []string
	for _, n := range s.SysctlNames() {
		parts = append(parts, n+"="+s.Sysctls[n].Text())
	}
	var ts []string
	for _, t := range []struct {
		name string
		v    uint32
	}{{"tcp", s.Timeouts.TCP}, {"tcpfin", s.Timeouts.TCPFin}, {"udp", s.Timeouts.UDP}} {
		if t.v != 0 {
			ts = append(ts, t.name+" "+itoa(t.v))
		}
	}
	if len(ts) > 0 {
		parts = append(parts, "timeouts "+strings.Join(ts, " "))
	}
	for _, d := range SettingsJSON(s).Daemons {
		parts = append(parts, d["state"].(string)+" sync daemon on "+d["interface"].(string))
	}
	if s.FTP != nil {
		parts = append(parts, DescribeFTP(s.FTP))
	}
	if s.HealthMetricsDir != "" {
		parts = append(parts, "health metrics in "+s.HealthMetricsDir)
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, ", ")
}

// DescribeFTP says how ip_vs_ftp is loaded: "ip_vs_ftp ports 21,2121", or "ip_vs_ftp not loaded" for none.
func DescribeFTP(ports []uint16) string {
	if len(ports) == 0 {
		return "ip_vs_ftp not loaded"
	}
	return "ip_vs_ftp ports " + FTPPortList(ports)
}

// FTPPortList is ports as ip_vs_ftp's parameter takes them: "21,2121".
func FTPPortList(ports []uint16) string {
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = itoa(uint32(p))
	}
	return strings.Join(s, ",")
}

func itoa(v uint32) string { b, _ := json.Marshal(v); return string(b) }
