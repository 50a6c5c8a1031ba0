package protocol

import "github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"

// StatsJSON is the read-back counters object.
func StatsJSON(s ipvs.Stats) map[string]uint64 {
	return map[string]uint64{
		"conns": s.Conns, "inPkts": s.InPkts, "outPkts": s.OutPkts, "inBytes": s.InBytes, "outBytes": s.OutBytes,
		"cps": s.CPS, "inPps": s.InPPS, "outPps": s.OutPPS, "inBps": s.InBPS, "outBps": s.OutBPS,
	}
}

// ServiceKeyJSON renders a service identity.
func ServiceKeyJSON(k ipvs.ServiceKey) map[string]any {
	m := map[string]any{"family": ipvs.FamilyName(k.AF)}
	if k.IsFWMark() {
		m["fwmark"] = k.FWMark
	} else {
		m["protocol"] = ipvs.ProtocolName(k.Protocol)
		m["address"] = k.Addr.String()
		m["port"] = k.Port
	}
	return m
}

// ServiceJSON renders a service with its settings and counters; dests are added when not nil.
func ServiceJSON(s ipvs.Service, dests []ipvs.Dest) map[string]any {
	m := ServiceKeyJSON(s.ServiceKey)
	m["scheduler"] = s.Sched
	flags := ipvs.SchedFlagNames(s.Sched, s.Flags)
	if flags == nil {
		flags = []string{}
	}
	m["schedulerFlags"] = flags
	if s.Flags&ipvs.FlagPersistent != 0 {
		m["persistence"] = map[string]any{"timeout": s.Timeout, "netmask": ipvs.NetmaskString(s.AF, s.Netmask)}
	} else {
		m["persistence"] = nil
	}
	m["persistenceEngine"] = s.PE
	m["onePacket"] = s.Flags&ipvs.FlagOnePacket != 0
	m["stats"] = StatsJSON(s.Stats)
	if dests != nil {
		out := make([]map[string]any, len(dests))
		for i, d := range dests {
			out[i] = DestJSON(d)
		}
		m["dests"] = out
	}
	return m
}

// DestJSON renders a real server with its settings, connection counts and counters.
func DestJSON(d ipvs.Dest) map[string]any {
	m := map[string]any{
		"address": d.Addr.String(), "port": d.Port, "forwarding": ipvs.FwdName(d.Fwd),
		"weight": d.Weight, "upperThreshold": d.UThresh, "lowerThreshold": d.LThresh,
		"activeConns": d.ActiveConns, "inactiveConns": d.InactConns, "persistentConns": d.PersistConns,
		"stats": StatsJSON(d.Stats), "tunnel": nil,
	}
	if d.Fwd&ipvs.FwdMask == ipvs.FwdTunnel {
		m["tunnel"] = map[string]any{"type": ipvs.TunTypeName(d.TunType), "port": d.TunPort, "checksum": ipvs.TunCsumName(d.TunFlags)}
	}
	return m
}

// DaemonJSON renders a sync daemon.
func DaemonJSON(d ipvs.Daemon) map[string]any {
	state := "master"
	if d.State == ipvs.DaemonBackup {
		state = "backup"
	}
	m := map[string]any{"state": state, "interface": d.Interface, "syncId": d.SyncID, "maxLen": d.MaxLen, "port": d.Port, "ttl": d.TTL, "group": ""}
	if d.Group.IsValid() {
		m["group"] = d.Group.String()
	}
	return m
}
