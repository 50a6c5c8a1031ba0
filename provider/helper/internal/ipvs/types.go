// Package ipvs is the kernel side of the helper: IPVS entries as Go values, their generic netlink encoding
// (codec.go, pure) and the netlink connection that sends them (conn_linux.go).
package ipvs

import (
	"fmt"
	"net/netip"
)

// Address families as the kernel numbers them.
const (
	AFInet  uint16 = 2
	AFInet6 uint16 = 10
)

// IP protocols of address:port services.
const (
	ProtoTCP  uint16 = 6
	ProtoUDP  uint16 = 17
	ProtoSCTP uint16 = 132
)

// Service flags (uapi IP_VS_SVC_F_*).
const (
	FlagPersistent uint32 = 0x1
	FlagHashed     uint32 = 0x2 // set by the kernel on every listed service; never compared or sent
	FlagOnePacket  uint32 = 0x4
	FlagSched1     uint32 = 0x8
	FlagSched2     uint32 = 0x10
	FlagSched3     uint32 = 0x20
)

// Forwarding methods (IP_VS_CONN_F_FWD_MASK values).
const (
	FwdMasq      uint32 = 0
	FwdLocalNode uint32 = 1
	FwdTunnel    uint32 = 2
	FwdRoute     uint32 = 3
	FwdBypass    uint32 = 4
	FwdMask      uint32 = 0x7
)

// Tunnel types and checksum modes (an index, not a bitmask).
const (
	TunIPIP uint8 = 0
	TunGUE  uint8 = 1
	TunGRE  uint8 = 2

	TunNoCsum  uint16 = 0
	TunCsum    uint16 = 1
	TunRemCsum uint16 = 2
)

// Sync daemon states.
const (
	DaemonMaster uint32 = 1
	DaemonBackup uint32 = 2
)

// ServiceKey is a virtual service's identity: AF + fwmark, or AF + protocol + address + port.
type ServiceKey struct {
	AF       uint16
	Protocol uint16 // 0 for fwmark services
	Addr     netip.Addr
	Port     uint16
	FWMark   uint32
}

// Service is a virtual service: its identity, its settings and (on read) its counters.
type Service struct {
	ServiceKey
	ServiceSettings
	Stats Stats
}

// ServiceSettings are what a NEW or SET of a service carries besides its key: comparable with ==, so "the entry
// already holds these settings" needs no field list.
type ServiceSettings struct {
	Sched   string
	Flags   uint32 // without FlagHashed
	Timeout uint32 // persistence timeout, seconds
	// Netmask: IPv4 mask as a big-endian number (0xffffff00 = /24); IPv6 prefix length.
	Netmask uint32
	PE      string
}

// DestKey is a real server's identity inside its service.
type DestKey struct {
	AF   uint16
	Addr netip.Addr
	Port uint16
}

// Dest is a real server: its identity, its settings and (on read) its counters.
type Dest struct {
	DestKey
	DestSettings
	ActiveConns  uint32
	InactConns   uint32
	PersistConns uint32
	Stats        Stats
}

// DestSettings are what a NEW or SET of a real server carries besides its key (cloudflare/ipvs keeps Destination
// apart from DestinationExtended the same way): comparable with ==.
type DestSettings struct {
	Fwd     uint32
	Weight  uint32
	UThresh uint32
	LThresh uint32
	Tunnel
}

// Tunnel is the encapsulation of a tunnel-forwarded real server; zero for other forwarding.
type Tunnel struct {
	TunType  uint8
	TunPort  uint16
	TunFlags uint16
}

// Stats are the 64-bit counters and rate estimates of a service or dest.
type Stats struct {
	Conns, InPkts, OutPkts, InBytes, OutBytes uint64
	CPS, InPPS, OutPPS, InBPS, OutBPS         uint64
}

// Daemon is one running (or wanted) connection sync daemon.
type Daemon struct {
	State     uint32
	Interface string
	SyncID    uint32
	MaxLen    uint16     // 0 = kernel default
	Group     netip.Addr // invalid = kernel default (224.0.0.81)
	Port      uint16     // 0 = kernel default (8848)
	TTL       uint8      // 0 = kernel default (1)
}

// Timeouts are the connection timeouts in seconds; 0 in a SET means unchanged.
type Timeouts struct {
	TCP, TCPFin, UDP uint32
}

// Info is what GET_INFO reports.
type Info struct {
	Version     uint32 // 0x010201 = 1.2.1
	ConnTabSize uint32
}

// VersionString renders the IPVS version like ipvsadm does ("1.2.1").
func (i Info) VersionString() string {
	return fmt.Sprintf("%d.%d.%d", i.Version>>16&0xff, i.Version>>8&0xff, i.Version&0xff)
}

// IsFWMark tells fwmark services from address:port ones.
func (k ServiceKey) IsFWMark() bool { return k.FWMark != 0 }

// ServiceDests is a service with its real servers: one entry of a table dump.
type ServiceDests struct {
	Service Service
	Dests   []Dest
}
