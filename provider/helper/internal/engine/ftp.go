package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
)

// The ftp item of director settings: ip_vs_ftp loaded with the stack's ports. IPVS only inspects an FTP control
// connection (rewriting the address in PASV/PORT answers and expecting the data connection) when that module is loaded
// for the service's port, so without it a NAT FTP service logs in and then fails every transfer. Its ports are a
// module parameter, read once at load: other ports mean unloading and loading it again, which the kernel allows only
// while no connection is bound to it (each FTP control connection holds a reference to the module).

const ftpModule = "ip_vs_ftp"

// Modules reads loaded kernel modules and unloads one; SysModules is the director's, tests pass a fake.
type Modules interface {
	// Param reads a parameter of a loaded module; loaded is false when the module is not loaded.
	Param(module, name string) (value string, loaded bool, err error)
	// Refs is the module's reference count (for ip_vs_ftp: the FTP control connections using it).
	Refs(module string) (int, error)
	// Unload removes a module without waiting: an error matching syscall.EWOULDBLOCK while it is in use.
	Unload(module string) error
}

// SysModules reads /sys/module (dir) and unloads with delete_module(2).
type SysModules struct{ Dir string }

func (m SysModules) Param(module, name string) (string, bool, error) {
	if _, err := os.Stat(filepath.Join(m.Dir, module)); errors.Is(err, os.ErrNotExist) {
		return "", false, nil
	}
	b, err := os.ReadFile(filepath.Join(m.Dir, module, "parameters", name))
	return strings.TrimSpace(string(b)), true, err
}

func (m SysModules) Refs(module string) (int, error) {
	b, err := os.ReadFile(filepath.Join(m.Dir, module, "refcnt"))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

func (m SysModules) Unload(module string) error { return unloadModule(module) }

// ftpNow is ip_vs_ftp as loaded: its ports, nil when it is not loaded.
func (e *Engine) ftpNow() ([]uint16, *protocol.Error) {
	v, loaded, err := e.Modules.Param(ftpModule, "ports")
	if err != nil {
		return nil, kernelError("reading the ports ip_vs_ftp is loaded with", err, false)
	}
	if !loaded {
		return nil, nil
	}
	ports, err := parseFTPPorts(v)
	if err != nil {
		return nil, kernelError("reading the ports ip_vs_ftp is loaded with", err, false)
	}
	return ports, nil
}

// parseFTPPorts reads the module's ports parameter ("21,2121"); a 0 is an unused slot of the array.
func parseFTPPorts(v string) ([]uint16, error) {
	ports := []uint16{}
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.ParseUint(strings.TrimSpace(f), 10, 16)
		if err != nil {
			return nil, fmt.Errorf("ports parameter %q is not a list of ports", v)
		}
		if n != 0 {
			ports = append(ports, uint16(n))
		}
	}
	return ports, nil
}

// sameFTPPorts: the module serves the same ports (their order does not matter to it).
func sameFTPPorts(a, b []uint16) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

// applyFTP loads ip_vs_ftp with want's ports; when want drops the item rec managed, it puts the module back as it
// was found (not loaded, or loaded with the recorded ports).
func (e *Engine) applyFTP(rec settingsRecord, want protocol.Settings, now []uint16) (bool, *protocol.Error) {
	target, why := want.FTP, "ftp.ports changed"
	if target == nil {
		if rec.applied.FTP == nil {
			return false, nil
		}
		target, why = rec.original.FTP, "the stack no longer sets ftp, so ip_vs_ftp goes back to how it was found"
	}
	if len(target) == 0 && now == nil || len(target) > 0 && now != nil && sameFTPPorts(now, target) {
		return false, nil
	}
	if now != nil {
		if perr := e.unloadFTP(now, target, why); perr != nil {
			return false, perr
		}
	}
	if len(target) == 0 {
		return true, nil
	}
	doing := "loading ip_vs_ftp with ports " + protocol.FTPPortList(target)
	if e.modprobe == nil {
		return now != nil, &protocol.Error{Code: protocol.CodeUnsupported, Message: doing + " failed: modprobe is not installed on this director."}
	}
	if err := e.modprobe(ftpModule, "ports="+protocol.FTPPortList(target)); err != nil {
		pe := &protocol.Error{Code: protocol.CodeUnsupported, Message: fmt.Sprintf("%s failed: %v.", doing, err)}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			pe.Code = protocol.CodeTimeout
		}
		return now != nil, pe
	}
	return true, nil
}

// unloadFTP unloads ip_vs_ftp (loaded with ports now) on the way to target; refused while a connection uses it.
func (e *Engine) unloadFTP(now, target []uint16, why string) *protocol.Error {
	err := e.Modules.Unload(ftpModule)
	if err == nil || errors.Is(err, syscall.ENOENT) {
		return nil
	}
	if !errors.Is(err, syscall.EWOULDBLOCK) {
		return kernelError("unloading ip_vs_ftp", err, false)
	}
	users := "connections use it"
	if n, rerr := e.Modules.Refs(ftpModule); rerr == nil {
		users = fmt.Sprintf("%d connection(s) use it", n)
	}
	return &protocol.Error{Code: protocol.CodeInvalid, Errno: int(syscall.EBUSY), Message: fmt.Sprintf(
		"%s: going from %s to %s needs ip_vs_ftp unloaded, and %s now (IPVS connection entries to the FTP ports, "+
			"closed ones until they expire, TIME_WAIT 2 minutes: ipvsadm -Lnc lists them); the kernel cannot change the ports "+
			"of a module in use. Retry once those connections have ended, or keep ftp.ports as it was.",
		why, protocol.DescribeFTP(now), protocol.DescribeFTP(target), users)}
}
