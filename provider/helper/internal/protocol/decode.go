package protocol

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"reflect"
	"sort"
	"strings"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/sysctl"
)

// Op is one decoded, range-checked operation, in kernel values. Rules that need the merged entry (ipvsadm's
// cross-field rules) are checked by the engine with ipvs.ValidateService / ValidateDest before anything is sent.
type Op struct {
	Name          string
	Service       ipvs.ServiceKey
	ServiceChange ServiceChange
	Dest          ipvs.DestKey
	DestPort      bool // the dest gave a port (else: the service port, as ipvsadm does)
	DestChange    DestChange
	OnExisting    OnExisting
	WithDests     bool
	Timeouts      ipvs.Timeouts
	Daemon        ipvs.Daemon
	State         uint32

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

var onExistings = ipvs.Enum[OnExisting]{{Word: "update", Num: ExistingUpdate}, {Word: "fail", Num: ExistingFail}, {Word: "match", Num: ExistingMatch}}

// ServiceChange is what ensureService asks to change: nil/unset = keep (or ipvsadm's default when creating).
// Scheduler flags stay names: which bits they are depends on the scheduler, which may be the entry's current one.
type ServiceChange struct {
	Scheduler   *string
	Flags       []string
	HasFlags    bool
	Persistence Opt[Persistence]
	PE          *string
	OnePacket   *bool
}

// Persistence is {timeout, netmask} in kernel values; nil timeout = ipvs.DefaultPersistence, nil netmask = no grouping.
type Persistence struct {
	Timeout *uint32
	Netmask *uint32
}

// DestChange is what ensureDest asks to change, in kernel values.
type DestChange struct {
	Fwd     *uint32
	Weight  *uint32
	UThresh *uint32
	LThresh *uint32
	Tunnel  Opt[ipvs.Tunnel]
}

type wireService struct {
	Family            string               `json:"family"`
	Protocol          *string              `json:"protocol"`
	Address           *string              `json:"address"`
	Port              *int64               `json:"port"`
	FWMark            *int64               `json:"fwmark"`
	Scheduler         *string              `json:"scheduler"`
	SchedulerFlags    *[]string            `json:"schedulerFlags"`
	Persistence       Opt[wirePersistence] `json:"persistence"`
	PersistenceEngine *string              `json:"persistenceEngine"`
	OnePacket         *bool                `json:"onePacket"`
}

type wirePersistence struct {
	Timeout *int64  `json:"timeout"`
	Netmask *string `json:"netmask"`
}

type wireDest struct {
	Address        string          `json:"address"`
	Port           *int64          `json:"port"`
	Forwarding     *string         `json:"forwarding"`
	Weight         *int64          `json:"weight"`
	UpperThreshold *int64          `json:"upperThreshold"`
	LowerThreshold *int64          `json:"lowerThreshold"`
	Tunnel         Opt[wireTunnel] `json:"tunnel"`
}

type wireTunnel struct {
	Type     string `json:"type"`
	Port     *int64 `json:"port"`
	Checksum string `json:"checksum"`
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

// rng checks v against r, the one range table (ipvs/fields.go).
func rng(v *int64, r ipvs.Range) (uint32, *Error) {
	if !r.In(*v) {
		return 0, bad("%s", r.Refusal(*v))
	}
	return uint32(*v), nil
}

// optRng is rng for an optional field: nil stays nil.
func optRng(v *int64, r ipvs.Range) (*uint32, *Error) {
	if v == nil {
		return nil, nil
	}
	n, e := rng(v, r)
	return &n, e
}

// word reads a name of enum en; the refusal lists the choices, as every message of the protocol does.
func word[T comparable](s string, en ipvs.Enum[T], what string) (T, *Error) {
	n, ok := en.Num(s)
	if !ok {
		return n, bad("%s %q must be %s", what, s, en.OneOf())
	}
	return n, nil
}

// DecodeOp reads one operation, rejecting unknown ops, unknown or misplaced fields and out-of-range values.
func DecodeOp(raw json.RawMessage) (*Op, *Error) {
	w, e := readOp(raw)
	if e != nil {
		return nil, e
	}
	op := &Op{Name: w.Op, WithDests: w.WithDests != nil && *w.WithDests}
	for _, part := range []func(*wireOp, *Op) *Error{decodeOwnership, decodeEntries, decodeOnExisting, decodeTimeouts,
		decodeDaemonOps, decodeSettingsOps} {
		if e := part(w, op); e != nil {
			return nil, e
		}
	}
	return op, nil
}

// readOp unmarshals an operation and checks its fields against opFields (a null field counts as absent).
func readOp(raw json.RawMessage) (*wireOp, *Error) {
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
	present := presentFields(&w)
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
	return &w, nil
}

// presentFields names the fields of w that were given and not null, by their JSON names: wireOp is the one list of
// an op's fields.
func presentFields(w *wireOp) map[string]bool {
	present := map[string]bool{}
	v := reflect.ValueOf(w).Elem()
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		if f.Kind() != reflect.Pointer && f.Kind() != reflect.Slice {
			continue // "op" itself
		}
		raw, isRaw := f.Interface().(json.RawMessage)
		present[v.Type().Field(i).Tag.Get("json")] = !f.IsNil() && !(isRaw && string(raw) == "null")
	}
	return present
}

func decodeEntries(w *wireOp, op *Op) *Error {
	if w.Service != nil {
		if e := decodeService(w.Service, w.Op == "ensureService", op); e != nil {
			return e
		}
	}
	if w.Dest != nil {
		return decodeDest(w.Dest, w.Op == "ensureDest", op)
	}
	return nil
}

func decodeOnExisting(w *wireOp, op *Op) *Error {
	if w.OnExisting == nil {
		return nil
	}
	var ok bool
	if op.OnExisting, ok = onExistings.Num(*w.OnExisting); !ok {
		return bad("onExisting %q must be \"update\", \"fail\" or \"match\"", *w.OnExisting)
	}
	return nil
}

func decodeTimeouts(w *wireOp, op *Op) *Error {
	var e *Error
	op.Timeouts, e = timeoutsOf(w.TCP, w.TCPFin, w.UDP)
	return e
}

// timeoutsOf reads the connection timeouts of setTimeouts and of director settings; absent = 0 (unchanged).
func timeoutsOf(tcp, fin, udp *int64) (t ipvs.Timeouts, e *Error) {
	for _, f := range []struct {
		v   *int64
		r   ipvs.Range
		dst *uint32
	}{{tcp, ipvs.TCPTimeoutRange, &t.TCP}, {fin, ipvs.FinTimeoutRange, &t.TCPFin}, {udp, ipvs.UDPTimeoutRange, &t.UDP}} {
		if f.v != nil {
			if *f.dst, e = rng(f.v, f.r); e != nil {
				return t, e
			}
		}
	}
	return t, nil
}

func decodeDaemonOps(w *wireOp, op *Op) (e *Error) {
	if w.Daemon != nil {
		if op.Daemon, e = daemonOf(w.Daemon); e != nil {
			return e
		}
	}
	if w.State != nil {
		op.State, e = daemonState(*w.State)
	}
	return e
}

func decodeSettingsOps(w *wireOp, op *Op) (e *Error) {
	if w.Settings != nil && string(w.Settings) != "null" {
		if op.Settings, e = DecodeSettings(w.Settings, false); e != nil {
			return e
		}
	}
	if w.Sysctls != nil {
		for _, name := range *w.Sysctls {
			if _, ok := sysctl.Lookup(name); !ok {
				return unknownSysctl(name)
			}
		}
		op.Sysctls = *w.Sysctls
	}
	return nil
}

func parseFamily(f string) (uint16, *Error) {
	af, ok := ipvs.Families.Num(f)
	if !ok {
		return 0, bad("family %q must be \"ipv4\" or \"ipv6\"", f)
	}
	return af, nil
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
	k, e := serviceKeyOf(w)
	if e != nil {
		return e
	}
	op.Service = k
	hasSettings := w.Scheduler != nil || w.SchedulerFlags != nil || w.Persistence.Set || w.PersistenceEngine != nil || w.OnePacket != nil
	if hasSettings && !settingsAllowed {
		return bad("operation %s takes only the service identity, not its settings", op.Name)
	}
	s := &op.ServiceChange
	s.Scheduler, s.PE, s.OnePacket = w.Scheduler, w.PersistenceEngine, w.OnePacket
	if w.SchedulerFlags != nil {
		s.HasFlags, s.Flags = true, *w.SchedulerFlags
	}
	s.Persistence = Opt[Persistence]{Set: w.Persistence.Set, Null: w.Persistence.Null}
	if p := w.Persistence; p.Set && !p.Null {
		if s.Persistence.Val.Timeout, e = optRng(p.Val.Timeout, ipvs.PersistenceRange); e != nil {
			return e
		}
		if p.Val.Netmask != nil {
			m, err := ipvs.ParseNetmask(k.AF, *p.Val.Netmask)
			if err != nil {
				return bad("%s: %v", k, err)
			}
			s.Persistence.Val.Netmask = &m
		}
	}
	return nil
}

func serviceKeyOf(w *wireService) (k ipvs.ServiceKey, e *Error) {
	if k.AF, e = parseFamily(w.Family); e != nil {
		return k, e
	}
	if w.FWMark != nil {
		if w.Protocol != nil || w.Address != nil || w.Port != nil {
			return k, bad("a fwmark service has no protocol, address or port")
		}
		k.FWMark, e = rng(w.FWMark, ipvs.FWMarkRange)
		return k, e
	}
	if w.Protocol == nil || w.Address == nil || w.Port == nil {
		return k, bad("a service needs either fwmark or protocol, address and port")
	}
	if k.Protocol, e = word(*w.Protocol, ipvs.Protocols, "protocol"); e != nil {
		return k, e
	}
	if k.Addr, e = parseAddr(*w.Address, k.AF, "service address"); e != nil {
		return k, e
	}
	p, e := rng(w.Port, ipvs.ServicePortRange)
	k.Port = uint16(p)
	return k, e
}

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

func decodeDest(w *wireDest, settingsAllowed bool, op *Op) (e *Error) {
	if op.Dest, e = DestKeyOf(w.Address, 0); e != nil {
		return e
	}
	if w.Port != nil {
		p, e := rng(w.Port, ipvs.DestPortRange)
		if e != nil {
			return e
		}
		op.Dest.Port, op.DestPort = uint16(p), true
	}
	hasSettings := w.Forwarding != nil || w.Weight != nil || w.UpperThreshold != nil || w.LowerThreshold != nil || w.Tunnel.Set
	if hasSettings && !settingsAllowed {
		return bad("operation %s takes only the real server identity, not its settings", op.Name)
	}
	d := &op.DestChange
	if w.Forwarding != nil {
		f, e := word(*w.Forwarding, ipvs.Forwardings, "forwarding")
		if e != nil {
			return e
		}
		d.Fwd = &f
	}
	if d.Weight, e = optRng(w.Weight, ipvs.WeightRange); e != nil {
		return e
	}
	if d.UThresh, e = optRng(w.UpperThreshold, ipvs.UThreshRange); e != nil {
		return e
	}
	if d.LThresh, e = optRng(w.LowerThreshold, ipvs.LThreshRange); e != nil {
		return e
	}
	d.Tunnel = Opt[ipvs.Tunnel]{Set: w.Tunnel.Set, Null: w.Tunnel.Null}
	if t := w.Tunnel; t.Set && !t.Null {
		d.Tunnel.Val, e = tunnelOf(t.Val)
	}
	return e
}

// tunnelOf converts a tunnel description to the kernel's type, port and checksum mode.
func tunnelOf(w wireTunnel) (t ipvs.Tunnel, e *Error) {
	if t.TunType, e = word(w.Type, ipvs.TunnelTypes, "tunnel type"); e != nil {
		return t, e
	}
	if w.Port != nil {
		p, e := rng(w.Port, ipvs.TunnelPortRange)
		if e != nil {
			return t, e
		}
		t.TunPort = uint16(p)
	}
	if w.Checksum != "" { // absent = nocsum
		t.TunFlags, e = word(w.Checksum, ipvs.TunnelChecksums, "tunnel checksum")
	}
	return t, e
}

func daemonState(s string) (uint32, *Error) {
	return word(s, ipvs.DaemonStates, "sync daemon state")
}

func daemonOf(w *wireDaemon) (ipvs.Daemon, *Error) {
	st, e := daemonState(w.State)
	if e != nil {
		return ipvs.Daemon{}, e
	}
	d := ipvs.Daemon{State: st, Interface: w.Interface}
	if w.SyncID != nil {
		if d.SyncID, e = rng(w.SyncID, ipvs.SyncIDRange); e != nil {
			return ipvs.Daemon{}, e
		}
	}
	if w.MaxLen != nil {
		v, e := rng(w.MaxLen, ipvs.MaxLenRange)
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
		v, e := rng(w.Port, ipvs.SyncPortRange)
		if e != nil {
			return ipvs.Daemon{}, e
		}
		d.Port = uint16(v)
	}
	if w.TTL != nil {
		v, e := rng(w.TTL, ipvs.SyncTTLRange)
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
