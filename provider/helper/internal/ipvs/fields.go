package ipvs

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// The protocol's vocabulary, written once: the names of enum-like fields with their kernel numbers, the range of
// every number, and the defaults of a new entry. The decoder (protocol), the save format (savefmt), the rule checks
// (validate.go) and `ipvs-helper names` all read these tables, so the provider's copy is tested against one source.

// Name is one word of an enum-like field and the kernel number it stands for.
type Name[T comparable] struct {
	Word string
	Num  T
}

// Enum is the words of one field, in the order messages list them.
type Enum[T comparable] []Name[T]

// Num is the kernel number of word.
func (e Enum[T]) Num(word string) (T, bool) {
	for _, n := range e {
		if n.Word == word {
			return n.Num, true
		}
	}
	var zero T
	return zero, false
}

// Word is the name of a kernel number.
func (e Enum[T]) Word(num T) (string, bool) {
	for _, n := range e {
		if n.Num == num {
			return n.Word, true
		}
	}
	return "", false
}

// Words lists the names in order.
func (e Enum[T]) Words() []string {
	out := make([]string, len(e))
	for i, n := range e {
		out[i] = n.Word
	}
	return out
}

// OneOf is "a, b or c", as messages list the choices.
func (e Enum[T]) OneOf() string {
	w := e.Words()
	if len(w) == 1 {
		return w[0]
	}
	return strings.Join(w[:len(w)-1], ", ") + " or " + w[len(w)-1]
}

// The enum-like fields. Forwardings are the ones a request may set; local and bypass are only ever read back.
var (
	Families        = Enum[uint16]{{"ipv4", AFInet}, {"ipv6", AFInet6}}
	Protocols       = Enum[uint16]{{"tcp", ProtoTCP}, {"udp", ProtoUDP}, {"sctp", ProtoSCTP}}
	Forwardings     = Enum[uint32]{{"nat", FwdMasq}, {"dr", FwdRoute}, {"tunnel", FwdTunnel}}
	readForwardings = append(Enum[uint32]{{"local", FwdLocalNode}, {"bypass", FwdBypass}}, Forwardings...)
	TunnelTypes     = Enum[uint8]{{"ipip", TunIPIP}, {"gue", TunGUE}, {"gre", TunGRE}}
	TunnelChecksums = Enum[uint16]{{"nocsum", TunNoCsum}, {"csum", TunCsum}, {"remcsum", TunRemCsum}}
	DaemonStates    = Enum[uint32]{{"master", DaemonMaster}, {"backup", DaemonBackup}}
)

// Range is one number field of the protocol: its key in requests (PROTOCOL.md), how messages name it, the values it
// accepts and, when a new entry takes one without it, its default.
type Range struct {
	Key     string `json:"key"`
	What    string `json:"-"`
	Min     int64  `json:"min"`
	Max     int64  `json:"max"`
	Default *int64 `json:"default,omitempty"`
}

func def(v int64) *int64 { return &v }

// In tells whether v is accepted.
func (r Range) In(v int64) bool { return v >= r.Min && v <= r.Max }

// Refusal is the one wording of an out-of-range value: "weight 70000 must be 0..65535".
func (r Range) Refusal(v int64) string {
	return fmt.Sprintf("%s %d must be %d..%d", r.What, v, r.Min, r.Max)
}

// MaxPersistence is ipvsadm's upper bound for -p (31 days).
const MaxPersistence = 2678400

// The number fields. Thresholds and timeouts stop at INT_MAX because the kernel compares them as signed ints.
var (
	FWMarkRange      = Range{"service.fwmark", "fwmark", 1, math.MaxUint32, nil}
	ServicePortRange = Range{"service.port", "service port", 0, 65535, nil}
	PersistenceRange = Range{"service.persistence.timeout", "persistence timeout", 1, MaxPersistence, def(DefaultPersistence)}
	DestPortRange    = Range{"dest.port", "real server port", 0, 65535, nil} // default: the service port
	WeightRange      = Range{"dest.weight", "weight", 0, 65535, def(1)}
	UThreshRange     = Range{"dest.upperThreshold", "upper threshold", 0, math.MaxInt32, def(0)}
	LThreshRange     = Range{"dest.lowerThreshold", "lower threshold", 0, math.MaxInt32, def(0)}
	TunnelPortRange  = Range{"dest.tunnel.port", "tunnel port", 0, 65535, nil}
	TCPTimeoutRange  = Range{"tcp", "tcp timeout", 0, math.MaxInt32, nil}
	FinTimeoutRange  = Range{"tcpfin", "tcpfin timeout", 0, math.MaxInt32, nil}
	UDPTimeoutRange  = Range{"udp", "udp timeout", 0, math.MaxInt32, nil}
	SyncIDRange      = Range{"daemon.syncId", "syncid", 0, 255, def(0)}
	MaxLenRange      = Range{"daemon.maxLen", "maxlen", 1, 65507, nil} // absent: the kernel's default
	SyncPortRange    = Range{"daemon.port", "sync port", 1, 65535, nil}
	SyncTTLRange     = Range{"daemon.ttl", "sync ttl", 1, 255, nil}
)

// Ranges are the number fields in the order `ipvs-helper names` prints them.
var Ranges = []Range{FWMarkRange, ServicePortRange, PersistenceRange, DestPortRange, WeightRange, UThreshRange, LThreshRange,
	TunnelPortRange, TCPTimeoutRange, FinTimeoutRange, UDPTimeoutRange, SyncIDRange, MaxLenRange, SyncPortRange, SyncTTLRange}

// DefaultScheduler is ipvsadm's scheduler for a service created without one.
const DefaultScheduler = "wlc"

// DefaultPersistence is ipvsadm's -p default, seconds.
const DefaultPersistence = 360

// DefaultDest is what ipvsadm gives a real server created without settings: dr, weight 1, no thresholds.
var DefaultDest = DestSettings{Fwd: FwdRoute, Weight: uint32(*WeightRange.Default)}

// DefaultService is what ipvsadm gives a service of family af created without settings.
func DefaultService(af uint16) ServiceSettings {
	return ServiceSettings{Sched: DefaultScheduler, Netmask: DefaultNetmask(af)}
}

// DefaultNetmask is the "no grouping" persistence netmask of a family.
func DefaultNetmask(af uint16) uint32 {
	if af == AFInet6 {
		return 128
	}
	return 0xffffffff
}

// FamilyName is "ipv4" or "ipv6".
func FamilyName(af uint16) string {
	if af == AFInet6 {
		return "ipv6"
	}
	return "ipv4"
}

// ProtocolName is "tcp", "udp" or "sctp".
func ProtocolName(p uint16) string {
	if w, ok := Protocols.Word(p); ok {
		return w
	}
	return "protocol-" + strconv.Itoa(int(p))
}

// FwdName is the protocol's name of a forwarding method.
func FwdName(f uint32) string {
	w, _ := readForwardings.Word(f & FwdMask)
	if w == "" {
		return "bypass"
	}
	return w
}

// TunTypeName is ipip, gue or gre.
func TunTypeName(t uint8) string {
	if w, ok := TunnelTypes.Word(t); ok {
		return w
	}
	return "tunnel-type-" + strconv.Itoa(int(t))
}

// TunCsumName is nocsum, csum or remcsum.
func TunCsumName(f uint16) string {
	if w, ok := TunnelChecksums.Word(f); ok {
		return w
	}
	return "csum-" + strconv.Itoa(int(f))
}

// DaemonStateName is master or backup.
func DaemonStateName(s uint32) string {
	if s == DaemonBackup {
		return "backup"
	}
	return "master"
}
