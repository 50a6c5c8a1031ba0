package protocol

import (
	"bytes"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/netif"
)

// Binding is where a service's virtual address is put on the director (ensureService's bindAddress): in a request
// and in the ledger's service record; read back with Present.
type Binding struct {
	// Interface holds the address: netif.Dummy for bindAddress true, else the one the caller named.
	Interface string `json:"interface"`
	// Dummy: the helper's own dummy interface, created with the first address and removed with the last.
	Dummy bool `json:"dummy,omitempty"`
	// Added (ledger): pulumi-ipvs added the address, so it removes it when the last service binding it goes. An
	// address found there before any stack bound it is left alone.
	Added bool `json:"added,omitempty"`
	// Present (read-back only): the address is on the interface now (false: removed by hand, drift).
	Present *bool `json:"present,omitempty"`
}

// Same tells whether two bindings put the address in the same place.
func (b *Binding) Same(o *Binding) bool {
	if b == nil || o == nil {
		return b == o
	}
	return b.Interface == o.Interface && b.Dummy == o.Dummy
}

// WireValue is the binding as ensureService's bindAddress takes it: true, or {"interface": name}.
func (b *Binding) WireValue() any {
	switch {
	case b == nil:
		return false
	case b.Dummy:
		return true
	}
	return map[string]string{"interface": b.Interface}
}

// decodeBind reads ensureService's bindAddress: false (or absent: the service binds nothing), true (the dummy
// interface) or {"interface": name}. It needs owner (the ledger counts who binds an address) and an address.
func decodeBind(w *wireOp, op *Op) *Error {
	raw := bytes.TrimSpace(w.BindAddress)
	if len(raw) == 0 || string(raw) == "null" || string(raw) == "false" {
		return nil
	}
	if w.Owner == nil {
		return bad("bindAddress needs \"owner\": the ownership ledger counts which services bind an address")
	}
	if op.Service.IsFWMark() {
		return bad("bindAddress: %s has no address to bind (a fwmark service's addresses come from the firewall rules that mark its packets)", op.Service)
	}
	if string(raw) == "true" {
		op.Bind = &Binding{Interface: netif.Dummy, Dummy: true}
		return nil
	}
	var v struct {
		Interface *string `json:"interface"`
	}
	if err := strictUnmarshal(raw, &v); err != nil || v.Interface == nil {
		return bad("bindAddress must be false, true or {\"interface\": name}, not %s", raw)
	}
	if err := netif.CheckName(*v.Interface); err != nil {
		return bad("bindAddress.interface: %v", err)
	}
	if *v.Interface == netif.Dummy {
		return bad("bindAddress.interface: %s is the helper's own dummy interface; bindAddress true puts the address there", netif.Dummy)
	}
	op.Bind = &Binding{Interface: *v.Interface}
	return nil
}
