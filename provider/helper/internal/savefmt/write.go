// Package savefmt writes and reads the `ipvsadm -Sn` text format.
package savefmt

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
)

// Sort puts a table (in kernel dump order) into ipvsadm's order, services and each service's dests.
func Sort(tbl []ipvs.ServiceDests) {
	ipvs.MergeSort(tbl, func(a, b *ipvs.ServiceDests) int { return ipvs.CmpServices(&a.Service, &b.Service) })
	for i := range tbl {
		ipvs.MergeSort(tbl[i].Dests, ipvs.CmpDests)
	}
}

// ServiceSpec is the service selector of a rule line: "-t 1.2.3.4:80", "-f 5 -6".
// ipvsadm prints the mark with %d: marks above 2^31-1 come out negative ("-f -1" for 4294967295).
func ServiceSpec(k ipvs.ServiceKey) string {
	if k.IsFWMark() {
		if k.AF == ipvs.AFInet6 {
			return fmt.Sprintf("-f %d -6", int32(k.FWMark))
		}
		return fmt.Sprintf("-f %d", int32(k.FWMark))
	}
	opt := "--xxx-service"
	switch k.Protocol {
	case ipvs.ProtoTCP:
		opt = "-t"
	case ipvs.ProtoUDP:
		opt = "-u"
	case ipvs.ProtoSCTP:
		opt = "--sctp-service"
	}
	return opt + " " + ipvs.HostPort(k.Addr, k.Port)
}

// ServiceLine is the -A line of a service, formatted like ipvsadm's print_service_entry.
func ServiceLine(s ipvs.Service) string {
	var b strings.Builder
	fmt.Fprintf(&b, "-A %s -s %s", ServiceSpec(s.ServiceKey), s.Sched)
	if s.Flags&ipvs.FlagPersistent != 0 {
		fmt.Fprintf(&b, " -p %d", s.Timeout)
		if s.Netmask != ipvs.DefaultNetmask(s.AF) {
			b.WriteString(" -M " + ipvs.NetmaskString(s.AF, s.Netmask))
		}
	}
	if s.PE != "" {
		b.WriteString(" --pe " + s.PE)
	}
	if s.Flags&ipvs.FlagOnePacket != 0 {
		b.WriteString(" -o")
	}
	if s.Flags&(ipvs.FlagSched1|ipvs.FlagSched2|ipvs.FlagSched3) != 0 {
		// ipvsadm prints "-b " even when no name applies (flag-3 under sh/mh).
		b.WriteString(" -b " + strings.Join(ipvs.SchedFlagNames(s.Sched, s.Flags), ","))
	}
	return b.String()
}

// fwdSwitch is ipvsadm's fwd_switch; it has no switch for bypass and glibc prints the NULL as "(null)".
func fwdSwitch(f uint32) string {
	switch f & ipvs.FwdMask {
	case ipvs.FwdMasq:
		return "-m"
	case ipvs.FwdTunnel:
		return "-i"
	case ipvs.FwdLocalNode, ipvs.FwdRoute:
		return "-g"
	}
	return "(null)"
}

var tunCsumOpts = []string{"--tun-nocsum", "--tun-csum", "--tun-remcsum"}

func tunCsumOpt(f uint16) string {
	if int(f) < len(tunCsumOpts) {
		return tunCsumOpts[f]
	}
	return "(null)"
}

// DestLine is the -a line of a real server, formatted like ipvsadm's print_service_entry / print_tunnel_rule.
func DestLine(k ipvs.ServiceKey, d ipvs.Dest) string {
	head := fmt.Sprintf("-a %s -r %s %s -w %d", ServiceSpec(k), ipvs.HostPort(d.Addr, d.Port), fwdSwitch(d.Fwd), int32(d.Weight))
	if d.Fwd&ipvs.FwdMask != ipvs.FwdTunnel {
		return head
	}
	switch d.TunType {
	case ipvs.TunGRE:
		return head + " --tun-type gre " + tunCsumOpt(d.TunFlags)
	case ipvs.TunGUE:
		return fmt.Sprintf("%s --tun-type gue --tun-port %d %s", head, d.TunPort, tunCsumOpt(d.TunFlags))
	case ipvs.TunIPIP:
		return head + " --tun-type ipip"
	}
	return head
}

// Write prints a table exactly as `ipvsadm -Sn` does. The table must be in kernel dump order; Write sorts a copy.
func Write(w io.Writer, tbl []ipvs.ServiceDests) error {
	sorted := make([]ipvs.ServiceDests, len(tbl))
	for i, e := range tbl {
		sorted[i] = ipvs.ServiceDests{Service: e.Service, Dests: append([]ipvs.Dest(nil), e.Dests...)}
	}
	Sort(sorted)
	bw := bufio.NewWriter(w)
	for _, e := range sorted {
		bw.WriteString(ServiceLine(e.Service))
		bw.WriteByte('\n')
		for _, d := range e.Dests {
			bw.WriteString(DestLine(e.Service.ServiceKey, d))
			bw.WriteByte('\n')
		}
	}
	return bw.Flush()
}
