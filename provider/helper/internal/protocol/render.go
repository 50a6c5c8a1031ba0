package protocol

import "github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"

// Read-back shapes are structs, not maps: encoding/json writes them several times faster, which matters for
// batches of 10,000 results.

// StatsOut is the read-back counters object.
type StatsOut struct {
	Conns    uint64 `json:"conns"`
	InPkts   uint64 `json:"inPkts"`
	OutPkts  uint64 `json:"outPkts"`
	InBytes  uint64 `json:"inBytes"`
	OutBytes uint64 `json:"outBytes"`
	CPS      uint64 `json:"cps"`
	InPPS    uint64 `json:"inPps"`
	OutPPS   uint64 `json:"outPps"`
	InBPS    uint64 `json:"inBps"`
	OutBPS   uint64 `json:"outBps"`
}

// StatsJSON renders counters.
func StatsJSON(s ipvs.Stats) StatsOut {
	return StatsOut{s.Conns, s.InPkts, s.OutPkts, s.InBytes, s.OutBytes, s.CPS, s.InPPS, s.OutPPS, s.InBPS, s.OutBPS}
}

// PersistenceOut is a service's persistence.
type PersistenceOut struct {
	Timeout uint32 `json:"timeout"`
	Netmask string `json:"netmask"`
}

// ServiceKeyOut is a service's identity.
type ServiceKeyOut struct {
	Family   string  `json:"family"`
	Protocol string  `json:"protocol,omitempty"`
	Address  string  `json:"address,omitempty"`
	Port     *uint16 `json:"port,omitempty"`
	FWMark   uint32  `json:"fwmark,omitempty"`
}

// ServiceSpecOut is a service's identity and settings: what the ownership ledger records.
type ServiceSpecOut struct {
	ServiceKeyOut
	Scheduler         string          `json:"scheduler"`
	SchedulerFlags    []string        `json:"schedulerFlags"`
	Persistence       *PersistenceOut `json:"persistence"`
	PersistenceEngine string          `json:"persistenceEngine"`
	OnePacket         bool            `json:"onePacket"`
}

// ServiceOut is a service as read back: identity, settings, counters, and dests when asked.
type ServiceOut struct {
	ServiceSpecOut
	Stats StatsOut   `json:"stats"`
	Dests *[]DestOut `json:"dests,omitempty"`
}

// TunnelOut is a tunnel-forwarded dest's encapsulation.
type TunnelOut struct {
	Type     string `json:"type"`
	Port     uint16 `json:"port"`
	Checksum string `json:"checksum"`
}

// DestSpecOut is a real server's identity and settings: what the ownership ledger records.
type DestSpecOut struct {
	Address        string     `json:"address"`
	Port           uint16     `json:"port"`
	Forwarding     string     `json:"forwarding"`
	Weight         uint32     `json:"weight"`
	UpperThreshold uint32     `json:"upperThreshold"`
	LowerThreshold uint32     `json:"lowerThreshold"`
	Tunnel         *TunnelOut `json:"tunnel"`
}

// DestOut is a real server as read back.
type DestOut struct {
	DestSpecOut
	ActiveConns     uint32   `json:"activeConns"`
	InactiveConns   uint32   `json:"inactiveConns"`
	PersistentConns uint32   `json:"persistentConns"`
	Stats           StatsOut `json:"stats"`
}

// ServiceKeyJSON renders a service's identity.
func ServiceKeyJSON(k ipvs.ServiceKey) ServiceKeyOut {
	o := ServiceKeyOut{Family: ipvs.FamilyName(k.AF)}
	if k.IsFWMark() {
		o.FWMark = k.FWMark
	} else {
		port := k.Port
		o.Protocol, o.Address, o.Port = ipvs.ProtocolName(k.Protocol), k.Addr.String(), &port
	}
	return o
}

// ServiceJSON renders a service with its settings and counters; dests are added when not nil.
func ServiceJSON(s ipvs.Service, dests []ipvs.Dest) ServiceOut {
	o := ServiceOut{ServiceSpecOut: ServiceSpecOut{ServiceKeyOut: ServiceKeyJSON(s.ServiceKey), Scheduler: s.Sched,
		SchedulerFlags: ipvs.SchedFlagNames(s.Sched, s.Flags), PersistenceEngine: s.PE, OnePacket: s.Flags&ipvs.FlagOnePacket != 0},
		Stats: StatsJSON(s.Stats)}
	if o.SchedulerFlags == nil {
		o.SchedulerFlags = []string{}
	}
	if s.Flags&ipvs.FlagPersistent != 0 {
		o.Persistence = &PersistenceOut{Timeout: s.Timeout, Netmask: ipvs.NetmaskString(s.AF, s.Netmask)}
	}
	if dests != nil {
		out := make([]DestOut, len(dests))
		for i, d := range dests {
			out[i] = DestJSON(d)
		}
		o.Dests = &out
	}
	return o
}

// DestJSON renders a real server with its settings, connection counts and counters.
func DestJSON(d ipvs.Dest) DestOut {
	o := DestOut{DestSpecOut: DestSpecOut{Address: d.Addr.String(), Port: d.Port, Forwarding: ipvs.FwdName(d.Fwd), Weight: d.Weight,
		UpperThreshold: d.UThresh, LowerThreshold: d.LThresh}, ActiveConns: d.ActiveConns, InactiveConns: d.InactConns,
		PersistentConns: d.PersistConns, Stats: StatsJSON(d.Stats)}
	if d.Fwd&ipvs.FwdMask == ipvs.FwdTunnel {
		o.Tunnel = &TunnelOut{Type: ipvs.TunTypeName(d.TunType), Port: d.TunPort, Checksum: ipvs.TunCsumName(d.TunFlags)}
	}
	return o
}

// DaemonOut is a running sync daemon.
type DaemonOut struct {
	State     string `json:"state"`
	Interface string `json:"interface"`
	SyncID    uint32 `json:"syncId"`
	MaxLen    uint16 `json:"maxLen"`
	Group     string `json:"group"`
	Port      uint16 `json:"port"`
	TTL       uint8  `json:"ttl"`
}

// DaemonJSON renders a sync daemon.
func DaemonJSON(d ipvs.Daemon) DaemonOut {
	o := DaemonOut{State: "master", Interface: d.Interface, SyncID: d.SyncID, MaxLen: d.MaxLen, Port: d.Port, TTL: d.TTL}
	if d.State == ipvs.DaemonBackup {
		o.State = "backup"
	}
	if d.Group.IsValid() {
		o.Group = d.Group.String()
	}
	return o
}
