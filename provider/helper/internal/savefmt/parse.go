package savefmt

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
)

// DestRule is a parsed -a line. Thresholds are not part of the save format: HasUThresh/HasLThresh say whether
// the line gave them (-x/-y), so a restore can keep the current ones otherwise.
type DestRule struct {
	Dest                   ipvs.Dest
	HasUThresh, HasLThresh bool
}

// ServiceRule is a parsed -A line with the -a lines that follow it anywhere in the input.
type ServiceRule struct {
	Service ipvs.Service
	Dests   []DestRule
}

// Parse reads `ipvsadm -Sn` output and the -A/-a lines ipvsadm-restore accepts ('#' comments, blank lines).
// Every entry is checked against ipvsadm's rules; the first problem is returned with its line number.
func Parse(r io.Reader, k ipvs.KernelVersion) ([]ServiceRule, error) {
	var out []ServiceRule
	index := map[ipvs.ServiceKey]int{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fail := func(err error) error { return fmt.Errorf("line %d (%s): %w", n, line, err) }
		l, err := parseLine(strings.Fields(line))
		if err != nil {
			return nil, fail(err)
		}
		if l.add {
			s, err := l.service()
			if err != nil {
				return nil, fail(err)
			}
			if err := ipvs.ValidateService(s, k); err != nil {
				return nil, fail(err)
			}
			if _, dup := index[s.ServiceKey]; dup {
				return nil, fail(fmt.Errorf("%s is defined twice", s.ServiceKey))
			}
			index[s.ServiceKey] = len(out)
			out = append(out, ServiceRule{Service: s})
			continue
		}
		i, ok := index[l.key]
		if !ok {
			return nil, fail(fmt.Errorf("%s is not defined by an earlier -A line", l.key))
		}
		dr, err := l.dest(out[i].Service.ServiceKey)
		if err != nil {
			return nil, fail(err)
		}
		if err := ipvs.ValidateDest(l.key, dr.Dest, k); err != nil {
			return nil, fail(err)
		}
		for _, o := range out[i].Dests {
			if o.Dest.DestKey == dr.Dest.DestKey {
				return nil, fail(fmt.Errorf("%s is listed twice", dr.Dest.DestKey))
			}
		}
		out[i].Dests = append(out[i].Dests, dr)
	}
	return out, sc.Err()
}

// line holds the options of one -A or -a line before they become entries.
type line struct {
	add      bool // -A (else -a)
	key      ipvs.ServiceKey
	v6       bool
	opts     map[string]string
	order    []string
	hostPort string // of the service selector
}

// option spellings: short and long name → canonical name, and whether it takes a value.
var options = map[string]struct {
	name  string
	value int // 0 none, 1 required, 2 optional (-p)
}{
	"-A": {"A", 0}, "--add-service": {"A", 0}, "-a": {"a", 0}, "--add-server": {"a", 0},
	"-t": {"t", 1}, "--tcp-service": {"t", 1}, "-u": {"u", 1}, "--udp-service": {"u", 1},
	"--sctp-service": {"sctp", 1}, "-f": {"f", 1}, "--fwmark-service": {"f", 1}, "-6": {"6", 0}, "--ipv6": {"6", 0},
	"-s": {"s", 1}, "--scheduler": {"s", 1}, "-p": {"p", 2}, "--persistent": {"p", 2},
	"-M": {"M", 1}, "--netmask": {"M", 1}, "--pe": {"pe", 1}, "-o": {"o", 0}, "--ops": {"o", 0},
	"-b": {"b", 1}, "--sched-flags": {"b", 1}, "-r": {"r", 1}, "--real-server": {"r", 1},
	"-g": {"fwd", 0}, "--gatewaying": {"fwd", 0}, "-i": {"fwd", 0}, "--ipip": {"fwd", 0},
	"-m": {"fwd", 0}, "--masquerading": {"fwd", 0}, "-w": {"w", 1}, "--weight": {"w", 1},
	"-x": {"x", 1}, "--u-threshold": {"x", 1}, "-y": {"y", 1}, "--l-threshold": {"y", 1},
	"--tun-type": {"tun-type", 1}, "--tun-port": {"tun-port", 1},
	"--tun-nocsum": {"csum", 0}, "--tun-csum": {"csum", 0}, "--tun-remcsum": {"csum", 0},
}

func parseLine(tok []string) (*line, error) {
	l := &line{opts: map[string]string{}}
	for i := 0; i < len(tok); i++ {
		t, val, hasEq := strings.Cut(tok[i], "=")
		o, ok := options[t]
		if !ok {
			return nil, fmt.Errorf("unknown or unsupported option %q", tok[i])
		}
		if _, dup := l.opts[o.name]; dup {
			return nil, fmt.Errorf("option %q given twice", t)
		}
		switch {
		case o.value == 0 && hasEq:
			return nil, fmt.Errorf("option %q takes no value", t)
		case o.value == 0 && (o.name == "fwd" || o.name == "csum"):
			val = t
		case o.value == 1 && !hasEq:
			if i+1 >= len(tok) {
				return nil, fmt.Errorf("option %q needs a value", t)
			}
			i++
			val = tok[i]
		case o.value == 2 && !hasEq:
			// -p takes an optional number; ipvsadm's default is 360 seconds.
			val = "360"
			if i+1 < len(tok) && !strings.HasPrefix(tok[i+1], "-") {
				i++
				val = tok[i]
			}
		}
		l.opts[o.name] = val
		l.order = append(l.order, o.name)
	}
	_, isA := l.opts["A"]
	_, isa := l.opts["a"]
	if isA == isa {
		return nil, fmt.Errorf("a line must be one -A (add service) or one -a (add real server)")
	}
	l.add = isA
	_, l.v6 = l.opts["6"]
	selectors := 0
	for _, p := range []struct {
		opt   string
		proto uint16
	}{{"t", ipvs.ProtoTCP}, {"u", ipvs.ProtoUDP}, {"sctp", ipvs.ProtoSCTP}} {
		if v, ok := l.opts[p.opt]; ok {
			selectors++
			a, port, _, err := splitHostPort(v, ipvs.ServicePortRange)
			if err != nil {
				return nil, fmt.Errorf("service %s: %w", v, err)
			}
			l.key = ipvs.ServiceKey{AF: afOf(a), Protocol: p.proto, Addr: a, Port: port}
		}
	}
	if v, ok := l.opts["f"]; ok {
		selectors++
		// Negative marks are how ipvsadm -S writes marks above 2^31-1: read them back as the same 32 bits.
		m, err := strconv.ParseInt(v, 10, 64)
		if err != nil || m == 0 || m < math.MinInt32 || m > ipvs.FWMarkRange.Max {
			return nil, fmt.Errorf("%s %q must be %d..%d", ipvs.FWMarkRange.What, v, ipvs.FWMarkRange.Min, ipvs.FWMarkRange.Max)
		}
		l.key = ipvs.ServiceKey{AF: ipvs.AFInet, FWMark: uint32(m)}
		if l.v6 {
			l.key.AF = ipvs.AFInet6
		}
	} else if l.v6 && selectors == 1 && l.key.AF != ipvs.AFInet6 {
		return nil, fmt.Errorf("-6 with an IPv4 service address")
	}
	if selectors != 1 {
		return nil, fmt.Errorf("a line needs exactly one service (-t, -u, --sctp-service or -f)")
	}
	allowed := "A t u sctp f 6 s p M pe o b"
	if !l.add {
		allowed = "a t u sctp f 6 r fwd w x y tun-type tun-port csum"
	}
	for _, name := range l.order {
		if !strings.Contains(" "+allowed+" ", " "+name+" ") {
			return nil, fmt.Errorf("option %s does not belong on a %s line", name, map[bool]string{true: "-A", false: "-a"}[l.add])
		}
	}
	return l, nil
}

func afOf(a netip.Addr) uint16 {
	if a.Is4() {
		return ipvs.AFInet
	}
	return ipvs.AFInet6
}

// splitHostPort reads "1.2.3.4:80", "[2001:db8::1]:80" or (optional port) "1.2.3.4", "[2001:db8::1]". Numeric only;
// the port within r (ipvs/fields.go).
func splitHostPort(s string, r ipvs.Range) (netip.Addr, uint16, bool, error) {
	host, port := s, ""
	if strings.HasPrefix(s, "[") {
		end := strings.Index(s, "]")
		if end < 0 {
			return netip.Addr{}, 0, false, fmt.Errorf("missing ']'")
		}
		host, port = s[1:end], strings.TrimPrefix(s[end+1:], ":")
		if rest := s[end+1:]; rest != "" && !strings.HasPrefix(rest, ":") {
			return netip.Addr{}, 0, false, fmt.Errorf("unexpected %q after the address", rest)
		}
	} else if i := strings.LastIndex(s, ":"); i >= 0 {
		host, port = s[:i], s[i+1:]
	}
	a, err := netip.ParseAddr(host)
	if err != nil || a.Zone() != "" || a.Is4In6() {
		return netip.Addr{}, 0, false, fmt.Errorf("%q is not a numeric IP address", host)
	}
	if port == "" {
		return a, 0, false, nil
	}
	p, err := strconv.ParseUint(port, 10, 32)
	if err != nil || !r.In(int64(p)) {
		return netip.Addr{}, 0, false, fmt.Errorf("port %q must be %d..%d", port, r.Min, r.Max)
	}
	return a, uint16(p), true, nil
}

// uintOpt reads a number option within r's upper bound (ipvs/fields.go); lower bounds are the rule checks'
// (ipvs.ValidateService), which name the field's whole range.
func uintOpt(l *line, name string, r ipvs.Range) (uint32, bool, error) {
	v, ok := l.opts[name]
	if !ok {
		return 0, false, nil
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil || n > uint64(r.Max) {
		return 0, true, fmt.Errorf("%s %q must be 0..%d", r.What, v, r.Max)
	}
	return uint32(n), true, nil
}

func (l *line) service() (ipvs.Service, error) {
	s := ipvs.Service{ServiceKey: l.key, ServiceSettings: ipvs.DefaultService(l.key.AF)}
	if v, ok := l.opts["s"]; ok {
		s.Sched = v
	}
	if t, ok, err := uintOpt(l, "p", ipvs.PersistenceRange); err != nil {
		return s, err
	} else if ok {
		s.Flags |= ipvs.FlagPersistent
		s.Timeout = t
	}
	if v, ok := l.opts["M"]; ok {
		m, err := ipvs.ParseNetmask(l.key.AF, v)
		if err != nil {
			return s, err
		}
		s.Netmask = m
	}
	s.PE = l.opts["pe"]
	if _, ok := l.opts["o"]; ok {
		s.Flags |= ipvs.FlagOnePacket
	}
	if v, ok := l.opts["b"]; ok {
		f, err := ipvs.SchedFlagsFromNames(s.Sched, strings.Split(v, ","))
		if err != nil {
			return s, err
		}
		s.Flags |= f
	}
	return s, nil
}

func (l *line) dest(svc ipvs.ServiceKey) (DestRule, error) {
	var dr DestRule
	v, ok := l.opts["r"]
	if !ok {
		return dr, fmt.Errorf("an -a line needs -r ADDRESS[:PORT]")
	}
	a, port, hasPort, err := splitHostPort(v, ipvs.DestPortRange)
	if err != nil {
		return dr, fmt.Errorf("real server %s: %w", v, err)
	}
	if !hasPort {
		port = svc.Port // ipvsadm: no port given = the service port
	}
	d := ipvs.Dest{DestKey: ipvs.DestKey{AF: afOf(a), Addr: a, Port: port}, DestSettings: ipvs.DefaultDest}
	switch l.opts["fwd"] {
	case "-m", "--masquerading":
		d.Fwd = ipvs.FwdMasq
	case "-i", "--ipip":
		d.Fwd = ipvs.FwdTunnel
	}
	if !svc.IsFWMark() && d.Fwd != ipvs.FwdMasq {
		d.Port = svc.Port // what ipvsadm does for dr and tunnel
	}
	if w, ok, err := uintOpt(l, "w", ipvs.WeightRange); err != nil {
		return dr, err
	} else if ok {
		d.Weight = w
	}
	if d.UThresh, dr.HasUThresh, err = uintOpt(l, "x", ipvs.UThreshRange); err != nil {
		return dr, err
	}
	if d.LThresh, dr.HasLThresh, err = uintOpt(l, "y", ipvs.LThreshRange); err != nil {
		return dr, err
	}
	if t, ok := l.opts["tun-type"]; ok {
		if d.TunType, ok = ipvs.TunnelTypes.Num(t); !ok {
			return dr, fmt.Errorf("tunnel type %q must be %s", t, ipvs.TunnelTypes.OneOf())
		}
	}
	if p, ok, err := uintOpt(l, "tun-port", ipvs.TunnelPortRange); err != nil {
		return dr, err
	} else if ok {
		d.TunPort = uint16(p)
	}
	switch l.opts["csum"] {
	case "--tun-csum":
		d.TunFlags = ipvs.TunCsum
	case "--tun-remcsum":
		d.TunFlags = ipvs.TunRemCsum
	}
	dr.Dest = d
	return dr, nil
}
