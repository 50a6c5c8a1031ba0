// Package managers tells whether another manager runs a virtual address: kube-proxy in IPVS mode (the address is
// on its kube-ipvs0 dummy interface) or a running keepalived whose configuration declares the virtual server.
// pulumi-ipvs refuses to adopt such entries: the other manager would fight over them.
package managers

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
)

// Where the facts come from; tests point them at fixtures (package variables, never flags or environment).
var (
	// ProcRoot is the proc filesystem (processes' comm, cmdline, status and exe).
	ProcRoot = "/proc"
	// FSRoot prefixes the paths keepalived reads (its configuration and includes).
	FSRoot = "/"
	// InterfaceAddrs lists the addresses of a network interface (none, no error, when it does not exist).
	InterfaceAddrs = interfaceAddrs
	// TrustedUID is the uid a keepalived process and its executable must have (root; tests use their own).
	TrustedUID = 0
)

// The helper reads keepalived's configuration as root, under the ledger's lock: what it reads is bounded so that
// nothing a local user can name makes it block or run out of memory.
const (
	// maxConfBytes is read of each configuration file at most (keepalived's own are a few KiB).
	maxConfBytes = 1 << 20
	// maxConfFiles bounds the files one scan reads, includes of every running keepalived together.
	maxConfFiles = 64
)

// KubeInterface is the dummy interface kube-proxy's IPVS mode puts every service address on.
const KubeInterface = "kube-ipvs0"

// DefaultKeepalivedConf is keepalived's configuration when it is started without -f.
const DefaultKeepalivedConf = "/etc/keepalived/keepalived.conf"

func interfaceAddrs(name string) ([]netip.Addr, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return nil, nil // no such interface
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return nil, fmt.Errorf("reading the addresses of interface %s: %v", name, err)
	}
	var out []netip.Addr
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok {
				out = append(out, ip.Unmap())
			}
		}
	}
	return out, nil
}

// vs is a virtual server a keepalived configuration declares: an address and port (protocol not compared: a
// keepalived virtual_server with another protocol still owns the address), or a fwmark.
type vs struct {
	addr   netip.Addr
	port   uint16
	fwmark uint32
}

// Snapshot is what the other managers run, read once per request.
type Snapshot struct {
	kube       map[netip.Addr]bool
	keepalived map[vs]string // → the file that declares it
	// vrrp: the addresses a vrrp_instance moves (virtual_ipaddress, virtual_ipaddress_excluded) → "vrrp_instance
	// NAME in FILE".
	vrrp map[netip.Addr]string
}

// Scan reads kube-ipvs0's addresses and every running keepalived's configuration, giving up at deadline: it runs
// under the ledger's lock, and a file on a hung filesystem must not hold that lock for the request's whole life.
func Scan(deadline time.Time) (*Snapshot, error) {
	type answer struct {
		s   *Snapshot
		err error
	}
	var reading atomic.Pointer[string] // what the scan reads now
	kube := "the addresses of interface " + KubeInterface
	reading.Store(&kube)
	done := make(chan answer, 1)
	// A scan stuck in a read is left behind (the helper answers and goes on; nothing waits for it).
	go func() {
		s, err := scan(&reading)
		done <- answer{s, err}
	}()
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case a := <-done:
		return a.s, a.err
	case <-t.C:
		return nil, fmt.Errorf("the scan for kube-proxy and keepalived did not finish in time (it was reading %s)", *reading.Load())
	}
}

func scan(reading *atomic.Pointer[string]) (*Snapshot, error) {
	s := &Snapshot{kube: map[netip.Addr]bool{}, keepalived: map[vs]string{}, vrrp: map[netip.Addr]string{}}
	addrs, err := InterfaceAddrs(KubeInterface)
	if err != nil {
		return nil, err
	}
	for _, a := range addrs {
		s.kube[a] = true
	}
	procs := "the processes in " + ProcRoot
	reading.Store(&procs)
	confs, err := keepalivedConfigs()
	if err != nil {
		return nil, err
	}
	p := &parser{seen: map[string]bool{}, out: s.keepalived, vrrp: s.vrrp, reading: reading}
	for _, c := range confs {
		if err := p.file(c, 0); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Manager names the manager of a service's virtual address, "" when none.
func (s *Snapshot) Manager(k ipvs.ServiceKey) string {
	if k.IsFWMark() {
		if f, ok := s.keepalived[vs{fwmark: k.FWMark}]; ok {
			return fmt.Sprintf("keepalived (its configuration %s declares virtual_server fwmark %d)", f, k.FWMark)
		}
		return ""
	}
	if s.kube[k.Addr] {
		return fmt.Sprintf("kube-proxy (%s is an address of interface %s)", k.Addr, KubeInterface)
	}
	if f, ok := s.keepalived[vs{addr: k.Addr, port: k.Port}]; ok {
		return fmt.Sprintf("keepalived (its configuration %s declares virtual_server %s %d)", f, k.Addr, k.Port)
	}
	return ""
}

// AddressManager names who else puts address a on this director's interfaces ("" when nobody): kube-proxy (on
// kube-ipvs0) or a running keepalived's vrrp_instance, which adds and removes it as VRRP decides.
func (s *Snapshot) AddressManager(a netip.Addr) string {
	if s.kube[a] {
		return fmt.Sprintf("kube-proxy (%s is an address of interface %s)", a, KubeInterface)
	}
	if where, ok := s.vrrp[a]; ok {
		return fmt.Sprintf("keepalived (%s is a virtual_ipaddress of %s)", a, where)
	}
	return ""
}

// keepalivedConfigs lists the configuration file of every running keepalived process.
func keepalivedConfigs() ([]string, error) {
	ents, err := os.ReadDir(ProcRoot)
	if err != nil {
		return nil, fmt.Errorf("listing processes in %s: %v", ProcRoot, err)
	}
	seen := map[string]bool{}
	var out []string
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		dir := filepath.Join(ProcRoot, e.Name())
		comm, err := os.ReadFile(filepath.Join(dir, "comm"))
		if err != nil || strings.TrimSpace(string(comm)) != "keepalived" || !trustedProcess(dir) {
			continue // gone meanwhile, another program, or one any user may have started under that name
		}
		cmdline, err := os.ReadFile(filepath.Join(dir, "cmdline"))
		if err != nil {
			continue
		}
		conf := configArg(strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00"))
		if !seen[conf] {
			seen[conf] = true
			out = append(out, conf)
		}
	}
	return out, nil
}

// trustedProcess tells whether the process in dir (/proc/PID) is root's running a root-owned executable: any user
// can start a program named keepalived, and the helper must not read as root whatever that one names with -f.
// Every uid of /proc/PID/status counts (the directory's owner turns root for a process that made itself
// non-dumpable), and the executable, which /proc/PID/exe links to, is root's and not writable by others.
func trustedProcess(dir string) bool {
	status, err := os.ReadFile(filepath.Join(dir, "status"))
	if err != nil {
		return false
	}
	uidsOK := false
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
			ids := strings.Fields(rest)
			uidsOK = len(ids) > 0
			for _, id := range ids {
				uidsOK = uidsOK && id == strconv.Itoa(TrustedUID)
			}
		}
	}
	if !uidsOK {
		return false
	}
	fi, err := os.Stat(filepath.Join(dir, "exe"))
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == TrustedUID && fi.Mode().IsRegular() && fi.Mode().Perm()&0o022 == 0
}

// configArg is keepalived's -f/--use-file argument, or its default configuration.
func configArg(argv []string) string {
	for i := 1; i < len(argv); i++ {
		a := argv[i]
		switch {
		case (a == "-f" || a == "--use-file") && i+1 < len(argv):
			return argv[i+1]
		case strings.HasPrefix(a, "--use-file="):
			return strings.TrimPrefix(a, "--use-file=")
		case strings.HasPrefix(a, "-f") && len(a) > 2:
			return a[2:]
		}
	}
	return DefaultKeepalivedConf
}

// maxIncludeDepth bounds include nesting (keepalived itself allows a few levels).
const maxIncludeDepth = 8

type parser struct {
	seen    map[string]bool
	out     map[vs]string
	vrrp    map[netip.Addr]string
	reading *atomic.Pointer[string] // the file being read, for Scan's message when it runs out of time
}

// file reads one configuration file (path as keepalived sees it) and the files it includes.
func (p *parser) file(path string, depth int) error {
	if depth > maxIncludeDepth || p.seen[path] {
		return nil
	}
	if len(p.seen) >= maxConfFiles {
		return fmt.Errorf("keepalived's configuration includes more than %d files (at %s); this helper reads no more", maxConfFiles, path)
	}
	p.seen[path] = true
	p.reading.Store(&path)
	b, err := readConf(filepath.Join(FSRoot, path))
	if os.IsNotExist(err) {
		return nil // keepalived runs without it (a missing include is skipped too): it declares nothing there
	}
	if err != nil {
		return fmt.Errorf("reading keepalived's configuration %s: %v", path, err)
	}
	toks := tokens(string(b))
	groups := map[string][]vs{}
	var groupRefs []string
	for i := 0; i < len(toks); i++ {
		switch toks[i] {
		case "include":
			if i+1 < len(toks) {
				pattern := toks[i+1]
				if !filepath.IsAbs(pattern) {
					pattern = filepath.Join(filepath.Dir(path), pattern)
				}
				matches, _ := filepath.Glob(filepath.Join(FSRoot, pattern))
				for _, m := range matches {
					rel, _ := filepath.Rel(FSRoot, m)
					if err := p.file("/"+rel, depth+1); err != nil {
						return err
					}
				}
				i++
			}
		case "virtual_server":
			switch {
			case i+2 < len(toks) && toks[i+1] == "fwmark":
				if n, err := strconv.ParseUint(toks[i+2], 10, 32); err == nil {
					p.out[vs{fwmark: uint32(n)}] = path
				}
			case i+2 < len(toks) && toks[i+1] == "group":
				groupRefs = append(groupRefs, toks[i+2])
			case i+2 < len(toks):
				for _, v := range addrPort(toks[i+1], toks[i+2]) {
					p.out[v] = path
				}
			}
		case "vrrp_instance":
			if i+2 < len(toks) && toks[i+2] == "{" {
				i = p.vrrpInstance(toks, i+3, toks[i+1], path)
			}
		case "virtual_server_group":
			if i+2 < len(toks) && toks[i+2] == "{" {
				name := toks[i+1]
				j := i + 3
				for ; j < len(toks) && toks[j] != "}"; j++ {
					if toks[j] == "fwmark" && j+1 < len(toks) {
						if n, err := strconv.ParseUint(toks[j+1], 10, 32); err == nil {
							groups[name] = append(groups[name], vs{fwmark: uint32(n)})
						}
						j++
					} else if j+1 < len(toks) {
						if list := addrPort(toks[j], toks[j+1]); list != nil {
							groups[name] = append(groups[name], list...)
							j++
						}
					}
				}
				i = j
			}
		}
	}
	// A group used by a virtual_server declares its members (the group may be defined in any order).
	for _, g := range groupRefs {
		for _, v := range groups[g] {
			p.out[v] = path
		}
	}
	return nil
}

// vrrpInstance reads the body of vrrp_instance name from toks[i] (after its "{") to its closing brace, recording
// the addresses of its virtual_ipaddress blocks; it returns the index of that brace.
func (p *parser) vrrpInstance(toks []string, i int, name, path string) int {
	depth := 1
	for ; i < len(toks) && depth > 0; i++ {
		switch toks[i] {
		case "{":
			depth++
		case "}":
			depth--
		case "virtual_ipaddress", "virtual_ipaddress_excluded":
			if depth != 1 || i+1 >= len(toks) || toks[i+1] != "{" {
				continue
			}
			// Each line is "ADDR[/LEN] [brd X] [dev IF] [scope S] [label L] …": every word that is an address,
			// except the broadcast address after brd, is one the instance moves.
			for i += 2; i < len(toks) && toks[i] != "}"; i++ {
				if toks[i] == "brd" || toks[i] == "peer" {
					i++
					continue
				}
				addr, _, _ := strings.Cut(toks[i], "/")
				if a, err := netip.ParseAddr(addr); err == nil {
					p.vrrp[a.Unmap()] = fmt.Sprintf("vrrp_instance %s in %s", name, path)
				}
			}
		}
	}
	return i - 1
}

// readConf reads a configuration file without following a symlink in its last component or blocking on a FIFO or
// device, and only when it is a regular file of at most maxConfBytes.
func readConf(path string) ([]byte, error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("it is not a regular file (%s); the helper does not read it", fi.Mode().Type())
	}
	if fi.Size() > maxConfBytes {
		return nil, fmt.Errorf("it is %d bytes, more than the %d this helper reads", fi.Size(), maxConfBytes)
	}
	// The size may grow after the fstat: read one byte past the bound to tell.
	b, err := io.ReadAll(io.LimitReader(f, maxConfBytes+1))
	if err == nil && len(b) > maxConfBytes {
		err = fmt.Errorf("it grew past the %d bytes this helper reads", maxConfBytes)
	}
	return b, err
}

// addrPort reads "ADDR PORT" or keepalived's range form "A.B.C.D-E PORT" (the last byte up to E).
func addrPort(a, port string) []vs {
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return nil
	}
	base, last, isRange := strings.Cut(a, "-")
	ip, err := netip.ParseAddr(base)
	if err != nil {
		return nil
	}
	ip = ip.Unmap()
	if !isRange {
		return []vs{{addr: ip, port: uint16(n)}}
	}
	end, err := strconv.ParseUint(last, 16*boolInt(ip.Is6())+10*boolInt(ip.Is4()), 16)
	if err != nil {
		return nil
	}
	var out []vs
	for cur := ip; ; cur = cur.Next() {
		out = append(out, vs{addr: cur, port: uint16(n)})
		b := cur.AsSlice()
		low := uint64(b[len(b)-1])
		if ip.Is6() {
			low = uint64(b[len(b)-2])<<8 | low
		}
		if low >= end || len(out) > 65536 || !cur.Next().IsValid() {
			break
		}
	}
	return out
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// tokens splits a keepalived configuration into words and braces, without comments (# and ! to end of line).
func tokens(text string) []string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if i := strings.IndexAny(line, "#!"); i >= 0 {
			line = line[:i]
		}
		line = strings.NewReplacer("{", " { ", "}", " } ").Replace(line)
		out = append(out, strings.Fields(line)...)
	}
	return out
}
