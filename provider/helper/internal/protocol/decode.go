package protocol

import (
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"sort"
	"strings"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/sysctl"
)

// Op is one decoded, range-checked operation. Rules that need the merged entry (ipvsadm's cross-field rules)
// are checked by the engine with ipvs.ValidateService / ValidateDest before anything is sent.
type Op struct {
	Name            string
	Service         ipvs.ServiceKey
	ServiceSettings ServiceSettings
	Dest            ipvs.DestKey
	DestPort        bool // the dest gave a port (else: the service port, as ipvsadm does)
	DestSettings    DestSettings
	OnExisting      OnExisting
	WithDests       bool
	Timeouts        ipvs.Timeouts
	Daemon          ipvs.Daemon
	State           uint32

	// Ownership (PROTOCOL.md "Ownership ledger"): Owner "" = a protocol-1 op that never reads or writes the ledger.
	Owner       string
	FormerOwner string
	// Holder (ensureDest, deleteDest): the resource within the owner's stack that holds the real server (its URN);
	// "" = no holder check (callers before it).
	Holder string
	// FormerHolder (ensureDest, deleteDest, with Holder): the resource of the same stack the real server moves from
	// (a resource renamed with aliases keeps its dest); "" = none.
	FormerHolder     string
	Takeover         bool
	WithForeignDests bool
	// DryRun (deleteService): answer as the delete would, change nothing (a drain asks before quiescing).
	DryRun bool

	Settings Settings // ensureSettings
	Sysctls  []string // getSettings: the sysctls to read, by full name
}

// OnExisting is what an ensure does when its entry already exists.
type OnExisting uint8

const (
	// ExistingUpdate SETs the merged entry when a given field differs (the default).
	ExistingUpdate OnExisting = iota
	// ExistingFail refuses with EXISTS.
	ExistingFail
	// ExistingMatch succeeds unchanged when the entry already holds every given setting, else refuses with EXISTS:
	// a create that can be re-sent after its answer was lost.
	ExistingMatch
)

// ServiceSettings are the optional settings of ensureService; nil/unset = keep (or default when creating).
type ServiceSettings struct {
	Scheduler   *string
	Flags       []string
	HasFlags    bool
	Persistence Opt[Persistence]
	PE          *string
	OnePacket   *bool
}

// Persistence is {timeout, netmask}; absent timeout = 360 (ipvsadm's -p default), absent netmask = no grouping.
type Persistence struct {
	Timeout *int64  `json:"timeout"`
	Netmask *string `json:"netmask"`
}

// DestSettings are the optional settings of ensureDest.
type DestSettings struct {
	Fwd     *uint32
	Weight  *uint32
	UThresh *uint32
	LThresh *uint32
	Tunnel  Opt[Tunnel]
}

// Tunnel is the tunnel encapsulation of a tunnel-forwarded dest.
type Tunnel struct {
	Type     string `json:"type"`
	Port     *int64 `json:"port"`
	Checksum string `json:"checksum"`
}

type wireService struct {
	Family            string           `json:"family"`
	Protocol          *string          `json:"protocol"`
	Address           *string          `json:"address"`
	Port              *int64           `json:"port"`
	FWMark            *int64           `json:"fwmark"`
	Scheduler         *string          `json:"scheduler"`
	SchedulerFlags    *[]string        `json:"schedulerFlags"`
	Persistence       Opt[Persistence] `json:"persistence"`
	PersistenceEngine *string          `json:"persistenceEngine"`
	OnePacket         *bool            `json:"onePacket"`
}

type wireDest struct {
	Address        string      `json:"address"`
	Port           *int64      `json:"port"`
	Forwarding     *string     `json:"forwarding"`
	Weight         *int64      `json:"weight"`
	UpperThreshold *int64      `json:"upperThreshold"`
	LowerThreshold *int64      `json:"lowerThreshold"`
	Tunnel         Opt[Tunnel] `json:"tunnel"`
}

type wireDaemon struct {
	State     string  `json:"state"`
	Interface string  `json:"interface"`
	SyncID    *int64  `json:"syncId"`
	MaxLen    *int64  `json:"maxLen"`
	Group     *string `json:"group"`
	Port      *int64  `json:"port"`
	TTL       *int64  `json:"ttl"`
}

type wireOp struct {
	Op         string       `json:"op"`
	Service    *wireService `json:"service"`
	Dest       *wireDest    `json:"dest"`
	OnExisting *string      `json:"onExisting"`
	WithDests  *bool        `json:"withDests"`
	TCP        *int64       `json:"tcp"`
	TCPFin     *int64       `json:"tcpfin"`
	UDP        *int64       `json:"udp"`
	Daemon     *wireDaemon  `json:"daemon"`
	State      *string      `json:"state"`

	Owner            *string `json:"owner"`
	FormerOwner      *string `json:"formerOwner"`
	Holder           *string `json:"holder"`
	FormerHolder     *string `json:"formerHolder"`
	Takeover         *bool   `json:"takeover"`
	WithForeignDests *bool   `json:"withForeignDests"`
	DryRun           *bool   `json:"dryRun"`

	Settings json.RawMessage `json:"settings"`
	Sysctls  *[]string       `json:"sysctls"`
}

// fields each op accepts (besides "op"), and which of them are required.
var opFields = map[string]struct{ allowed, required string }{
	"ensureService": {"service onExisting owner formerOwner takeover", "service"},
	"deleteService": {"service owner withForeignDests dryRun", "service"},
	"getService":    {"service withDests", "service"},
	"ensureDest":    {"service dest onExisting owner formerOwner holder formerHolder takeover", "service dest"},
	"deleteDest":    {"service dest owner holder formerHolder", "service dest"},
	"getDest":       {"service dest", "service dest"},
	"dump":          {"", ""},
	"setTimeouts":   {"tcp tcpfin udp", ""},
	"getTimeouts":   {"", ""},
	"ensureDaemon":  {"daemon", "daemon"},
	"deleteDaemon":  {"state", "state"},
	"getDaemons":    {"", ""},
	"info":          {"", ""},
	"zero":          {"service", ""},
	"flush":         {"", ""},

	"ensureSettings": {"owner formerOwner settings", "owner settings"},
	"deleteSettings": {"owner", "owner"},
	"getSettings":    {"sysctls", ""},
}

func bad(format string, a ...any) *Error {
	return &Error{Code: CodeBadRequest, Message: fmt.Sprintf(format, a...)}
}

func rng(v *int64, what string, lo, hi int64) (uint32, *Error) {
	if *v < lo || *v > hi {
		return 0, bad("%s %d must be %d..%d", what, *v, lo, hi)
	}
	return uint32(*v), nil
}

// DecodeOp reads one operation, rejecting unknown ops, unknown or misplaced fields and out-of-range values.
func DecodeOp(raw json.RawMessage) (*Op, *Error) {
	var w wireOp
	if err := strictUnmarshal(raw, &w); err != nil {
		return nil, bad("operation %q is malformed: %v", w.Op, err)
	}
	spec, ok := opFields[w.Op]
	if !ok {
		names := make([]string, 0, len(opFields))
		for n := range opFields {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, bad("unknown operation %q (known: %s)", w.Op, strings.Join(names, ", "))
	}
	// A null field counts as absent.
	present := map[string]bool{"service": w.Service != nil, "dest": w.Dest != nil, "onExisting": w.OnExisting != nil,
		"withDests": w.WithDests != nil, "tcp": w.TCP != nil, "tcpfin": w.TCPFin != nil, "udp": w.UDP != nil,
		"daemon": w.Daemon != nil, "state": w.State != nil, "owner": w.Owner != nil, "formerOwner": w.FormerOwner != nil,
		"holder": w.Holder != nil, "formerHolder": w.FormerHolder != nil, "takeover": w.Takeover != nil, "withForeignDests": w.WithForeignDests != nil,
		"dryRun":   w.DryRun != nil,
		"settings": w.Settings != nil && string(w.Settings) != "null", "sysctls": w.Sysctls != nil}
	allowed := " " + spec.allowed + " "
	for k, there := range present {
		if there && !strings.Contains(allowed, " "+k+" ") {
			return nil, bad("operation %s does not take field %q", w.Op, k)
		}
	}
	for _, k := range strings.Fields(spec.required) {
		if !present[k] {
			return nil, bad("operation %s needs field %q", w.Op, k)
		}
	}
	op := &Op{Name: w.Op}
	if e := decodeOwnership(&w, op); e != nil {
		return nil, e
	}
	if w.Service != nil {
		settingsAllowed := w.Op == "ensureService"
		if e := decodeService(w.Service, settingsAllowed, op); e != nil {
			return nil, e
		}
	}
	if w.Dest != nil {
		if e := decodeDest(w.Dest, w.Op == "ensureDest", op); e != nil {
			return nil, e
		}
	}
	if w.OnExisting != nil {
		switch *w.OnExisting {
		case "update":
		case "fail":
			op.OnExisting = ExistingFail
		case "match":
			op.OnExisting = ExistingMatch
		default:
			return nil, bad("onExisting %q must be \"update\", \"fail\" or \"match\"", *w.OnExisting)
		}
	}
	op.WithDests = w.WithDests != nil && *w.WithDests
	for _, t := range []struct {
		v    *int64
		name string
		dst  *uint32
	}{{w.TCP, "tcp timeout", &op.Timeouts.TCP}, {w.TCPFin, "tcpfin timeout", &op.Timeouts.TCPFin}, {w.UDP, "udp timeout", &op.Timeouts.UDP}} {
		if t.v != nil {
			var e *Error
			if *t.dst, e = rng(t.v, t.name, 0, math.MaxInt32); e != nil {
				return nil, e
			}
		}
	}
	if w.Daemon != nil {
		if e := decodeDaemon(w.Daemon, op); e != nil {
			return nil, e
		}
	}
	if present["settings"] {
		set, e := DecodeSettings(w.Settings, false)
		if e != nil {
			return nil, e
		}
		op.Settings = set
	}
	if w.Sysctls != nil {
		for _, name := range *w.Sysctls {
			if _, ok := sysctl.Lookup(name); !ok {
				return nil, unknownSysctl(name)
			}
		}
		op.Sysctls = *w.Sysctls
	}
	if w.State != nil {
		s, e := daemonState(*w.State)
		if e != nil {
			return nil, e
		}
		op.State = s
	}
	return op, nil
}

func parseFamily(f string) (uint16, *Error) {
	switch f {
	case "ipv4":
		return ipvs.AFInet, nil
	case "ipv6":
		return ipvs.AFInet6, nil
	}
	return 0, bad("family %q must be \"ipv4\" or \"ipv6\"", f)
}

func parseAddr(s string, af uint16, what string) (netip.Addr, *Error) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" || a.Is4In6() {
		return a, bad("%s %q is not an IP address", what, s)
	}
	if af != 0 && a.Is4() != (af == ipvs.AFInet) {
		return a, bad("%s %s is not an %s address", what, s, ipvs.FamilyName(af))
	}
	return a, nil
}

func decodeService(w *wireService, settingsAllowed bool, op *Op) *Error {
	af, e := parseFamily(w.Family)
	if e != nil {
		return e
	}
	k := ipvs.ServiceKey{AF: af}
	if w.FWMark != nil {
		if w.Protocol != nil || w.Address != nil || w.Port != nil {
			return bad("a fwmark service has no protocol, address or port")
		}
		if k.FWMark, e = rng(w.FWMark, "fwmark", 1, math.MaxUint32); e != nil {
			return e
		}
	} else {
		if w.Protocol == nil || w.Address == nil || w.Port == nil {
			return bad("a service needs either fwmark or protocol, address and port")
		}
		switch *w.Protocol {
		case "tcp":
			k.Protocol = ipvs.ProtoTCP
		case "udp":
			k.Protocol = ipvs.ProtoUDP
		case "sctp":
			k.Protocol = ipvs.ProtoSCTP
		default:
			return bad("protocol %q must be tcp, udp or sctp", *w.Protocol)
		}
		if k.Addr, e = parseAddr(*w.Address, af, "service address"); e != nil {
			return e
		}
		p, e := rng(w.Port, "service port", 0, 65535)
		if e != nil {
			return e
		}
		k.Port = uint16(p)
	}
	op.Service = k
	hasSettings := w.Scheduler != nil || w.SchedulerFlags != nil || w.Persistence.Set || w.PersistenceEngine != nil || w.OnePacket != nil
	if hasSettings && !settingsAllowed {
		return bad("operation %s takes only the service identity, not its settings", op.Name)
	}
	s := &op.ServiceSettings
	s.Scheduler = w.Scheduler
	if w.SchedulerFlags != nil {
		s.HasFlags, s.Flags = true, *w.SchedulerFlags
	}
	s.Persistence = w.Persistence
	if p := w.Persistence; p.Set && !p.Null {
		if p.Val.Timeout != nil {
			if _, e := rng(p.Val.Timeout, "persistence timeout", 1, ipvs.MaxPersistence); e != nil {
				return e
			}
		}
		if p.Val.Netmask != nil {
			if _, err := ipvs.ParseNetmask(af, *p.Val.Netmask); err != nil {
				return bad("%s: %v", k, err)
			}
		}
	}
	s.PE = w.PersistenceEngine
	s.OnePacket = w.OnePacket
	return nil
}

// Forwarding names the protocol accepts for writes; "local" and "bypass" are only ever read back.
var forwardings = map[string]uint32{"nat": ipvs.FwdMasq, "dr": ipvs.FwdRoute, "tunnel": ipvs.FwdTunnel}

// DestKeyOf is a real server's identity from its address and port, as decodeDest reads them (the ledger keys its
// records with it without a JSON round trip).
func DestKeyOf(address string, port uint16) (ipvs.DestKey, *Error) {
	a, e := parseAddr(address, 0, "real server address")
	if e != nil {
		return ipvs.DestKey{}, e
	}
	k := ipvs.DestKey{AF: ipvs.AFInet, Addr: a, Port: port}
	if a.Is6() {
		k.AF = ipvs.AFInet6
	}
	return k, nil
}

func decodeDest(w *wireDest, settingsAllowed bool, op *Op) *Error {
	k, e := DestKeyOf(w.Address, 0)
	if e != nil {
		return e
	}
	op.Dest = k
	if w.Port != nil {
		p, e := rng(w.Port, "real server port", 0, 65535)
		if e != nil {
			return e
		}
		op.Dest.Port, op.DestPort = uint16(p), true
	}
	hasSettings := w.Forwarding != nil || w.Weight != nil || w.UpperThreshold != nil || w.LowerThreshold != nil || w.Tunnel.Set
	if hasSettings && !settingsAllowed {
		return bad("operation %s takes only the real server identity, not its settings", op.Name)
	}
	d := &op.DestSettings
	if w.Forwarding != nil {
		f, ok := forwardings[*w.Forwarding]
		if !ok {
			return bad("forwarding %q must be nat, dr or tunnel", *w.Forwarding)
		}
		d.Fwd = &f
	}
	for _, n := range []struct {
		v    *int64
		name string
		max  int64
		dst  **uint32
	}{{w.Weight, "weight", 65535, &d.Weight}, {w.UpperThreshold, "upper threshold", math.MaxInt32, &d.UThresh}, {w.LowerThreshold, "lower threshold", math.MaxInt32, &d.LThresh}} {
		if n.v != nil {
			v, e := rng(n.v, n.name, 0, n.max)
			if e != nil {
				return e
			}
			*n.dst = &v
		}
	}
	d.Tunnel = w.Tunnel
	if t := w.Tunnel; t.Set && !t.Null {
		if _, _, _, e := TunnelFields(t.Val); e != nil {
			return e
		}
	}
	return nil
}

// TunnelFields converts a tunnel description to the kernel's type, port and checksum mode.
func TunnelFields(t Tunnel) (typ uint8, port uint16, csum uint16, e *Error) {
	switch t.Type {
	case "ipip":
		typ = ipvs.TunIPIP
	case "gue":
		typ = ipvs.TunGUE
	case "gre":
		typ = ipvs.TunGRE
	default:
		return 0, 0, 0, bad("tunnel type %q must be ipip, gue or gre", t.Type)
	}
	if t.Port != nil {
		p, e := rng(t.Port, "tunnel port", 0, 65535)
		if e != nil {
			return 0, 0, 0, e
		}
		port = uint16(p)
	}
	switch t.Checksum {
	case "", "nocsum":
		csum = ipvs.TunNoCsum
	case "csum":
		csum = ipvs.TunCsum
	case "remcsum":
		csum = ipvs.TunRemCsum
	default:
		return 0, 0, 0, bad("tunnel checksum %q must be nocsum, csum or remcsum", t.Checksum)
	}
	return typ, port, csum, nil
}

func daemonState(s string) (uint32, *Error) {
	switch s {
	case "master":
		return ipvs.DaemonMaster, nil
	case "backup":
		return ipvs.DaemonBackup, nil
	}
	return 0, bad("sync daemon state %q must be master or backup", s)
}

func decodeDaemon(w *wireDaemon, op *Op) *Error {
	d, e := daemonOf(w)
	if e != nil {
		return e
	}
	op.Daemon = d
	return nil
}

func daemonOf(w *wireDaemon) (ipvs.Daemon, *Error) {
	st, e := daemonState(w.State)
	if e != nil {
		return ipvs.Daemon{}, e
	}
	d := ipvs.Daemon{State: st, Interface: w.Interface}
	if w.SyncID != nil {
		if d.SyncID, e = rng(w.SyncID, "syncid", 0, 255); e != nil {
			return ipvs.Daemon{}, e
		}
	}
	if w.MaxLen != nil {
		v, e := rng(w.MaxLen, "maxlen", 1, 65507)
		if e != nil {
			return ipvs.Daemon{}, e
		}
		d.MaxLen = uint16(v)
	}
	if w.Group != nil {
		a, e := parseAddr(*w.Group, 0, "sync group")
		if e != nil {
			return ipvs.Daemon{}, e
		}
		d.Group = a
	}
	if w.Port != nil {
		v, e := rng(w.Port, "sync port", 1, 65535)
		if e != nil {
			return ipvs.Daemon{}, e
		}
		d.Port = uint16(v)
	}
	if w.TTL != nil {
		v, e := rng(w.TTL, "sync ttl", 1, 255)
		if e != nil {
			return ipvs.Daemon{}, e
		}
		d.TTL = uint8(v)
	}
	if err := ipvs.ValidateDaemon(d); err != nil {
		return ipvs.Daemon{}, bad("%v", err)
	}
	return d, nil
}

// MaxOwnerLen bounds an owner name ("organization/project/stack").
const MaxOwnerLen = 300

// CheckOwner tells whether s is "organization/project/stack": three non-empty parts of [A-Za-z0-9._-].
func CheckOwner(s string, field string) *Error {
	parts := strings.Split(s, "/")
	ok := len(s) <= MaxOwnerLen && len(parts) == 3
	for _, p := range parts {
		ok = ok && p != "" && strings.Trim(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == ""
	}
	if !ok {
		return bad("%s %q must be \"organization/project/stack\": three non-empty parts of letters, digits, '.', '_' and '-', at most %d characters", field, s, MaxOwnerLen)
	}
	return nil
}

// MaxHolderLen bounds a holder (a Pulumi resource URN).
const MaxHolderLen = 1024

// checkHolder: a holder names a resource in messages and the ledger, so it is one line of printable text.
func checkHolder(s, field string) *Error {
	if s == "" || len(s) > MaxHolderLen {
		return bad("%s must be 1..%d characters (the holding resource's URN), not %d", field, MaxHolderLen, len(s))
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return bad("%s %q must not contain control characters", field, s)
		}
	}
	return nil
}

func decodeOwnership(w *wireOp, op *Op) *Error {
	if w.Owner == nil {
		for k, there := range map[string]bool{"formerOwner": w.FormerOwner != nil, "holder": w.Holder != nil, "formerHolder": w.FormerHolder != nil, "takeover": w.Takeover != nil, "withForeignDests": w.WithForeignDests != nil, "dryRun": w.DryRun != nil} {
			if there {
				return bad("operation %s takes field %q only together with \"owner\"", w.Op, k)
			}
		}
		return nil
	}
	if e := CheckOwner(*w.Owner, "owner"); e != nil {
		return e
	}
	op.Owner = *w.Owner
	if w.FormerOwner != nil {
		if e := CheckOwner(*w.FormerOwner, "formerOwner"); e != nil {
			return e
		}
		if *w.FormerOwner == op.Owner {
			return bad("formerOwner %q is the owner itself", op.Owner)
		}
		op.FormerOwner = *w.FormerOwner
	}
	if w.Holder != nil {
		if e := checkHolder(*w.Holder, "holder"); e != nil {
			return e
		}
		op.Holder = *w.Holder
	}
	if w.FormerHolder != nil {
		if w.Holder == nil {
			return bad("operation %s takes field \"formerHolder\" only together with \"holder\"", w.Op)
		}
		if e := checkHolder(*w.FormerHolder, "formerHolder"); e != nil {
			return e
		}
		if *w.FormerHolder == op.Holder {
			return bad("formerHolder %q is the holder itself", op.Holder)
		}
		op.FormerHolder = *w.FormerHolder
	}
	op.Takeover = w.Takeover != nil && *w.Takeover
	op.WithForeignDests = w.WithForeignDests != nil && *w.WithForeignDests
	op.DryRun = w.DryRun != nil && *w.DryRun
	return nil
}
