package engine

import (
	"fmt"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
)

// mergeService applies the given settings over cur (nil = a new service, starting from ipvsadm's defaults).
// The result is the complete entry a NEW or SET must carry.
func mergeService(cur *ipvs.Service, key ipvs.ServiceKey, set protocol.ServiceChange) (ipvs.Service, error) {
	s := ipvs.Service{ServiceKey: key, ServiceSettings: ipvs.DefaultService(key.AF)}
	if cur != nil {
		s = ipvs.Service{ServiceKey: cur.ServiceKey, ServiceSettings: cur.ServiceSettings}
	}
	if set.Scheduler != nil {
		s.Sched = *set.Scheduler
	}
	if set.HasFlags {
		bits, err := ipvs.SchedFlagsFromNames(s.Sched, set.Flags)
		if err != nil {
			return s, &ipvs.RuleError{Msg: fmt.Sprintf("%s: %v", key, err)}
		}
		s.Flags = s.Flags&^(ipvs.FlagSched1|ipvs.FlagSched2|ipvs.FlagSched3) | bits
	}
	if p := set.Persistence; p.Set {
		if p.Null {
			s.Flags &^= ipvs.FlagPersistent
			s.Timeout, s.Netmask = 0, ipvs.DefaultNetmask(key.AF)
		} else {
			s.Flags |= ipvs.FlagPersistent
			s.Timeout, s.Netmask = ipvs.DefaultPersistence, ipvs.DefaultNetmask(key.AF)
			if p.Val.Timeout != nil {
				s.Timeout = *p.Val.Timeout
			}
			if p.Val.Netmask != nil {
				s.Netmask = *p.Val.Netmask
			}
		}
	}
	if set.PE != nil {
		s.PE = *set.PE
	}
	if set.OnePacket != nil {
		s.Flags &^= ipvs.FlagOnePacket
		if *set.OnePacket {
			s.Flags |= ipvs.FlagOnePacket
		}
	}
	return s, nil
}

// mergeDest applies the given settings over cur (nil = a new dest: dr, weight 1, no thresholds, as ipvsadm).
func mergeDest(cur *ipvs.Dest, key ipvs.DestKey, set protocol.DestChange) (ipvs.Dest, error) {
	d := ipvs.Dest{DestKey: key, DestSettings: ipvs.DefaultDest}
	if cur != nil {
		d = ipvs.Dest{DestKey: cur.DestKey, DestSettings: cur.DestSettings}
	}
	if set.Fwd != nil {
		d.Fwd = *set.Fwd
	}
	for _, f := range []struct{ from, to *uint32 }{{set.Weight, &d.Weight}, {set.UThresh, &d.UThresh}, {set.LThresh, &d.LThresh}} {
		if f.from != nil {
			*f.to = *f.from
		}
	}
	if t := set.Tunnel; t.Set && !t.Null {
		if d.Fwd != ipvs.FwdTunnel {
			return d, &ipvs.RuleError{Msg: fmt.Sprintf("%s: tunnel settings need tunnel forwarding, not %s", key, ipvs.FwdName(d.Fwd))}
		}
		d.Tunnel = t.Val
	} else if t.Set || d.Fwd != ipvs.FwdTunnel {
		// null tunnel, or forwarding that has none: the tunnel settings are gone (a SET would reset them anyway).
		d.Tunnel = ipvs.Tunnel{}
	}
	return d, nil
}
