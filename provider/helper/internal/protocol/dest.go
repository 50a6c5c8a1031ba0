package protocol

import (
	"fmt"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
)

// A real server in the protocol: its request fields (wireDest), the change a request asks for (DestChange) and how
// it applies, and its read-back shape (DestOut, also the ledger's record). A real-server field is added here, in
// ipvs/types.go (DestSettings), ipvs/codec.go and, when it is a number, ipvs/fields.go.

// DestChange is what ensureDest asks to change, in kernel values.
type DestChange struct {
	Fwd     *uint32
	Weight  *uint32
	UThresh *uint32
	LThresh *uint32
	Tunnel  Opt[ipvs.Tunnel]
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
	// Anything besides the identity is a setting; comparing whole structs keeps a new field from being missed here.
	hasSettings := *w != wireDest{Address: w.Address, Port: w.Port}
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

// TunnelOut is a tunnel-forwarded dest's encapsulation.
type TunnelOut struct {
	Type     string `json:"type"`
	Port     uint16 `json:"port"`
	Checksum string `json:"checksum"`
}

// DestSpecOut is a real server's identity and settings as read back (no counters); a ledger DestRecord holds one.
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
	// Health is present for a real server a stack declared a health check for (health.go).
	Health *DestHealthOut `json:"health,omitempty"`
	// Sorry marks the sorry server the checker added to its service (no checked real server healthy).
	Sorry bool `json:"sorry,omitempty"`
}

// DestJSON renders a real server with its settings, connection counts and counters.
func DestJSON(d ipvs.Dest) DestOut {
	return DestOut{DestSpecOut: DestSpecJSON(d), ActiveConns: d.ActiveConns, InactiveConns: d.InactConns,
		PersistentConns: d.PersistConns, Stats: StatsJSON(d.Stats)}
}

// DestSpecJSON renders a real server's identity and settings, as the ledger records them; DestOf reads them back.
func DestSpecJSON(d ipvs.Dest) DestSpecOut {
	o := DestSpecOut{Address: d.Addr.String(), Port: d.Port, Forwarding: ipvs.FwdName(d.Fwd), Weight: d.Weight,
		UpperThreshold: d.UThresh, LowerThreshold: d.LThresh}
	if d.Fwd&ipvs.FwdMask == ipvs.FwdTunnel {
		o.Tunnel = &TunnelOut{Type: ipvs.TunTypeName(d.TunType), Port: d.TunPort, Checksum: ipvs.TunCsumName(d.TunFlags)}
	}
	return o
}

// DestOf is the kernel entry of a real server record (the ledger's DestSpecOut): the inverse of DestSpecJSON, so the
// checker restores a server exactly as declared. dest_test.go round-trips every settings field.
func DestOf(k ipvs.DestKey, spec DestSpecOut) (ipvs.Dest, *Error) {
	d := ipvs.Dest{DestKey: k, DestSettings: ipvs.DestSettings{Weight: spec.Weight, UThresh: spec.UpperThreshold, LThresh: spec.LowerThreshold}}
	f, e := word(spec.Forwarding, ipvs.Forwardings, "forwarding")
	if e != nil {
		return d, e
	}
	d.Fwd = f
	if t := spec.Tunnel; t != nil && f == ipvs.FwdTunnel {
		port := int64(t.Port)
		d.Tunnel, e = tunnelOf(wireTunnel{Type: t.Type, Port: &port, Checksum: t.Checksum})
	}
	return d, e
}

// Apply sets what c gives over d, keeping every setting c leaves out (a new real server starts from
// ipvs.DefaultDest). The result is the complete entry a NEW or SET must carry.
func (c DestChange) Apply(d *ipvs.Dest) error {
	if c.Fwd != nil {
		d.Fwd = *c.Fwd
	}
	for _, f := range []struct{ from, to *uint32 }{{c.Weight, &d.Weight}, {c.UThresh, &d.UThresh}, {c.LThresh, &d.LThresh}} {
		if f.from != nil {
			*f.to = *f.from
		}
	}
	if t := c.Tunnel; t.Set && !t.Null {
		if d.Fwd != ipvs.FwdTunnel {
			return &ipvs.RuleError{Msg: fmt.Sprintf("%s: tunnel settings need tunnel forwarding, not %s", d.DestKey, ipvs.FwdName(d.Fwd))}
		}
		d.Tunnel = t.Val
	} else if t.Set || d.Fwd != ipvs.FwdTunnel {
		// null tunnel, or forwarding that has none: the tunnel settings are gone (a SET would reset them anyway).
		d.Tunnel = ipvs.Tunnel{}
	}
	return nil
}
