// The kernel settings a DirectorSettings may manage: each input field (camelCase) with its sysctl's full name, the
// shape of its value and its range. The helper has the same table (provider/helper/internal/sysctl, printed by
// `ipvs-helper names`); test/unit/vocabulary.test.ts checks that the two agree.

/** int: one integer; pair: [threshold, period]; cpulist: a CPU list string ("0-3,8"). */
export type SysctlKind = "int" | "pair" | "cpulist";

export interface SysctlDef {
  /** The full name, as in `sysctl -n` and the helper's protocol. */
  name: string;
  kind: SysctlKind;
  /** Bounds of an int, of each element of a pair, of the CPU numbers of a cpulist. */
  min: number;
  max: number;
  /** Also a power of two (sync_ports). */
  powerOfTwo?: true;
  /** A defense mode 0..3 whose automatic modes 1 and 2 are one setting: the kernel switches between them by memory. */
  defense?: true;
  /** The input is a boolean (written 0 / 1; the kernel reads any non-zero value as on). */
  bool?: true;
}

const INT_MAX = 2147483647;
/** proc_dointvec_jiffies: at most INT_MAX/HZ seconds, and HZ is at most 1000. */
const MAX_JIFFY_SECONDS = 2147483;

// Literal kinds and `bool: true`, so that the resource's value types can be derived from the table.
const int = (sysctl: string, min: number, max: number, more: Pick<SysctlDef, "powerOfTwo" | "defense"> = {}) => ({
  name: `net.ipv4.vs.${sysctl}`, kind: "int" as const, min, max, ...more,
});
const onOff = (sysctl: string) => ({ name: `net.ipv4.vs.${sysctl}`, kind: "int" as const, min: 0, max: 1, bool: true as const });

/** The `sysctls` input fields: every net.ipv4.vs.* variable of the kernel's Documentation/networking/ipvs-sysctl.rst. */
export const SYSCTLS = {
  amDroprate: int("am_droprate", 0, INT_MAX),
  amemthresh: int("amemthresh", 0, INT_MAX),
  backupOnly: onOff("backup_only"),
  cacheBypass: onOff("cache_bypass"),
  connReuseMode: int("conn_reuse_mode", 0, 3),
  conntrack: onOff("conntrack"),
  debugLevel: int("debug_level", 0, 12),
  dropEntry: int("drop_entry", 0, 3, { defense: true }),
  dropPacket: int("drop_packet", 0, 3, { defense: true }),
  estCpulist: { name: "net.ipv4.vs.est_cpulist", kind: "cpulist", min: 0, max: 8191 },
  estNice: int("est_nice", -20, 19),
  expireNodestConn: onOff("expire_nodest_conn"),
  expireQuiescentTemplate: onOff("expire_quiescent_template"),
  ignoreTunneled: onOff("ignore_tunneled"),
  lblcExpiration: int("lblc_expiration", 0, MAX_JIFFY_SECONDS),
  lblcrExpiration: int("lblcr_expiration", 0, MAX_JIFFY_SECONDS),
  natIcmpSend: onOff("nat_icmp_send"),
  pmtuDisc: onOff("pmtu_disc"),
  runEstimation: onOff("run_estimation"),
  scheduleIcmp: onOff("schedule_icmp"),
  secureTcp: int("secure_tcp", 0, 3, { defense: true }),
  sloppySctp: onOff("sloppy_sctp"),
  sloppyTcp: onOff("sloppy_tcp"),
  snatReroute: onOff("snat_reroute"),
  syncPersistMode: int("sync_persist_mode", 0, 1),
  syncPorts: int("sync_ports", 1, 64, { powerOfTwo: true }),
  syncQlenMax: int("sync_qlen_max", 0, Number.MAX_SAFE_INTEGER),
  syncRefreshPeriod: int("sync_refresh_period", 0, MAX_JIFFY_SECONDS),
  syncRetries: int("sync_retries", 0, 3),
  syncSockSize: int("sync_sock_size", 0, INT_MAX),
  syncThreshold: { name: "net.ipv4.vs.sync_threshold", kind: "pair", min: 0, max: INT_MAX },
  syncVersion: int("sync_version", 0, 1),
} as const satisfies Record<string, SysctlDef>;

export type SysctlField = keyof typeof SYSCTLS;

/** The `ipForward` input fields (for NAT directors). */
export const IP_FORWARD = {
  ipv4: { name: "net.ipv4.ip_forward", kind: "int", min: 0, max: 1, bool: true },
  ipv6: { name: "net.ipv6.conf.all.forwarding", kind: "int", min: 0, max: 1, bool: true },
} as const satisfies Record<string, SysctlDef>;

export type IpForwardField = keyof typeof IP_FORWARD;

/** Every sysctl, with the input path that sets it ("sysctls.connReuseMode", "ipForward.ipv4"). */
export const ALL_SYSCTLS: readonly (SysctlDef & { path: string })[] = [
  ...Object.entries(SYSCTLS).map(([k, d]) => ({ ...d, path: `sysctls.${k}` })),
  ...Object.entries(IP_FORWARD).map(([k, d]) => ({ ...d, path: `ipForward.${k}` })),
];

/**
 * A cpulist in the form the kernel prints it back (ascending, ranges merged: "0-3,8"), or an error. Accepts what the
 * kernel's bitmap_parselist reads for CPU numbers: "a", "a-b", "a-b:used/size" (of every `size` CPUs from a, the first
 * `used`). "all" and "N" are refused: the kernel reads them back as numbers, which would show as drift on every refresh.
 */
export function canonicalCpuList(s: string, max: number): { value: string } | { error: string } {
  const list = s.trim();
  if (list === "") return { value: "" };
  const set = new Set<number>();
  const num = (t: string): number | string =>
    /^\d+$/.test(t) ? (Number(t) <= max ? Number(t) : `CPU ${t} is beyond ${max}`) : `${JSON.stringify(t)} is not a CPU number (give numbers; "all" and "N" read back as numbers)`;
  for (const group of list.split(",")) {
    const [region, stride, extra] = group.split(":");
    const [lo, hi, more] = region!.split("-");
    const a = num(lo!);
    const b = hi === undefined ? a : num(hi);
    if (typeof a === "string") return { error: a };
    if (typeof b === "string") return { error: b };
    if (more !== undefined || extra !== undefined) return { error: `group ${JSON.stringify(group)} is not a, a-b or a-b:used/size` };
    if (b < a) return { error: `range ${JSON.stringify(region)} ends before it starts` };
    let used = 1, size = 1;
    if (stride !== undefined) {
      const m = /^(\d+)\/(\d+)$/.exec(stride);
      if (hi === undefined || !m || Number(m[1]) < 1 || Number(m[1]) > Number(m[2]))
        return { error: `group ${JSON.stringify(group)}: a stride is a-b:used/size with 1 <= used <= size` };
      used = Number(m[1]);
      size = Number(m[2]);
    }
    for (let c = a; c <= b; c += size) for (let k = c; k < c + used && k <= b; k++) set.add(k);
  }
  const cpus = [...set].sort((x, y) => x - y);
  const parts: string[] = [];
  for (let i = 0; i < cpus.length; ) {
    let j = i;
    while (j + 1 < cpus.length && cpus[j + 1] === cpus[j]! + 1) j++;
    parts.push(j === i ? `${cpus[i]}` : `${cpus[i]}-${cpus[j]}`);
    i = j + 1;
  }
  return { value: parts.join(",") };
}
