// DirectorSettings rules: one director's IPVS timeouts, connection sync daemons, net.ipv4.vs.* sysctls, IP
// forwarding and ip_vs_ftp's ports (PROTOCOL.md "Director settings ops"). Every range is checked here, at preview, naming the field.
import { z } from "zod";
import type { Director } from "../../director";
import { check, parse, type CheckResult } from "../../schema/check";
import { directorSchema, upgradeState } from "../../schema/director";
import { ownerSchema } from "../../schema/owner";
import { canonicalCpuList, IP_FORWARD, SYSCTLS, type IpForwardField, type SysctlDef, type SysctlField } from "./sysctls";
import { isUnknown, rule, u, type Checked, type Known, type Unknown } from "../../schema/unknown";
import { bool, int, oneOf, parseIp } from "../../schema/values";

export const DAEMON_STATES = ["master", "backup"] as const;
export type DaemonState = (typeof DAEMON_STATES)[number];

/** ipvsadm --set: seconds; the kernel refuses more than INT_MAX/HZ (HZ is at most 1000). */
export const MAX_TIMEOUT_SECONDS = 2147483;

/** A sysctl's value as the resource writes it: booleans for on/off ones, { threshold, period } for sync_threshold. */
type ValueOf<D extends SysctlDef> = D extends { bool: true }
  ? boolean
  : D extends { kind: "pair" }
    ? { threshold: number; period: number }
    : D extends { kind: "cpulist" }
      ? string
      : number;

export type SysctlsModel = { [K in SysctlField]?: ValueOf<(typeof SYSCTLS)[K]> };
export type IpForwardModel = { [K in IpForwardField]?: boolean };

export interface TimeoutsModel {
  tcp?: number;
  tcpFin?: number;
  udp?: number;
}

export interface SyncDaemonModel {
  state: DaemonState;
  interface: string;
  syncId: number;
  maxLength?: number;
  group?: string;
  port?: number;
  ttl?: number;
}

export interface DirectorSettingsModel {
  director: Director;
  /** Only the timeouts given are managed. */
  timeouts?: TimeoutsModel;
  /** At most one per state, master first. */
  syncDaemons: SyncDaemonModel[];
  sysctls: SysctlsModel;
  ipForward?: IpForwardModel;
  /** ip_vs_ftp's ports, in the order given. */
  ftp?: { ports: number[] };
  /** Where the health checker writes its Prometheus textfile metrics (`--metrics-dir`). */
  healthMetricsDirectory?: string;
  /** The stack holding the director's settings in its ledger. */
  owner: string;
}

/** What a sysctl input is called in messages: "sysctls.connReuseMode (net.ipv4.vs.conn_reuse_mode)". */
const label = (path: string, d: SysctlDef) => `${path} (${d.name})`;

function sysctlSchema(path: string, d: SysctlDef): z.ZodType {
  if (d.bool) return bool(label(path, d));
  if (d.kind === "pair") {
    const part = (k: string) => u(int(`${path}.${k}`, d.min, d.max));
    return z
      .strictObject({ threshold: part("threshold"), period: part("period") }, { error: rule(`${label(path, d)} must be { threshold, period }`) })
      .superRefine((p, ctx) => {
        if (isUnknown(p.threshold) || isUnknown(p.period)) return;
        // ip_vs_ctl.c proc_do_sync_threshold: EINVAL unless threshold < period, or period 0 (sync on state changes only).
        if (p.period !== 0 && p.threshold >= p.period)
          ctx.addIssue({ code: "custom", path: ["threshold"], message: `${path}.threshold must be below ${path}.period (${p.period}), or the period 0, not ${p.threshold}` });
      });
  }
  if (d.kind === "cpulist")
    return z.string({ error: rule(`${label(path, d)} must be a CPU list like "0-3,8"`) }).transform((s, ctx) => {
      const r = canonicalCpuList(s, d.max);
      if ("error" in r) {
        ctx.addIssue({ code: "custom", message: `${label(path, d)}: ${r.error}` });
        return z.NEVER;
      }
      return r.value;
    });
  const n = int(label(path, d), d.min, d.max);
  if (!d.powerOfTwo) return n;
  return n.refine((v) => (v & (v - 1)) === 0, { error: `${label(path, d)} must be a power of two ${d.min}..${d.max}` });
}

const fieldsOf = <T extends Record<string, SysctlDef>>(section: string, defs: T) =>
  Object.fromEntries(Object.entries(defs).map(([k, d]) => [k, u(sysctlSchema(`${section}.${k}`, d)).optional()]));

const sysctlsSchema = z.strictObject(fieldsOf("sysctls", SYSCTLS), { error: "sysctls must be an object of sysctl fields" }) as unknown as z.ZodType<
  Checked<SysctlsModel>,
  unknown
>;
const ipForwardSchema = z.strictObject(fieldsOf("ipForward", IP_FORWARD), { error: "ipForward must be { ipv4?, ipv6? }" }) as unknown as z.ZodType<
  Checked<IpForwardModel>,
  unknown
>;

const timeout = (k: string) => u(int(`timeouts.${k}`, 1, MAX_TIMEOUT_SECONDS)).optional();
const timeoutsSchema = z.strictObject({ tcp: timeout("tcp"), tcpFin: timeout("tcpFin"), udp: timeout("udp") }, { error: "timeouts must be { tcp?, tcpFin?, udp? }" });

// dev_valid_name(): 1..15 bytes, not "." or "..", no "/", ":" or white space.
const interfaceName = z.string({ error: rule("interface must be a network interface name") }).superRefine((s, ctx) => {
  if (s === "" || Buffer.byteLength(s) > 15 || s === "." || s === ".." || /[/:\s]/.test(s))
    ctx.addIssue({ code: "custom", message: `interface must be a network interface name of 1..15 characters without "/", ":" or spaces, not ${JSON.stringify(s)}` });
});

const multicastGroup = z.string({ error: rule("group must be a multicast IP address") }).transform((s, ctx) => {
  const ip = parseIp(s.trim());
  const multicast = ip && (ip.family === "ipv6" ? ip.address.startsWith("ff") : Number(ip.address.split(".")[0]) >= 224 && Number(ip.address.split(".")[0]) <= 239);
  if (!ip || !multicast) {
    ctx.addIssue({ code: "custom", message: `group must be a multicast IPv4 or IPv6 address (224.0.0.0/4, ff00::/8), not ${JSON.stringify(s)}` });
    return z.NEVER;
  }
  return ip.address;
});

const syncDaemonSchema = z.strictObject({
  state: u(oneOf("state", DAEMON_STATES)),
  interface: u(interfaceName),
  syncId: u(int("syncId", 0, 255)),
  maxLength: u(int("maxLength", 1, 65507)).optional(),
  group: u(multicastGroup).optional(),
  port: u(int("port", 1, 65535)).optional(),
  ttl: u(int("ttl", 1, 255)).optional(),
});

const syncDaemonsSchema = z
  .array(u(syncDaemonSchema), { error: rule("syncDaemons must be a list of sync daemons") })
  .superRefine((ds, ctx) => {
    const seen = new Map<string, number>();
    ds.forEach((d, i) => {
      if (isUnknown(d) || isUnknown(d.state)) return;
      const first = seen.get(d.state);
      if (first !== undefined)
        ctx.addIssue({ code: "custom", path: [i, "state"], message: `a director runs at most one ${d.state} sync daemon (also syncDaemons[${first}])` });
      else seen.set(d.state, i);
    });
  })
  // master before backup, so listing them in another order is no change.
  .transform((ds) => [...ds].sort((a, b) => stateRank(a) - stateRank(b)));

const stateRank = (d: Checked<SyncDaemonModel>) => (isUnknown(d) || isUnknown(d.state) ? 2 : DAEMON_STATES.indexOf(d.state));

/** ip_vs_ftp's IP_VS_APP_MAX_PORTS: the module takes at most this many ports. */
export const MAX_FTP_PORTS = 8;

const ftpSchema = z.strictObject(
  {
    ports: z
      .array(u(int("ftp.ports[]", 1, 65535)), { error: rule("ftp.ports must be a list of TCP ports") })
      .superRefine((ps, ctx) => {
        if (ps.length === 0 || ps.length > MAX_FTP_PORTS)
          ctx.addIssue({ code: "custom", message: `ftp.ports must list 1..${MAX_FTP_PORTS} ports (ip_vs_ftp takes at most ${MAX_FTP_PORTS}), not ${ps.length}` });
        ps.forEach((p, i) => {
          const first = ps.indexOf(p);
          if (!isUnknown(p) && first < i) ctx.addIssue({ code: "custom", path: [i], message: `ftp.ports[${i}]: port ${p} is listed twice (also ftp.ports[${first}])` });
        });
      }),
  },
  { error: rule("ftp must be { ports: [21, …] }") },
);
/**
 * healthMetricsDirectory: a clean absolute path that a systemd unit line takes as it is (the helper's rule,
 * protocol.CheckMetricsDir: no white space, quotes, backslashes, "%" or control characters; at most 1024).
 */
const metricsDirectory = z.string({ error: rule("healthMetricsDirectory must be an absolute directory path") }).superRefine((s, ctx) => {
  const issue = (message: string) => ctx.addIssue({ code: "custom", message });
  const clean = s.startsWith("/") && s !== "/" && !s.endsWith("/") && !s.split("/").slice(1).some((p) => p === "" || p === "." || p === "..");
  if (!clean) issue(`healthMetricsDirectory must be a clean absolute directory path such as /var/lib/node_exporter/textfile_collector, not ${JSON.stringify(s)}`);
  else if (s.length > 1024) issue(`healthMetricsDirectory must be at most 1024 characters, not ${s.length}`);
  else if (/[\x00-\x20\x7f"'%\\]/.test(s)) issue(`healthMetricsDirectory must not hold white space, quotes, backslashes, % or control characters: ${JSON.stringify(s)}`);
});

/** `schema`, saying "is required" for a missing value and `text` for one that is not an object. */
const required = <T extends z.ZodType>(text: string, schema: T) =>
  z
    .unknown()
    .superRefine((v, ctx) => {
      if (!v || typeof v !== "object" || Array.isArray(v)) ctx.addIssue({ code: "custom", message: v === undefined ? "is required" : text });
    })
    .pipe(schema);

/** The input property names of a DirectorSettings. */
export const DIRECTOR_SETTINGS_KEYS = ["director", "timeouts", "syncDaemons", "sysctls", "ipForward", "ftp", "healthMetricsDirectory", "owner"] as const;

/** An object without its absent fields, or undefined when none is left (nothing managed is the same as not given). */
function nonEmpty<T extends object>(o: T | Unknown | undefined): T | Unknown | undefined {
  if (o === undefined || isUnknown(o)) return o;
  const kept = Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
  return Object.keys(kept).length > 0 ? kept : undefined;
}

export const directorSettingsSchema = z
  .strictObject({
    director: u(required("director must be a director: { host, user, privateKey | …, hostKey | … }", directorSchema)),
    timeouts: u(timeoutsSchema).optional(),
    syncDaemons: u(syncDaemonsSchema).default([]),
    sysctls: u(sysctlsSchema).default({}),
    ipForward: u(ipForwardSchema).optional(),
    ftp: u(ftpSchema).optional(),
    healthMetricsDirectory: u(metricsDirectory).optional(),
    // src/ passes the running stack's; the ledger needs it for every settings op.
    owner: u(ownerSchema("owner")),
  })
  .transform((s) => {
    const timeouts = nonEmpty(s.timeouts);
    const ipForward = nonEmpty(s.ipForward);
    return {
      director: s.director,
      ...(timeouts !== undefined ? { timeouts } : {}),
      syncDaemons: s.syncDaemons,
      sysctls: isUnknown(s.sysctls) ? s.sysctls : (nonEmpty(s.sysctls) ?? {}),
      ...(ipForward !== undefined ? { ipForward } : {}),
      ...(s.ftp !== undefined ? { ftp: s.ftp } : {}),
      ...(s.healthMetricsDirectory !== undefined ? { healthMetricsDirectory: s.healthMetricsDirectory } : {}),
      owner: s.owner,
    };
  });

export type DirectorSettingsChecked = z.output<typeof directorSettingsSchema>;
// The hand-written spec must accept what the schema produces once every value is known (compile-time check).
type Assert<T extends true> = T;
export type _DirectorSettingsFits = Assert<[Known<DirectorSettingsChecked>] extends [DirectorSettingsModel] ? true : false>;

/** Validate and normalise DirectorSettings inputs; the dynamic provider's check (pure: never connects). */
export function checkDirectorSettings(_olds: unknown, news: unknown): CheckResult<DirectorSettingsChecked> {
  return check(directorSettingsSchema, news);
}

/** Fully known, normalised DirectorSettings (for create/update/read/delete); throws with every problem listed. */
export function parseDirectorSettings(inputs: unknown): DirectorSettingsModel {
  return parse("DirectorSettings inputs", checkDirectorSettings(undefined, upgradeState(inputs)));
}
