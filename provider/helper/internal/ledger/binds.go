package ledger

import (
	"net/netip"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
)

// The services' bound addresses (bindAddress) live in their service records; these read them across stacks, so
// that an address shared by several services, of one stack or several, goes only with the last of them.

// Binder is a service record that binds an address.
type Binder struct {
	Owner   string
	Service ipvs.ServiceKey
	Bind    protocol.Binding
}

// ServiceBind is the binding recorded for a service (by whichever stack owns it), nil when none.
func (l *Ledger) ServiceBind(k ipvs.ServiceKey) *protocol.Binding {
	owner := l.svcOwner[k]
	if owner == "" {
		return nil
	}
	if b := l.stacks[owner].Services[k].BindAddress; b != nil {
		c := *b
		return &c
	}
	return nil
}

// Binders lists every recorded service that binds address a, in every readable stack.
func (l *Ledger) Binders(a netip.Addr) []Binder {
	var out []Binder
	for owner, s := range l.stacks {
		for k, spec := range s.Services {
			if spec.BindAddress != nil && !k.IsFWMark() && k.Addr == a {
				out = append(out, Binder{Owner: owner, Service: k, Bind: *spec.BindAddress})
			}
		}
	}
	return out
}

// BindsOn tells whether any recorded service binds an address on interface name.
func (l *Ledger) BindsOn(name string) bool {
	for _, s := range l.stacks {
		for _, spec := range s.Services {
			if spec.BindAddress != nil && spec.BindAddress.Interface == name {
				return true
			}
		}
	}
	return false
}
