// Declared (the stack's state) against the kernel (one dump per director): per director, every service the stack
// manages or has real servers in (RealServers and RealServerPool members), with its real servers, what differs field
// by field, and the kernel's counters; and the director's DirectorSettings against its getSettings answer.
// A real server's health (issue 27) is reported apart from drift: one the checker holds out of the pool is compared
// at its declared weight (health.declaredWeight), as refresh reads it, so it is health, not drift.
// Each RealServerHost against its host (hosts.ts): its drift is an entry's, an unreadable host an error.
// Pure: the dumps, settings and host reads are passed in.
import { canonical } from "../diff";
import { directorKey, hostPort } from "../director";
import { serviceIdPart } from "../identity";
import type { CheckerStatus, Dest, DestHealth, Service, ServiceKey, Stats } from "../protocol";
import type { SyncDaemonModel, VirtualServiceModel } from "../schema";
import { declaredView, destProps, destSettings } from "../resources/realServer/wire";
import { boundProps, serviceProps, serviceSettings } from "../resources/virtualService/wire";
import { settingsProps, type KernelSettings } from "../resources/directorSettings/wire";
import { hostDrifted, hostReport, type HostReport, type HostView } from "./hosts";
import type { DeclaredDest, DeclaredService, DeclaredSettings, DestDeclaration, StackEntries } from "./state";

type Props = Record<string, unknown>;

/**
 * ok: kernel = declared. differs: some field differs. missing: declared, not in the kernel. unmanaged: in the kernel,
 * not declared by this stack (a service is listed so only when the stack has real servers in it). unknown: the
 * director could not be read.
 */
export type EntryStatus = "ok" | "differs" | "missing" | "unmanaged" | "unknown";

export interface FieldDifference {
  field: string;
  declared: unknown;
  kernel: unknown;
}

interface EntryReport {
  /** The resource's name in the program; absent for entries this stack does not manage. */
  resource?: string;
  status: EntryStatus;
  differences: FieldDifference[];
  /** The settings as declared / as the kernel has them, in input form (VirtualService / RealServer fields). */
  declared?: Props;
  kernel?: Props;
}

export interface RealServerReport extends EntryReport {
  /** "10.0.0.11:8080", "[2001:db8::11]:80". */
  realServer: string;
  /** A RealServerPool member: the pool's resource name (`resource` is then the member's, "web-pool[10.0.0.11:8080]"). */
  pool?: string;
  activeConns?: number;
  inactiveConns?: number;
  persistentConns?: number;
  stats?: Stats;
  /** Only for a real server some stack declared a health check for: the checker's view (PROTOCOL.md read-back). */
  health?: DestHealth;
  /** The sorry server the checker added while no real server of the service is healthy (no stack declares it). */
  sorry?: true;
}

export interface ServiceReport extends EntryReport {
  /** "tcp/192.0.2.10:80", "fwmark/ipv4/7". */
  service: string;
  stats?: Stats;
  realServers: RealServerReport[];
}

/**
 * A DirectorSettings value in input form: a timeout, a sysctl (boolean, number, CPU list, sync_threshold pair), a sync
 * daemon field, a whole daemon, or ip_vs_ftp's ports.
 */
export type SettingValue = boolean | number | string | { threshold: number; period: number } | SyncDaemonModel | number[];

export interface SettingReport {
  /** The input path: "timeouts.tcp", "sysctls.expireNodestConn", "ipForward.ipv4", "syncDaemons.master.syncId", "syncDaemons.backup", "ftp.ports". */
  field: string;
  /** unknown: the settings could not be read. */
  status: "ok" | "differs" | "unknown";
  declared: SettingValue;
  /**
   * The kernel's value (absent while unknown); null: the kernel has none (a declared sync daemon that is not running,
   * ip_vs_ftp not loaded).
   */
  kernel?: SettingValue | null;
}

export interface SettingsReport {
  /** The DirectorSettings resource's name. */
  resource: string;
  /** differs: some field differs; unknown: the director, or its settings, could not be read. */
  status: "ok" | "differs" | "unknown";
  /** Why the settings could not be read when the director's table could. */
  error?: string;
  /** Every setting the resource declares: timeouts, sysctls, ipForward, ftp, then the sync daemons. */
  fields: SettingReport[];
}

export interface DirectorReport {
  /** host:port. */
  director: string;
  user: string;
  /** Why the director could not be read (then every entry is "unknown"). */
  error?: string;
  services: ServiceReport[];
  /** Services on the director that this stack neither manages nor has real servers in. */
  otherServices: string[];
  /** The stack's DirectorSettings for this director, when it has one. */
  settings?: SettingsReport;
  /** Whether the health checker runs here; only when some stack declares a check on this director. */
  checker?: CheckerStatus;
}

export interface StatusReport {
  stack: string;
  /**
   * error: a director or real server host could not be read, or a resource's state not parsed; drift: some entry,
   * settings or host differs or is missing.
   */
  status: "ok" | "drift" | "error";
  directors: DirectorReport[];
  /** Every RealServerHost of the stack, in resource name order. */
  hosts: HostReport[];
  /** Resources whose state could not be read. */
  problems: string[];
  /**
   * Health apart from drift, one sentence each: real servers unhealthy (depooled, removed, kept pooled by
   * minHealthy), sorry servers in use, directors whose checker is not running. Empty when all is well.
   */
  health: string[];
}

export type { HostReport, HostView, KernelSettings };

/**
 * A director's dump (and, for a director with DirectorSettings, its settings or why they could not be read), or why
 * the director could not be read.
 */
export type KernelView =
  | { services: Service[]; checker?: CheckerStatus; settings?: { settings: KernelSettings } | { error: string } }
  | { error: string };

/** State lists resources in creation order, which varies from run to run: sort as people read addresses. */
const byAddress = (a: string, b: string) => a.localeCompare(b, "en", { numeric: true });
const sameKey = (a: ServiceKey, b: ServiceKey) => serviceIdPart(a) === serviceIdPart(b);
const hasDirector = (ds: { host: string; port: number }[], key: string) => ds.some((d) => directorKey(d) === key);

/**
 * The declared settings in the form the kernel's are read back in (what refresh writes): through the same wire
 * mapping create and update send, then back, so a field the wire carries cannot be left out of the comparison.
 */
const declaredServiceProps = (vs: VirtualServiceModel): Props => ({ ...serviceProps(serviceSettings(vs)), bindAddress: vs.bindAddress });
const declaredDestProps = (rs: DestDeclaration): Props => destProps(destSettings(rs), { forwarding: rs.forwarding });

/** Flags are a set: the kernel's order is not the program's. */
const comparable = (field: string, v: unknown) => canonical(field === "schedulerFlags" && Array.isArray(v) ? [...v].sort() : v);

function differences(declared: Props, kernel: Props): FieldDifference[] {
  return Object.keys(declared)
    .filter((field) => comparable(field, declared[field]) !== comparable(field, kernel[field]))
    .map((field) => ({ field, declared: declared[field], kernel: kernel[field] }));
}

const verdict = (diffs: FieldDifference[]): EntryStatus => (diffs.length ? "differs" : "ok");

function destReport(declared: DeclaredDest | undefined, kernel: Dest | undefined, unknown: boolean): RealServerReport {
  const d = declared?.key ?? kernel!;
  const base = {
    realServer: hostPort(d.address, d.port),
    ...(declared ? { resource: declared.name } : {}),
    ...(declared?.resource.kind === "RealServerPool" ? { pool: declared.resource.name } : {}),
  };
  const want = declared ? declaredDestProps(declared.entry) : undefined;
  if (unknown) return { ...base, status: "unknown", differences: [], declared: want };
  if (!kernel) return { ...base, status: "missing", differences: [], declared: want };
  // destProps keeps the declared forwarding where the kernel reports "local" (a dest on the director itself).
  const current = { forwarding: declared?.entry.forwarding ?? kernel.forwarding };
  // The kernel's values as they are (a depooled server at weight 0; none for one the checker removed, which the
  // helper lists as declared), and compared as refresh reads them: a depooled server at its declared weight.
  const have = kernel.health?.removed ? undefined : destProps(kernel, current);
  const runtime = {
    activeConns: kernel.activeConns,
    inactiveConns: kernel.inactiveConns,
    persistentConns: kernel.persistentConns,
    stats: kernel.stats,
    ...(kernel.health ? { health: kernel.health } : {}),
    ...(kernel.sorry ? { sorry: true as const } : {}),
  };
  if (!want) return { ...base, status: "unmanaged", differences: [], kernel: have, ...runtime };
  const diffs = differences(want, destProps(declaredView(kernel), current));
  return { ...base, status: verdict(diffs), differences: diffs, declared: want, ...(have ? { kernel: have } : {}), ...runtime };
}

function serviceReport(
  key: ServiceKey,
  declared: DeclaredService | undefined,
  dests: DeclaredDest[],
  kernel: Service | undefined,
  unknown: boolean,
): ServiceReport {
  const want = declared ? declaredServiceProps(declared.entry) : undefined;
  const kernelDests = kernel?.dests ?? [];
  const destKeyOf = (d: { address: string; port: number }) => hostPort(d.address, d.port);
  const realServers = [
    ...dests.map((rs) => destReport(rs, kernelDests.find((k) => destKeyOf(k) === destKeyOf(rs.key)), unknown)),
    ...kernelDests.filter((k) => !dests.some((rs) => destKeyOf(rs.key) === destKeyOf(k))).map((k) => destReport(undefined, k, false)),
  ].sort((a, b) => byAddress(a.realServer, b.realServer));
  const base = { service: serviceIdPart(key), ...(declared ? { resource: declared.resource.name } : {}) };
  if (unknown) return { ...base, status: "unknown", differences: [], declared: want, realServers };
  if (!kernel) return { ...base, status: "missing", differences: [], declared: want, realServers };
  if (!want) return { ...base, status: "unmanaged", differences: [], kernel: serviceProps(kernel), stats: kernel.stats, realServers };
  // The bound address as refresh reads it back (false when it is gone from its interface).
  const have = { ...serviceProps(kernel), bindAddress: boundProps(kernel) };
  const diffs = differences(want, have);
  return { ...base, status: verdict(diffs), differences: diffs, declared: want, kernel: have, stats: kernel.stats, realServers };
}

/** DirectorSettings in input form: the spec, or the kernel's values as settingsProps reads them. */
type SettingsShape = { timeouts?: object; sysctls?: object; ipForward?: object; ftp?: { ports: number[] }; syncDaemons: { state: string }[] };

/**
 * Every setting as an input path and its value; a sync daemon field by field under its state
 * ("syncDaemons.master.syncId"); ip_vs_ftp's ports as one list ("ftp.ports": the module is loaded with all of them or
 * not at all, and settingsProps gives the kernel's in the declared order when they are the same set).
 */
function leaves(o: SettingsShape): Map<string, unknown> {
  const out = new Map<string, unknown>();
  const add = (prefix: string, x: object | undefined, skip?: string) => {
    for (const [k, v] of Object.entries(x ?? {})) if (v !== undefined && k !== skip) out.set(`${prefix}.${k}`, v);
  };
  add("timeouts", o.timeouts);
  add("sysctls", o.sysctls);
  add("ipForward", o.ipForward);
  add("ftp", o.ftp);
  for (const d of o.syncDaemons) add(`syncDaemons.${d.state}`, d, "state");
  return out;
}

function settingsReport(declared: DeclaredSettings, view: KernelView): SettingsReport {
  const s = declared.entry;
  const resource = declared.resource.name;
  const read = "services" in view ? (view.settings ?? { error: "not read" }) : undefined;
  if (!read || "error" in read) {
    const fields = [...leaves(s)].map(([field, v]) => ({ field, status: "unknown" as const, declared: v as SettingValue }));
    return { resource, status: "unknown", ...(read ? { error: read.error } : {}), fields };
  }
  const kernel = settingsProps(s, read.settings) as SettingsShape;
  const have = leaves(kernel);
  const compare = ([field, v]: [string, unknown]): SettingReport => {
    const k = have.get(field);
    return { field, status: canonical(v) === canonical(k) ? "ok" : "differs", declared: v as SettingValue, kernel: (k ?? null) as SettingValue | null };
  };
  const fields = [
    ...[...leaves({ ...s, syncDaemons: [] })].map(compare),
    // A declared daemon that is not running is one entry, the whole daemon; a running one is compared field by field.
    ...s.syncDaemons.flatMap((d): SettingReport[] =>
      kernel.syncDaemons.some((k) => k.state === d.state)
        ? [...leaves({ syncDaemons: [d] })].map(compare)
        : [{ field: `syncDaemons.${d.state}`, status: "differs", declared: d, kernel: null }],
    ),
  ];
  return { resource, status: fields.some((f) => f.status === "differs") ? "differs" : "ok", fields };
}

function directorReport(key: string, user: string, entries: StackEntries, view: KernelView): DirectorReport {
  const services = entries.services.filter((s) => hasDirector(s.entry.directors, key));
  const dests = entries.dests.filter((rs) => hasDirector(rs.entry.service.directors, key));
  // Every service the stack has something in here: its own, and those its real servers belong to.
  const keys: ServiceKey[] = [];
  for (const k of [...services.map((s) => s.key), ...dests.map((rs) => rs.service)]) if (!keys.some((x) => sameKey(x, k))) keys.push(k);
  const error = "error" in view ? view.error : undefined;
  const kernel = "services" in view ? view.services : [];
  keys.sort((a, b) => byAddress(serviceIdPart(a), serviceIdPart(b)));
  const reports = keys.map((k) =>
    serviceReport(
      k,
      services.find((s) => sameKey(s.key, k)),
      dests.filter((rs) => sameKey(rs.service, k)),
      kernel.find((s) => sameKey(s, k)),
      error !== undefined,
    ),
  );
  const otherServices = kernel.filter((s) => !keys.some((k) => sameKey(k, s))).map((s) => serviceIdPart(s));
  const settings = entries.settings.find((s) => s.director === key);
  return {
    director: key,
    user,
    ...(error !== undefined ? { error } : {}),
    services: reports,
    otherServices,
    ...(settings ? { settings: settingsReport(settings, view) } : {}),
    ...("services" in view && view.checker ? { checker: view.checker } : {}),
  };
}

/** "since 2026-12-06T20:00:00Z: connection refused". */
const sinceLast = (h: DestHealth) => [h.since !== undefined ? `since ${h.since}` : "", h.last ?? ""].filter((x) => x).join(": ");

/** A checked real server's health in a few words: "healthy since …", "unhealthy since …: connection refused; depooled (weight 0, declared 5)". */
export function healthText(h: DestHealth): string {
  const head = h.state === "unknown" ? "not probed yet" : [h.state, sinceLast(h)].filter((x) => x).join(" ");
  if (h.removed) return `${head}; removed by the checker (declared weight ${h.declaredWeight}, restored on recovery)`;
  if (h.depooled) return `${head}; depooled (weight 0, declared ${h.declaredWeight}, restored on recovery)`;
  if (h.kept) return `${head}; kept pooled by minHealthy`;
  return head;
}

/** The report's health sentences (StatusReport.health): what is not well, per director. */
function healthSentences(directors: DirectorReport[]): string[] {
  const out: string[] = [];
  for (const d of directors) {
    const checked = d.services.some((s) => s.realServers.some((r) => r.health));
    if (d.checker && !d.checker.running && checked)
      out.push(
        d.checker.error !== undefined
          ? `${d.director}: cannot tell whether the health checker runs: ${d.checker.error}`
          : `${d.director}: the health checker is not running: no real server is depooled or restored, the weights stay as they are`,
      );
    for (const s of d.services)
      for (const r of s.realServers) {
        const who = `${r.resource ?? r.realServer} (${r.realServer} of ${s.service} on ${d.director})`;
        if (r.sorry) out.push(`sorry server ${r.realServer} of ${s.service} on ${d.director}: in the pool, no real server is healthy`);
        else if (r.health && r.health.state === "unhealthy") out.push(`${who}: ${healthText(r.health)}`);
      }
  }
  return out;
}

const drifted = (e: EntryReport) => e.resource !== undefined && (e.status === "differs" || e.status === "missing");

/**
 * The whole report: one section per director, in host:port order, then one per real server host. `kernel` has a view
 * for every director of `entries`, `hosts` one for every RealServerHost, by its URN.
 */
export function compareStack(
  stack: string,
  entries: StackEntries,
  kernel: ReadonlyMap<string, KernelView>,
  hosts: ReadonlyMap<string, HostView> = new Map(),
): StatusReport {
  const directors = [...entries.directors.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([key, d]) => directorReport(key, d.user, entries, kernel.get(key) ?? { error: "not read" }));
  const hostReports = [...entries.hosts]
    .sort((a, b) => byAddress(a.resource.name, b.resource.name))
    .map((h) => hostReport(h, hosts.get(h.resource.urn) ?? { error: "not read" }));
  const anyDrift =
    directors.some((d) => d.settings?.status === "differs" || d.services.some((s) => drifted(s) || s.realServers.some(drifted))) ||
    hostReports.some(hostDrifted);
  const anyError =
    entries.problems.length > 0 ||
    directors.some((d) => d.error !== undefined || d.settings?.error !== undefined) ||
    hostReports.some((h) => h.status === "unknown");
  return {
    stack,
    status: anyError ? "error" : anyDrift ? "drift" : "ok",
    directors,
    hosts: hostReports,
    problems: entries.problems,
    health: healthSentences(directors),
  };
}

/** The process exit code for a report: 0 everything matches, 1 drift, 2 error. */
export function exitCode(report: Pick<StatusReport, "status">): number {
  return report.status === "ok" ? 0 : report.status === "drift" ? 1 : 2;
}
