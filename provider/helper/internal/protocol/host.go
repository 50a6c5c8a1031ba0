package protocol

import (
	"encoding/json"
	"net/netip"
	"slices"
)

// HostSpec is what ensureHost prepares on a DR real server's host (RealServerHost, issue 28): its forwarding method
// and the virtual addresses the host must accept as its own without answering ARP for them.
type HostSpec struct {
	Forwarding string
	// Tunnel is the encapsulation of forwarding "tunnel" ("ipip" or "gre"); "" for dr.
	Tunnel string
	VIPs   []netip.Addr
}

type wireHost struct {
	Forwarding *string `json:"forwarding"`
	Tunnel     *struct {
		Type string `json:"type"`
	} `json:"tunnel"`
	VIPs *[]string `json:"vips"`
}

// decodeHost reads ensureHost's host: {"forwarding":"dr","vips":[…]} or {"forwarding":"tunnel","tunnel":{"type":"ipip"|"gre"},"vips":[…]}.
func decodeHost(w *wireOp, op *Op) *Error {
	if w.Host == nil || string(w.Host) == "null" {
		return nil
	}
	var h wireHost
	if err := strictUnmarshal(w.Host, &h); err != nil {
		return bad("host is malformed: %v", err)
	}
	if h.Forwarding == nil || (*h.Forwarding != "dr" && *h.Forwarding != "tunnel") {
		got := "absent"
		if h.Forwarding != nil {
			got = "\"" + *h.Forwarding + "\""
		}
		return bad("host.forwarding must be \"dr\" or \"tunnel\", not %s", got)
	}
	spec := &HostSpec{Forwarding: *h.Forwarding}
	switch {
	case *h.Forwarding == "dr" && h.Tunnel != nil:
		return bad("host.tunnel is only for forwarding \"tunnel\"")
	case *h.Forwarding == "tunnel" && (h.Tunnel == nil || (h.Tunnel.Type != "ipip" && h.Tunnel.Type != "gre")):
		got := "absent"
		if h.Tunnel != nil {
			got = "\"" + h.Tunnel.Type + "\""
		}
		return bad("host.tunnel.type must be \"ipip\" or \"gre\" (gue real servers are not prepared by this helper), not %s", got)
	case *h.Forwarding == "tunnel":
		spec.Tunnel = h.Tunnel.Type
	}
	if h.VIPs == nil || len(*h.VIPs) == 0 {
		return bad("host.vips must list at least one address")
	}
	for _, s := range *h.VIPs {
		a, e := parseAddr(s, 0, "host.vips:")
		if e != nil {
			return e
		}
		if !a.IsGlobalUnicast() && !a.IsPrivate() {
			return bad("host.vips: %s is not a unicast address a service can have (loopback, link-local, multicast and unspecified are refused)", a)
		}
		if slices.Contains(spec.VIPs, a) {
			return bad("host.vips: %s is listed twice", a)
		}
		spec.VIPs = append(spec.VIPs, a)
	}
	op.Host = spec
	return nil
}

// HostVIPOut is a prepared virtual address as ensureHost and getHost answer it: present is whether it is on its
// interface now (the one the record names: lo for dr, tunl0 for ipip), which the answer names so a reader need not
// know the helper's choice.
type HostVIPOut struct {
	Address   string `json:"address"`
	Interface string `json:"interface"`
	Present   bool   `json:"present"`
	// Added: pulumi-ipvs put it there (else it was found there and is left there on delete).
	Added bool `json:"added"`
}

// HostOut is a host's prepared state as it is now: its VIPs and the managed sysctls' current values.
type HostOut struct {
	Forwarding string                     `json:"forwarding"`
	VIPs       []HostVIPOut               `json:"vips"`
	Sysctls    map[string]json.RawMessage `json:"sysctls"`
}
