package engine

import (
	"errors"
	"fmt"
	"sort"
	"syscall"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/sysctl"
)

// Sysctls: the sysctls item of director settings.

// readSysctls reads the named sysctls; a missing one is UNSUPPORTED_KERNEL naming it.
func (e *Engine) readSysctls(names []string) (map[string]sysctl.Value, *protocol.Error) {
	out := make(map[string]sysctl.Value, len(names))
	for _, n := range names {
		v, err := e.Sysctl.Read(n)
		if errors.Is(err, sysctl.ErrMissing) {
			return nil, &protocol.Error{Code: protocol.CodeUnsupported, Message: err.Error() + "."}
		}
		if err != nil {
			return nil, &protocol.Error{Code: protocol.CodeInternal, Message: fmt.Sprintf("reading %s failed: %v.", n, err)}
		}
		out[n] = v
	}
	return out, nil
}

func (e *Engine) writeSysctl(name string, v sysctl.Value) *protocol.Error {
	if err := e.Sysctl.Write(name, v); err != nil {
		code := protocol.CodeInternal
		if errors.Is(err, syscall.EINVAL) {
			code = protocol.CodeInvalid
		} else if errors.Is(err, sysctl.ErrMissing) {
			code = protocol.CodeUnsupported
		}
		return &protocol.Error{Code: code, Message: fmt.Sprintf("setting %s to %s failed: %v.", name, v.Text(), err)}
	}
	return nil
}

// names are the sysctls of m in a stable order, so writes happen in the same order every time.
func names(m map[string]sysctl.Value) []string {
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// applySysctls puts the sysctls rec manages and want drops back to their originals, then writes want's; a sysctl
// that already holds its value is not written.
func (e *Engine) applySysctls(rec settingsRecord, want protocol.Settings, cur map[string]sysctl.Value) (changed bool, perr *protocol.Error) {
	target := map[string]sysctl.Value{}
	for n := range rec.applied.Sysctls {
		if _, keep := want.Sysctls[n]; !keep {
			target[n] = rec.original.Sysctls[n]
		}
	}
	// Dropped ones first, then the listed ones, each in name order.
	for _, set := range []map[string]sysctl.Value{target, want.Sysctls} {
		for _, n := range names(set) {
			if cur[n].Equal(set[n]) {
				continue
			}
			if perr := e.writeSysctl(n, set[n]); perr != nil {
				return changed, perr
			}
			changed = true
		}
	}
	return changed, nil
}
