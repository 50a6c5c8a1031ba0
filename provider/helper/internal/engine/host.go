package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"syscall"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ledger"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/sysctl"
)

// RealServerHost (PROTOCOL.md "Real server hosts", issue 28): ensureHost, deleteHost and getHost prepare the host
// of DR real servers. They need no IPVS: the helper runs them without opening the IPVS family (main.go).
//
// dr: each VIP on lo as a host address, so the real server accepts packets the director forwards to it unchanged;
// with an IPv4 VIP, arp_ignore=1 (answer ARP only for addresses of the interface asked) and arp_announce=2 (never
// source ARP from the VIP), so the host neither answers nor advertises the VIP on its LAN — the director must be
// the only one that does. The kernel applies the larger of conf/all and the interface's value for both, so
// conf/all alone is enough and covers interfaces added later; an interface's own larger value is stricter and is
// left alone. IPv6 needs no counterpart: Linux answers neighbour solicitations only for addresses of the interface
// they arrive on.
//
// tunnel (ipip, gre): the module whose fallback device receives the type's packets (loaded when the device is
// missing), the device up, the VIPs on it, the ARP settings as for dr, and reverse-path filtering relaxed exactly
// where decapsulated packets need it: they arrive on the device with the client's source, whose route leaves by
// another interface, which strict filtering (1) drops. The kernel applies the larger of all and the interface's
// value, so the device gets 0 and all, only when it is strict (1), loose (2): every other interface keeps a
// reverse-path check. ipip's device is tunl0; gre's is gre0, which receives GRE without key from any peer, the
// packets IPVS sends (a 4-byte GRE header, 8 with checksum, and the IPv4 header).
//
// Counting across records (several resources and stacks may prepare one host): an address or sysctl that another
// record still lists stays; the last record to drop it puts back what was found (an address found there stays).

// loopback is where dr VIPs go.
const (
	loopback = "lo"
	allRPF   = "net.ipv4.conf.all.rp_filter"
)

// tunnelDevice is a tunnel type's fallback device, where its VIPs go, and the module that creates it.
type tunnelDevice struct{ name, module string }

var tunnelDevices = map[string]tunnelDevice{
	"ipip": {"tunl0", "ipip"},
	"gre":  {"gre0", "ip_gre"},
}

// vipDevice is where a spec's VIPs go; tunnel is nil for dr.
func vipDevice(h *protocol.HostSpec) (string, *tunnelDevice) {
	if t, ok := tunnelDevices[h.Tunnel]; ok {
		return t.name, &t
	}
	return loopback, nil
}

// tunnelOf is the tunnel type of a recorded device ("" for none): what boot asks for again.
func tunnelOf(d *ledger.HostDevice) string {
	for typ, t := range tunnelDevices {
		if d != nil && d.Name == t.name {
			return typ
		}
	}
	return ""
}

// hostSysctls are the sysctls a host spec needs and their values.
func hostSysctls(h *protocol.HostSpec) map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	if slices.ContainsFunc(h.VIPs, netip.Addr.Is4) {
		out["net.ipv4.conf.all.arp_ignore"] = json.RawMessage("1")
		out["net.ipv4.conf.all.arp_announce"] = json.RawMessage("2")
	}
	if t, ok := tunnelDevices[h.Tunnel]; ok {
		out["net.ipv4.conf."+t.name+".rp_filter"] = json.RawMessage("0")
	}
	return out
}

// hostRecords loads the host records for a write: op's own record (nil when it has none) and every other one.
func (e *Engine) hostRecords(op *protocol.Op) (*ledger.HostRecord, []ledger.HostRecord, *protocol.Error) {
	if e.own.err != nil {
		return nil, nil, e.own.err
	}
	recs, err := ledger.LoadHosts()
	if err != nil {
		return nil, nil, ledgerError(err)
	}
	prev, others := findHost(recs, op.Owner, op.Holder)
	return prev, others, nil
}

func findHost(recs []ledger.HostRecord, owner, holder string) (*ledger.HostRecord, []ledger.HostRecord) {
	var prev *ledger.HostRecord
	var others []ledger.HostRecord
	for i := range recs {
		if recs[i].Owner == owner && recs[i].Holder == holder {
			r := recs[i]
			prev = &r
		} else {
			others = append(others, recs[i])
		}
	}
	return prev, others
}

// ensureHost prepares the host for op.Host and records it; what the previous record of the same resource listed
// and this one drops is put back (when no other record needs it).
func (e *Engine) ensureHost(op *protocol.Op) (protocol.Result, *protocol.Error) {
	prev, others, perr := e.hostRecords(op)
	if perr != nil {
		return nil, perr
	}
	doing := "preparing this host for " + op.Holder
	dev, tun := vipDevice(op.Host)
	onDev := map[netip.Addr]bool{}
	for _, a := range op.Host.VIPs {
		if tun != nil && !a.Is4() {
			return nil, &protocol.Error{Code: protocol.CodeBadRequest, Message: fmt.Sprintf("%s refused: vips: %s is IPv6, and %s carries IPv4 only here (IPv6 in %s needs another device).", doing, a, tun.module, op.Host.Tunnel)}
		}
		holders, err := e.net().Holders(a)
		if err != nil {
			return nil, bindError(doing, err)
		}
		for _, h := range holders {
			if h != dev {
				return nil, &protocol.Error{Code: protocol.CodeBadRequest, Message: fmt.Sprintf(
					"%s refused: vips: %s is an address of interface %s of this host, its own address (when it is the address pulumi-ipvs reaches the host by, the host would stop answering on it); a VIP is the directors' address, which a real server only accepts on lo.",
					doing, a, h)}
			}
		}
		onDev[a] = slices.Contains(holders, dev)
	}
	next := ledger.HostRecord{Owner: op.Owner, Holder: op.Holder, Forwarding: op.Host.Forwarding, Sysctls: map[string]ledger.HostSysctl{}}
	changed := false
	// Whatever happens below is recorded: a failure half-way keeps the previous record's items with what this op
	// already did, so a retry or delete still knows what to put back.
	save := func(rec ledger.HostRecord) *protocol.Error {
		if err := e.own.led.SaveHosts(append(slices.Clone(others), rec)); err != nil {
			return ledgerError(err)
		}
		return nil
	}
	fail := func(perr *protocol.Error) (protocol.Result, *protocol.Error) {
		if serr := save(unionHost(prev, next)); serr != nil {
			perr.Message += " Recording what was done failed too: " + serr.Message
		}
		return nil, perr
	}
	if tun != nil {
		d, c, perr := e.ensureTunnel(doing, *tun, prev, others)
		if perr != nil {
			return fail(perr)
		}
		next.Device, changed = d, changed || c
	}
	want := hostSysctls(op.Host)
	if tun != nil {
		// all: loosened only from strict, or kept where a record loosened it.
		cur, perr := e.readSysctls([]string{allRPF})
		if perr != nil {
			return fail(perr)
		}
		if string(cur[allRPF].JSON()) == "1" || originalBefore(prev, others, allRPF) != nil {
			want[allRPF] = json.RawMessage("2")
		}
	}
	for _, name := range sortedKeys(want) {
		s, _ := sysctl.HostSetting(name)
		v, err := s.Decode(want[name])
		if err != nil {
			return fail(&protocol.Error{Code: protocol.CodeInternal, Message: fmt.Sprintf("%s: %v.", doing, err)})
		}
		cur, perr := e.readSysctls([]string{name})
		if perr != nil {
			return fail(perr)
		}
		orig := originalBefore(prev, others, name)
		if orig == nil {
			orig = cur[name].JSON()
		}
		if !cur[name].Equal(v) {
			if perr := e.writeSysctl(name, v); perr != nil {
				return fail(perr)
			}
			changed = true
		}
		next.Sysctls[name] = ledger.HostSysctl{Set: want[name], Original: orig}
	}
	// The VIPs last: by then the host neither answers nor announces them on its LAN.
	for _, a := range op.Host.VIPs {
		added, known := recordedAdded(prev, others, a)
		if !known {
			added = !onDev[a]
		}
		if !onDev[a] {
			if err := e.net().AddAddr(dev, a); err != nil {
				return fail(bindError(fmt.Sprintf("%s: adding %s to %s", doing, a, dev), err))
			}
			changed = true
		}
		next.VIPs = append(next.VIPs, ledger.HostVIP{Address: a.String(), Interface: dev, Added: added})
	}
	released, perr := e.releaseHost(prev, append(slices.Clone(others), next))
	if perr != nil {
		return fail(perr)
	}
	if perr := save(next); perr != nil {
		return nil, perr
	}
	if err := syncUnits(e.own.led, e.Exe, e.LockWait); err != nil {
		return nil, ledgerError(err)
	}
	out, perr := e.hostNow(&next)
	if perr != nil {
		return nil, perr
	}
	return protocol.Result{"changed": changed || released, "host": out}, nil
}

// deleteHost puts back what the resource's record changed and no other record needs, and drops the record.
func (e *Engine) deleteHost(op *protocol.Op) (protocol.Result, *protocol.Error) {
	prev, others, perr := e.hostRecords(op)
	if perr != nil {
		return nil, perr
	}
	if prev == nil {
		return protocol.Result{"changed": false}, nil
	}
	changed, perr := e.releaseHost(prev, others)
	if perr != nil {
		return nil, perr // the record stays: a retry puts back what is still to put back
	}
	if err := e.own.led.SaveHosts(others); err != nil {
		return nil, ledgerError(err)
	}
	if err := syncUnits(e.own.led, e.Exe, e.LockWait); err != nil {
		return nil, ledgerError(err)
	}
	return protocol.Result{"changed": changed}, nil
}

// getHost reads the resource's recorded items as they are now; "host": null when it has no record.
func (e *Engine) getHost(op *protocol.Op) (protocol.Result, *protocol.Error) {
	recs, err := ledger.LoadHosts()
	if err != nil {
		return nil, ledgerError(err)
	}
	rec, _ := findHost(recs, op.Owner, op.Holder)
	if rec == nil {
		return protocol.Result{"host": nil}, nil
	}
	out, perr := e.hostNow(rec)
	if perr != nil {
		return nil, perr
	}
	return protocol.Result{"host": out}, nil
}

// releaseHost puts back each item of prev that no record of keep lists: an address pulumi-ipvs added is removed,
// a sysctl gets its original value.
func (e *Engine) releaseHost(prev *ledger.HostRecord, keep []ledger.HostRecord) (changed bool, perr *protocol.Error) {
	if prev == nil {
		return false, nil
	}
	for _, v := range prev.VIPs {
		listed := slices.ContainsFunc(keep, func(r ledger.HostRecord) bool {
			return slices.ContainsFunc(r.VIPs, func(x ledger.HostVIP) bool { return x.Address == v.Address })
		})
		if listed || !v.Added {
			continue
		}
		a, err := netip.ParseAddr(v.Address)
		if err != nil {
			return changed, ledgerError(fmt.Errorf("the hosts record of %s lists %q, which is not an address", prev.Holder, v.Address))
		}
		if err := e.net().DelAddr(v.Interface, a); err != nil {
			return changed, bindError("removing "+v.Address+" from "+v.Interface, err)
		}
		changed = true
	}
	for _, name := range sortedKeys(prev.Sysctls) {
		if slices.ContainsFunc(keep, func(r ledger.HostRecord) bool { _, ok := r.Sysctls[name]; return ok }) {
			continue
		}
		s, ok := sysctl.HostSetting(name)
		if !ok {
			return changed, ledgerError(fmt.Errorf("the hosts record of %s manages %s, which this helper does not know", prev.Holder, name))
		}
		orig, err := s.Load(prev.Sysctls[name].Original)
		if err != nil {
			return changed, ledgerError(fmt.Errorf("the hosts record of %s: %s's original value: %v", prev.Holder, name, err))
		}
		cur, perr := e.readSysctls([]string{name})
		if perr != nil && perr.Code == protocol.CodeUnsupported {
			continue // its interface is gone (a tunnel device with its module): nothing left to put back
		}
		if perr != nil {
			return changed, perr
		}
		if !cur[name].Equal(orig) {
			if perr := e.writeSysctl(name, orig); perr != nil {
				return changed, perr
			}
			changed = true
		}
	}
	if d := prev.Device; d != nil && !slices.ContainsFunc(keep, func(r ledger.HostRecord) bool { return r.Device != nil && r.Device.Name == d.Name }) {
		c, perr := e.releaseDevice(d)
		changed = changed || c
		if perr != nil {
			return changed, perr
		}
	}
	return changed, nil
}

// ensureTunnel makes a tunnel's fallback device exist (loading its module) and be up; what it found is inherited from a
// record that uses the device already, so the last one puts back what was there before any, also when boot loads the
// module again after a reboot.
func (e *Engine) ensureTunnel(doing string, t tunnelDevice, prev *ledger.HostRecord, others []ledger.HostRecord) (*ledger.HostDevice, bool, *protocol.Error) {
	var d *ledger.HostDevice
	for _, r := range withPrev(prev, others) {
		if r.Device != nil && r.Device.Name == t.name {
			x := *r.Device
			d = &x
			break
		}
	}
	up, exists, err := e.net().IsUp(t.name)
	if err != nil {
		return nil, false, bindError(doing+": reading "+t.name, err)
	}
	changed := false
	if !exists {
		if e.modprobe == nil {
			return nil, false, &protocol.Error{Code: protocol.CodeUnsupported, Message: doing + ": module " + t.module + " is needed for tunnel forwarding, and modprobe is not installed."}
		}
		if err := e.modprobe(t.module); err != nil {
			return nil, false, &protocol.Error{Code: protocol.CodeUnsupported, Message: fmt.Sprintf("%s: loading module %s failed: %v.", doing, t.module, err)}
		}
		if up, exists, err = e.net().IsUp(t.name); err != nil || !exists {
			return nil, false, &protocol.Error{Code: protocol.CodeUnsupported, Message: fmt.Sprintf("%s: module %s is loaded, but there is no %s in this network namespace (net.core.fb_tunnels_only_for_init_net?) (%v).", doing, t.module, t.name, err)}
		}
		changed = true
		if d == nil { // a record that found the module loaded keeps that (as with a found VIP): never ours to unload
			d = &ledger.HostDevice{Name: t.name, Module: t.module, WasDown: true}
		}
	}
	if d == nil {
		d = &ledger.HostDevice{Name: t.name, WasDown: !up}
	}
	if !up {
		if err := e.net().SetUp(t.name, true); err != nil {
			return d, changed, bindError(doing, err)
		}
		changed = true
	}
	return d, changed, nil
}

// releaseDevice puts a tunnel device back as found: its module unloaded when pulumi-ipvs loaded it, else down when
// it was down.
func (e *Engine) releaseDevice(d *ledger.HostDevice) (bool, *protocol.Error) {
	if d.Module != "" {
		if err := e.Modules.Unload(d.Module); err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, syscall.ENOENT) {
			return false, &protocol.Error{Code: protocol.CodeInternal, Message: fmt.Sprintf("unloading module %s (loaded for tunnel forwarding) failed: %v.", d.Module, err)}
		}
		return true, nil
	}
	up, exists, err := e.net().IsUp(d.Name)
	if err != nil {
		return false, bindError("reading "+d.Name, err)
	}
	if exists && up && d.WasDown {
		if err := e.net().SetUp(d.Name, false); err != nil {
			return false, bindError("putting "+d.Name+" down", err)
		}
		return true, nil
	}
	return false, nil
}

// hostNow is a record's items as the host has them now.
func (e *Engine) hostNow(rec *ledger.HostRecord) (protocol.HostOut, *protocol.Error) {
	out := protocol.HostOut{Forwarding: rec.Forwarding, VIPs: []protocol.HostVIPOut{}, Sysctls: map[string]json.RawMessage{}}
	on := map[string][]netip.Addr{}
	for _, v := range rec.VIPs {
		if _, ok := on[v.Interface]; !ok {
			addrs, _, err := e.net().Addrs(v.Interface)
			if err != nil {
				return out, bindError("reading the addresses of "+v.Interface, err)
			}
			on[v.Interface] = addrs
		}
		a, _ := netip.ParseAddr(v.Address)
		out.VIPs = append(out.VIPs, protocol.HostVIPOut{Address: v.Address, Interface: v.Interface, Present: slices.Contains(on[v.Interface], a), Added: v.Added})
	}
	for _, n := range sortedKeys(rec.Sysctls) {
		cur, perr := e.readSysctls([]string{n})
		if perr != nil && perr.Code == protocol.CodeUnsupported {
			continue // its interface is gone: read back as absent, which is drift
		}
		if perr != nil {
			return out, perr
		}
		out.Sysctls[n] = cur[n].JSON()
	}
	return out, nil
}

// recordedAdded is whether pulumi-ipvs added address a, as the records (this resource's previous one or another's)
// know it; known is false when no record lists a. A record that found a already there keeps that for good: the
// address is the user's even after pulumi-ipvs put it back (boot after a reboot, an ensure after it was removed by
// hand), so no delete removes it. Records that disagree (none written by this helper do) count as found.
func recordedAdded(prev *ledger.HostRecord, others []ledger.HostRecord, a netip.Addr) (added, known bool) {
	for _, r := range withPrev(prev, others) {
		for _, v := range r.VIPs {
			if v.Address == a.String() {
				if !v.Added {
					return false, true
				}
				added, known = true, true
			}
		}
	}
	return added, known
}

// originalBefore is the value a sysctl had before any record set it, nil when no record manages it.
func originalBefore(prev *ledger.HostRecord, others []ledger.HostRecord, name string) json.RawMessage {
	for _, r := range withPrev(prev, others) {
		if s, ok := r.Sysctls[name]; ok {
			return s.Original
		}
	}
	return nil
}

func withPrev(prev *ledger.HostRecord, others []ledger.HostRecord) []ledger.HostRecord {
	if prev == nil {
		return others
	}
	return append([]ledger.HostRecord{*prev}, others...)
}

// unionHost is prev's items with next's added: the record of an ensure that failed half-way.
func unionHost(prev *ledger.HostRecord, next ledger.HostRecord) ledger.HostRecord {
	if prev == nil {
		return next
	}
	u := next
	if u.Device == nil {
		u.Device = prev.Device
	}
	u.VIPs = slices.Clone(next.VIPs)
	u.Sysctls = map[string]ledger.HostSysctl{}
	for n, s := range prev.Sysctls {
		u.Sysctls[n] = s
	}
	for n, s := range next.Sysctls {
		u.Sysctls[n] = s
	}
	for _, v := range prev.VIPs {
		if !slices.ContainsFunc(u.VIPs, func(x ledger.HostVIP) bool { return x.Address == v.Address }) {
			u.VIPs = append(u.VIPs, v)
		}
	}
	return u
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
