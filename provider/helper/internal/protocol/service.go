package protocol

import (
	"fmt"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
)

// A virtual service in the protocol: its request fields (wireService), the change a request asks for (ServiceChange)
// and how it applies, and its read-back shape (ServiceOut, also the ledger's record). A service field is added here,
// in ipvs/types.go (ServiceSettings), ipvs/codec.go and, when it is a number, ipvs/fields.go.

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

func decodeService(w *wireService, settingsAllowed bool, op *Op) *Error {
	k, e := serviceKeyOf(w)
	if e != nil {
		return e
	}
	op.Service = k
	// Anything besides the identity is a setting; comparing whole structs keeps a new field from being missed here.
	hasSettings := *w != wireService{Family: w.Family, Protocol: w.Protocol, Address: w.Address, Port: w.Port, FWMark: w.FWMark}
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

// ServiceSpecOut is a service's identity and settings as read back (no counters); a ledger ServiceRecord holds one.
type ServiceSpecOut struct {
	ServiceKeyOut
	Scheduler         string          `json:"scheduler"`
	SchedulerFlags    []string        `json:"schedulerFlags"`
	Persistence       *PersistenceOut `json:"persistence"`
	PersistenceEngine string          `json:"persistenceEngine"`
	OnePacket         bool            `json:"onePacket"`
	// BindAddress is where the ledger records the service's address bound (bind.go); nil when it binds none.
	BindAddress *Binding `json:"bindAddress,omitempty"`
}

// ServiceOut is a service as read back: identity, settings, counters, and dests when asked.
type ServiceOut struct {
	ServiceSpecOut
	Stats StatsOut   `json:"stats"`
	Dests *[]DestOut `json:"dests,omitempty"`
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

// Apply sets what c gives over s, keeping every setting c leaves out (a new service starts from
// ipvs.DefaultService). The result is the complete entry a NEW or SET must carry.
func (c ServiceChange) Apply(s *ipvs.Service) error {
	if c.Scheduler != nil {
		s.Sched = *c.Scheduler
	}
	if c.HasFlags {
		bits, err := ipvs.SchedFlagsFromNames(s.Sched, c.Flags)
		if err != nil {
			return &ipvs.RuleError{Msg: fmt.Sprintf("%s: %v", s.ServiceKey, err)}
		}
		s.Flags = s.Flags&^(ipvs.FlagSched1|ipvs.FlagSched2|ipvs.FlagSched3) | bits
	}
	if p := c.Persistence; p.Set {
		s.Flags &^= ipvs.FlagPersistent
		s.Timeout, s.Netmask = 0, ipvs.DefaultNetmask(s.AF)
		if !p.Null {
			s.Flags |= ipvs.FlagPersistent
			s.Timeout = ipvs.DefaultPersistence
			if p.Val.Timeout != nil {
				s.Timeout = *p.Val.Timeout
			}
			if p.Val.Netmask != nil {
				s.Netmask = *p.Val.Netmask
			}
		}
	}
	if c.PE != nil {
		s.PE = *c.PE
	}
	if c.OnePacket != nil {
		s.Flags &^= ipvs.FlagOnePacket
		if *c.OnePacket {
			s.Flags |= ipvs.FlagOnePacket
		}
	}
	return nil
}
