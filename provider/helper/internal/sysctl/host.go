package sysctl

// The settings a RealServerHost manages on a real server's host (issue 28). They are not in the table above: a
// stack's DirectorSettings must not set them, and they are written only by ensureHost, with the values it chooses.
var hostTable = map[string]Setting{
	// 0..8 as ip-sysctl.rst documents (4-7 reserved); the kernel applies the larger of all and the interface's.
	"net.ipv4.conf.all.arp_ignore": {Name: "net.ipv4.conf.all.arp_ignore", Kind: KindInt, Min: 0, Max: 8},
	// 0..2; the kernel applies the larger of all and the interface's.
	"net.ipv4.conf.all.arp_announce": {Name: "net.ipv4.conf.all.arp_announce", Kind: KindInt, Min: 0, Max: 2},
	// 0 off, 1 strict, 2 loose; the kernel applies the larger of all and the interface's. tunl0 is ipip's device, gre0 gre's.
	"net.ipv4.conf.all.rp_filter":   {Name: "net.ipv4.conf.all.rp_filter", Kind: KindInt, Min: 0, Max: 2},
	"net.ipv4.conf.tunl0.rp_filter": {Name: "net.ipv4.conf.tunl0.rp_filter", Kind: KindInt, Min: 0, Max: 2},
	"net.ipv4.conf.gre0.rp_filter":  {Name: "net.ipv4.conf.gre0.rp_filter", Kind: KindInt, Min: 0, Max: 2},
}

// HostSetting finds a setting RealServerHost manages by its full name.
func HostSetting(name string) (Setting, bool) {
	s, ok := hostTable[name]
	return s, ok
}
