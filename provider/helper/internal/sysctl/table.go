// Package sysctl is the table of kernel settings DirectorSettings may manage (every net.ipv4.vs.* variable of
// Documentation/networking/ipvs-sysctl.rst plus IP forwarding), their values and their files under /proc/sys.
// It is pure: no IPVS engine code, no ledger.
package sysctl

import "sort"

// Kind is the shape of a setting's value.
type Kind string

const (
	KindInt     Kind = "int"     // one integer
	KindPair    Kind = "pair"    // two integers, [threshold, period] (sync_threshold)
	KindCPUList Kind = "cpulist" // a cpulist string, "0-3,8" (est_cpulist)
)

// Setting is one sysctl and the values the helper lets a stack set. Min/Max bound an int, each element of a pair,
// and the CPU numbers of a cpulist. The ranges are what the kernel accepts and gives a meaning to; where the kernel
// takes any int (proc_dointvec) they are the documented ones, so a value the kernel would silently treat like
// another is refused instead.
type Setting struct {
	Name string `json:"name"`
	Kind Kind   `json:"kind"`
	Min  int64  `json:"min"`
	Max  int64  `json:"max"`
	// PowerOfTwo: the value must also be a power of two (sync_ports; the kernel returns EINVAL otherwise).
	PowerOfTwo bool `json:"powerOfTwo,omitempty"`
	// Defense: a defense mode 0..3 whose automatic modes 1 and 2 are one setting: the kernel itself switches
	// between them by available memory, so they compare equal.
	Defense bool `json:"defense,omitempty"`
	// Module is the kernel module that registers the file when it is not ip_vs itself (the lblc/lblcr schedulers).
	Module string `json:"-"`
	// Config is the kernel build option the file needs, for the message when it is absent.
	Config string `json:"-"`
}

const (
	maxInt = 1<<31 - 1
	// maxJiffySeconds bounds proc_dointvec_jiffies values: the kernel refuses more than INT_MAX/HZ seconds,
	// and HZ is at most 1000.
	maxJiffySeconds = maxInt / 1000
	// maxSafeInt is the largest integer a JSON number carries exactly to and from the provider (2^53-1).
	maxSafeInt = 1<<53 - 1
	// maxCPU is the highest CPU number a cpulist may name (NR_CPUS is at most 8192).
	maxCPU = 8191
)

func onOff(name string) Setting { return Setting{Name: name, Kind: KindInt, Min: 0, Max: 1} }

func vs(s Setting) Setting { s.Name = "net.ipv4.vs." + s.Name; return s }

var table = func() map[string]Setting {
	list := []Setting{
		vs(Setting{Name: "am_droprate", Kind: KindInt, Min: 0, Max: maxInt}),
		vs(Setting{Name: "amemthresh", Kind: KindInt, Min: 0, Max: maxInt}),
		vs(onOff("backup_only")),
		vs(onOff("cache_bypass")),
		vs(Setting{Name: "conn_reuse_mode", Kind: KindInt, Min: 0, Max: 3}), // bitmap of bits 1 and 2
		vs(Setting{Name: "conntrack", Kind: KindInt, Min: 0, Max: 1, Config: "CONFIG_IP_VS_NFCT"}),
		vs(Setting{Name: "debug_level", Kind: KindInt, Min: 0, Max: 12, Config: "CONFIG_IP_VS_DEBUG"}), // 12 or more: all
		vs(Setting{Name: "drop_entry", Kind: KindInt, Min: 0, Max: 3, Defense: true}),
		vs(Setting{Name: "drop_packet", Kind: KindInt, Min: 0, Max: 3, Defense: true}),
		vs(Setting{Name: "est_cpulist", Kind: KindCPUList, Min: 0, Max: maxCPU}),
		vs(Setting{Name: "est_nice", Kind: KindInt, Min: -20, Max: 19}),
		vs(onOff("expire_nodest_conn")),
		vs(onOff("expire_quiescent_template")),
		vs(onOff("ignore_tunneled")),
		vs(Setting{Name: "lblc_expiration", Kind: KindInt, Min: 0, Max: maxJiffySeconds, Module: "ip_vs_lblc"}),
		vs(Setting{Name: "lblcr_expiration", Kind: KindInt, Min: 0, Max: maxJiffySeconds, Module: "ip_vs_lblcr"}),
		vs(onOff("nat_icmp_send")),
		vs(onOff("pmtu_disc")),
		vs(onOff("run_estimation")),
		vs(onOff("schedule_icmp")),
		vs(Setting{Name: "secure_tcp", Kind: KindInt, Min: 0, Max: 3, Defense: true}),
		vs(onOff("sloppy_sctp")),
		vs(onOff("sloppy_tcp")),
		vs(onOff("snat_reroute")),
		vs(Setting{Name: "sync_persist_mode", Kind: KindInt, Min: 0, Max: 1}),
		// More than 64 (IPVS_SYNC_PORTS_MAX) is accepted by the file but never used by the sync threads.
		vs(Setting{Name: "sync_ports", Kind: KindInt, Min: 1, Max: 64, PowerOfTwo: true}),
		vs(Setting{Name: "sync_qlen_max", Kind: KindInt, Min: 0, Max: maxSafeInt}), // unsigned long
		vs(Setting{Name: "sync_refresh_period", Kind: KindInt, Min: 0, Max: maxJiffySeconds}),
		vs(Setting{Name: "sync_retries", Kind: KindInt, Min: 0, Max: 3}),
		vs(Setting{Name: "sync_sock_size", Kind: KindInt, Min: 0, Max: maxInt}), // 0 keeps the system's default
		vs(Setting{Name: "sync_threshold", Kind: KindPair, Min: 0, Max: maxInt}),
		vs(Setting{Name: "sync_version", Kind: KindInt, Min: 0, Max: 1}),
		onOff("net.ipv4.ip_forward"),
		onOff("net.ipv6.conf.all.forwarding"),
	}
	m := make(map[string]Setting, len(list))
	for _, s := range list {
		m[s.Name] = s
	}
	return m
}()

// Lookup finds a setting by its full name ("net.ipv4.vs.conn_reuse_mode").
func Lookup(name string) (Setting, bool) {
	s, ok := table[name]
	return s, ok
}

// All lists every setting, sorted by name.
func All() []Setting {
	out := make([]Setting, 0, len(table))
	for _, s := range table {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
