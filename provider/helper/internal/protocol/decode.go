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

	// Health checks (health.go; with Owner only): absent keeps what the ledger records, null clears it.
	HealthCheck Opt[HealthCheck] // ensureDest
	MinHealthy  Opt[MinHealthy]  // ensureService
	SorryServer Opt[SorryServer] // ensureService

	// Bind (ensureService): where the service's address is to be on the director; nil = nowhere (bind.go).
	Bind *Binding

	// Host (ensureHost): what to prepare on a real server's host (host.go).
	Host *HostSpec
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

	Settings    json.RawMessage `json:"settings"`
	Sysctls     *[]string       `json:"sysctls"`
	BindAddress json.RawMessage `json:"bindAddress"`

	HealthCheck json.RawMessage `json:"healthCheck"`
	MinHealthy  json.RawMessage `json:"minHealthy"`
	SorryServer json.RawMessage `json:"sorryServer"`

	Host json.RawMessage `json:"host"`
}

// fields each op accepts (besides "op"), and which of them are required.
var opFields = map[string]struct{ allowed, required string }{
	"ensureService": {"service onExisting owner formerOwner takeover bindAddress minHealthy sorryServer", "service"},
	"deleteService": {"service owner withForeignDests dryRun", "service"},
	"getService":    {"service withDests", "service"},
	"ensureDest":    {"service dest onExisting owner formerOwner holder formerHolder takeover healthCheck", "service dest"},
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

	// RealServerHost (host.go): a real server's host, recorded per resource (holder) of a stack (owner).
	"ensureHost": {"owner holder host", "owner holder host"},
	"deleteHost": {"owner holder", "owner holder"},
	"getHost":    {"owner holder", "owner holder"},
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
		decodeDaemonOps, decodeSettingsOps, decodeBind, decodeHealth, decodeHost} {
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
	given := map[string]bool{}
	for _, k := range present {
		if !strings.Contains(allowed, " "+k+" ") {
			return nil, bad("operation %s does not take field %q", w.Op, k)
		}
		given[k] = true
	}
	for _, k := range strings.Fields(spec.required) {
		if !given[k] {
			return nil, bad("operation %s needs field %q", w.Op, k)
		}
	}
	return &w, nil
}

// presentFields names the fields of w that were given and not null, by their JSON names, in wireOp's order (so a
// refusal names the same field every time): wireOp is the one list of an op's fields.
func presentFields(w *wireOp) []string {
	var present []string
	v := reflect.ValueOf(w).Elem()
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		if f.Kind() != reflect.Pointer && f.Kind() != reflect.Slice {
			continue // "op" itself
		}
		raw, isRaw := f.Interface().(json.RawMessage)
		if !f.IsNil() && !(isRaw && string(raw) == "null") {
			present = append(present, v.Type().Field(i).Tag.Get("json"))
		}
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
		// In the order wireOp declares them, so that with several present the refusal always names the same one.
		for _, f := range []struct {
			name  string
			there bool
		}{{"formerOwner", w.FormerOwner != nil}, {"holder", w.Holder != nil}, {"formerHolder", w.FormerHolder != nil},
			{"takeover", w.Takeover != nil}, {"withForeignDests", w.WithForeignDests != nil}, {"dryRun", w.DryRun != nil}} {
			if f.there {
				return bad("operation %s takes field %q only together with \"owner\"", w.Op, f.name)
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
