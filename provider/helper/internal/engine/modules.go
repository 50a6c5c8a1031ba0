package engine

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
)

// withModules runs a NEW/SET_SERVICE and loads the modules it needs (afterModules).
func (e *Engine) withModules(s ipvs.Service, fn func() error) error {
	return e.afterModules(s, fn(), fn)
}

// afterModules looks at the answer err of a NEW/SET_SERVICE. ENOENT there means the scheduler or persistence engine
// module is not loaded: load ip_vs_<sched> (and ip_vs_pe_<pe>) and try once more with fn; otherwise say which
// module is missing.
func (e *Engine) afterModules(s ipvs.Service, err error, fn func() error) error {
	if ipvs.Errno(err) != syscall.ENOENT {
		return err
	}
	type need struct{ what, module string }
	needs := []need{{fmt.Sprintf("scheduler '%s'", s.Sched), "ip_vs_" + s.Sched}}
	if s.PE != "" {
		needs = append(needs, need{fmt.Sprintf("persistence engine '%s'", s.PE), "ip_vs_pe_" + s.PE})
	}
	unavailable := func(n need, why string) *protocol.Error {
		return &protocol.Error{Code: protocol.CodeSchedUnavail, Errno: int(syscall.ENOENT),
			Message: fmt.Sprintf("%s is not available on this kernel (module %s %s).", n.what, n.module, why)}
	}
	if e.modprobe == nil {
		return unavailable(needs[0], "is not loaded and modprobe is not installed")
	}
	for _, n := range needs {
		if lerr := e.modprobe(n.module); lerr != nil {
			pe := unavailable(n, "could not be loaded: "+lerr.Error())
			if errors.Is(lerr, os.ErrDeadlineExceeded) {
				pe.Code = protocol.CodeTimeout
			}
			return pe
		}
	}
	err = fn()
	if ipvs.Errno(err) == syscall.ENOENT {
		n := needs[len(needs)-1]
		return unavailable(n, "was loaded but the kernel still does not know it")
	}
	return err
}
