package engine

import "github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"

// view is what one batch knows of the table: read once (a full dump, or a GET per service for small batches),
// then kept current by the batch's own writes. It lives for one request only, so changes made by others between
// requests are always seen.
type view struct {
	k      Kernel
	full   bool // every service is known: absence from svcs means absent
	svcs   map[ipvs.ServiceKey]*svcView
	absent map[ipvs.ServiceKey]bool
	// beforeRead runs before every kernel read (the engine sends its queued writes, so reads see them); may be nil.
	beforeRead func()
}

type svcView struct {
	svc   ipvs.Service
	dests map[ipvs.DestKey]ipvs.Dest // nil until dumped
}

func newView(k Kernel) *view {
	return &view{k: k, svcs: map[ipvs.ServiceKey]*svcView{}, absent: map[ipvs.ServiceKey]bool{}}
}

// loadAll replaces the view with one full service dump.
func (v *view) loadAll() error {
	v.reading()
	list, err := v.k.Services()
	if err != nil {
		return err
	}
	v.svcs = make(map[ipvs.ServiceKey]*svcView, len(list))
	v.absent = map[ipvs.ServiceKey]bool{}
	for _, s := range list {
		v.svcs[s.ServiceKey] = &svcView{svc: s}
	}
	v.full = true
	return nil
}

// service returns the current service, or nil when absent.
func (v *view) service(key ipvs.ServiceKey) (*svcView, error) {
	if sv, ok := v.svcs[key]; ok {
		return sv, nil
	}
	if v.full || v.absent[key] {
		return nil, nil
	}
	v.reading()
	s, found, err := v.k.GetService(key)
	if err != nil || !found {
		if err == nil {
			v.absent[key] = true
		}
		return nil, err
	}
	sv := &svcView{svc: s}
	v.svcs[key] = sv
	return sv, nil
}

// known reports whether service() would answer for key without reading the kernel.
func (v *view) known(key ipvs.ServiceKey) bool {
	_, ok := v.svcs[key]
	return ok || v.full || v.absent[key]
}

// dests returns a service's dests, dumping them once.
func (v *view) dests(sv *svcView) (map[ipvs.DestKey]ipvs.Dest, error) {
	if sv.dests != nil {
		return sv.dests, nil
	}
	v.reading()
	list, err := v.k.Dests(sv.svc.ServiceKey)
	if err != nil {
		return nil, err
	}
	sv.dests = make(map[ipvs.DestKey]ipvs.Dest, len(list))
	for _, d := range list {
		sv.dests[d.DestKey] = normalizeDest(d)
	}
	return sv.dests, nil
}

func (v *view) reading() {
	if v.beforeRead != nil {
		v.beforeRead()
	}
}

// forget drops what the view knows of a service, so the next look reads the kernel again.
func (v *view) forget(key ipvs.ServiceKey) {
	delete(v.svcs, key)
	delete(v.absent, key)
	v.full = false
}

func (v *view) put(s ipvs.Service, created bool) {
	if sv, ok := v.svcs[s.ServiceKey]; ok {
		sv.svc = s
		return
	}
	sv := &svcView{svc: s}
	if created {
		sv.dests = map[ipvs.DestKey]ipvs.Dest{}
	}
	v.svcs[s.ServiceKey] = sv
	delete(v.absent, s.ServiceKey)
}

// undo takes back a service write that failed: the entry is again what it was before (prev nil: absent).
func (v *view) undo(key ipvs.ServiceKey, prev *ipvs.Service) {
	if prev == nil {
		v.remove(key)
		return
	}
	v.put(*prev, false)
}

func (v *view) remove(key ipvs.ServiceKey) {
	delete(v.svcs, key)
	v.absent[key] = true
}

// normalizeDest clears tunnel fields of a non-tunnel dest: the kernel keeps whatever was last sent, but they mean
// nothing without tunnel forwarding and must not make two equal entries compare different.
func normalizeDest(d ipvs.Dest) ipvs.Dest {
	if d.Fwd&ipvs.FwdMask != ipvs.FwdTunnel {
		d.TunType, d.TunPort, d.TunFlags = 0, 0, 0
	}
	return d
}
