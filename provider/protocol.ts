// TypeScript mirror of provider/helper/PROTOCOL.md (ipvs-helper protocol version 1). Field names and shapes follow that
// file exactly; keep the two in step.

import { printable } from "./session/errors";

export const PROTOCOL_VERSION = 1;

export type Family = "ipv4" | "ipv6";
export type TransportProtocol = "tcp" | "udp" | "sctp";

/** A service's identity: address/port/protocol, or a firewall mark. */
export type ServiceKey =
  | { family: Family; protocol: TransportProtocol; address: string; port: number }
  | { family: Family; fwmark: number };

export type SchedulerFlag = "sh-fallback" | "sh-port" | "mh-fallback" | "mh-port" | "flag-1" | "flag-2" | "flag-3";

export interface Persistence {
  timeout: number;
  /** Dotted netmask for IPv4, prefix length as a string ("128") for IPv6. */
  netmask: string;
}

/** Service settings; absent = keep the current value (or the ipvsadm default for a new service). */
export interface ServiceSettings {
  scheduler?: string;
  schedulerFlags?: SchedulerFlag[];
  /** null = not persistent. */
  persistence?: Persistence | null;
  /** "" = none. */
  persistenceEngine?: string;
  onePacket?: boolean;
}

export type ServiceSpec = ServiceKey & ServiceSettings;

/** Forwarding as the kernel reports it: what users set (schema Forwarding) plus local and bypass, which it only reports. */
export type KernelForwarding = "nat" | "dr" | "tunnel" | "local" | "bypass";

export interface Tunnel {
  type: "ipip" | "gue" | "gre";
  port: number;
  checksum: "nocsum" | "csum" | "remcsum";
}

/** A real server's identity within its service (family derived from the address). */
export interface DestKey {
  address: string;
  port: number;
}

/** Real server settings; absent = keep the current value (or the default for a new dest). */
export interface DestSettings {
  forwarding?: KernelForwarding;
  weight?: number;
  upperThreshold?: number;
  lowerThreshold?: number;
  /** null/absent with non-tunnel forwarding. */
  tunnel?: Tunnel | null;
}

export type DestSpec = DestKey & DestSettings;

/**
 * A real server's health check as ensureDest takes it ("Health checks (issue 27)"): complete, defaults and inheritance
 * resolved by the provider; the helper re-checks every field. `http` only with http/https, `dns` only with dns.
 */
export interface HealthCheck {
  type: "tcp" | "http" | "https" | "dns";
  port: number;
  intervalSeconds: number;
  timeoutSeconds: number;
  rise: number;
  fall: number;
  http?: { path: string; method: "GET" | "HEAD"; host?: string; expectStatus: string; expectBody?: string };
  dns?: { name: string; type: "A" | "AAAA" | "SOA" | "NS" | "MX" | "TXT" | "SRV"; transport: "udp" | "tcp" };
  onFailure: "quiesce" | "remove";
}

/** ensureService's health fields (with `owner`): null clears, absent keeps what the ledger records. */
export interface ServiceHealth {
  /** A count 0..65535 of real servers, or "NN%" (0..100) of the checked ones: never depool below it. */
  minHealthy: number | string | null;
  /** Added (weight 1) while none of the service's checked real servers is healthy. */
  sorryServer: SorryServer | null;
}

export interface SorryServer {
  address: string;
  port: number;
  forwarding: "nat" | "dr" | "tunnel";
}

/** Kernel counters; 64-bit values beyond 2^53 lose precision (display only). */
export interface Stats {
  conns: number;
  inPkts: number;
  outPkts: number;
  inBytes: number;
  outBytes: number;
  cps: number;
  inPps: number;
  outPps: number;
  inBps: number;
  outBps: number;
}

/**
 * What read-back adds for a real server some stack declared a health check for (PROTOCOL.md "Health checks"): its
 * health as the checker last recorded it, and the declared weight the checker restores on recovery.
 */
export interface DestHealth {
  /** unknown: not probed yet, or no checker ran. */
  state: "healthy" | "unhealthy" | "unknown";
  /** RFC 3339, when the state began; absent while unknown. */
  since?: string;
  /** The last probe's result: "ok" or why it failed ("connection refused"). */
  last?: string;
  /** The checker holds it out of the pool: weight 0 in the kernel, or deleted when `removed`. */
  depooled: boolean;
  /** Deleted by onFailure "remove": listed as declared, with zero counters. */
  removed?: boolean;
  /** Unhealthy but kept pooled by the service's minHealthy. */
  kept?: boolean;
  /** The ledger's weight: what the stack declared and the checker restores. */
  declaredWeight: number;
  /** The check's type: tcp, http, https, dns. */
  check: string;
}

/** A dest as read back from the kernel: identity, settings, runtime data. */
export type Dest = DestKey &
  Required<Omit<DestSettings, "tunnel">> & {
    tunnel?: Tunnel | null;
    activeConns: number;
    inactiveConns: number;
    persistentConns: number;
    stats: Stats;
    /** Only on a real server some stack declared a health check for. */
    health?: DestHealth;
    /** The sorry server the checker added to its service (no real server healthy); no stack declares it. */
    sorry?: boolean;
  };

/** A service as read back from the kernel; `dests` only when asked for (getService withDests, dump). */
export type Service = ServiceKey &
  Required<ServiceSettings> & {
    stats: Stats;
    dests?: Dest[];
    /** The binding the director's ledger records for it ("Bound addresses"), with whether the address is there now. */
    bindAddress?: { interface: string; dummy?: boolean; added?: boolean; present?: boolean };
  };

/** ensureService's bindAddress: where the service's address is put on the director (absent = false). */
export type BindAddress = boolean | { interface: string };

export interface Timeouts {
  tcp: number;
  tcpfin: number;
  udp: number;
}

export interface Daemon {
  state: "master" | "backup";
  interface: string;
  syncId: number;
  maxLen?: number;
  group?: string;
  port?: number;
  ttl?: number;
}

/**
 * A sysctl's value on the wire: an integer, [threshold, period] for net.ipv4.vs.sync_threshold, a cpulist string for
 * net.ipv4.vs.est_cpulist.
 */
export type SysctlValue = number | [number, number] | string;

/**
 * Director settings ("Director settings ops"): only the items a stack manages. `sysctls` by full name; `timeouts`: a
 * field 0 or absent is not managed; `daemons`: at most one per state, a state not listed is not managed.
 */
export interface Settings {
  sysctls: Record<string, SysctlValue>;
  timeouts?: Partial<Timeouts>;
  daemons: Daemon[];
  /** The ports ip_vs_ftp is loaded with; absent: not managed (ensureSettings) or not loaded (getSettings). */
  ftp?: { ports: number[] };
}

/** What ensureSettings takes: the kernel items, and where the health checker writes its metrics (recorded only). */
export interface SettingsSpec extends Settings {
  healthMetricsDirectory?: string;
}

/**
 * What an ensure does when the entry exists: "update" sets it to the spec; "fail" refuses (EXISTS); "match" succeeds
 * only when it already holds exactly the spec (the idempotent form of "fail", for re-sending a create whose answer
 * was lost), otherwise EXISTS.
 */
export type OnExisting = "update" | "fail" | "match";

/**
 * Ownership fields of ensureService and ensureDest ("Ownership ledger"): `owner` "organization/project/stack" (absent =
 * the ledger is not read or written), `formerOwner` the owner it moves from (a renamed stack), `takeover` take an entry
 * another stack owns.
 */
export interface EnsureOwnership {
  owner?: string;
  formerOwner?: string;
  takeover?: boolean;
  /**
   * ensureDest only: the resource of `owner`'s stack that holds the real server (its URN). The helper refuses (OWNED)
   * an ensure or delete of the same stack naming another holder than the recorded one; absent on either side = no check.
   */
  holder?: string;
  /**
   * ensureDest only, with `holder`: the URN the holding resource had before (renamed with aliases); a dest recorded as
   * held by it is accepted and moves to `holder`.
   */
  formerHolder?: string;
}

/** Ownership fields of deleteDest: `holder` and `formerHolder` as for ensureDest. */
export interface DeleteDestOwnership {
  owner?: string;
  holder?: string;
  formerHolder?: string;
}

/**
 * Ownership fields of deleteService: `withForeignDests` also deletes real servers `owner` does not own (else
 * FOREIGN_DESTS); `dryRun` answers as the delete would and changes nothing.
 */
export interface DeleteServiceOwnership {
  owner?: string;
  withForeignDests?: boolean;
  dryRun?: boolean;
}

export type Op =
  | ({ op: "ensureService"; service: ServiceSpec; onExisting?: OnExisting; bindAddress?: BindAddress } & Partial<ServiceHealth> & EnsureOwnership)
  | ({ op: "deleteService"; service: ServiceKey } & DeleteServiceOwnership)
  | { op: "getService"; service: ServiceKey; withDests: boolean }
  | ({ op: "ensureDest"; service: ServiceKey; dest: DestSpec; onExisting?: OnExisting; healthCheck?: HealthCheck | null } & EnsureOwnership)
  | ({ op: "deleteDest"; service: ServiceKey; dest: DestKey } & DeleteDestOwnership)
  | { op: "getDest"; service: ServiceKey; dest: DestKey }
  | { op: "dump" }
  | { op: "setTimeouts"; tcp?: number; tcpfin?: number; udp?: number }
  | { op: "getTimeouts" }
  | { op: "ensureDaemon"; daemon: Daemon }
  | { op: "deleteDaemon"; state: Daemon["state"] }
  | { op: "getDaemons" }
  | { op: "info" }
  | { op: "zero"; service?: ServiceKey }
  | { op: "flush" }
  /** `formerOwner`: the stack the settings record moves from, as it is (a renamed stack; PROTOCOL.md "Owner fields"). */
  | { op: "ensureSettings"; owner: string; formerOwner?: string; settings: SettingsSpec }
  | { op: "deleteSettings"; owner: string }
  | { op: "getSettings"; sysctls: string[] }
  /** A real server's host (RealServerHost; PROTOCOL.md "Real server hosts"): `holder` is the resource's URN. */
  | { op: "ensureHost"; owner: string; holder: string; host: HostSpec }
  | { op: "deleteHost"; owner: string; holder: string }
  | { op: "getHost"; owner: string; holder: string };

/** What ensureHost prepares. */
export type HostSpec = { forwarding: "dr"; vips: string[] } | { forwarding: "tunnel"; tunnel: { type: "ipip" | "gre" }; vips: string[] };

/**
 * A host's prepared items as they are now: each VIP's `interface` (lo for dr, tunl0 for ipip, gre0 for gre) and whether it is
 * `present` there; the managed sysctls' values.
 */
export interface HostState {
  forwarding: "dr" | "tunnel";
  vips: { address: string; interface: string; present: boolean; added: boolean }[];
  sysctls: Record<string, number>;
}

/** Whether `ipvs-helper health` runs on the director (it holds its lock file while it runs). */
export interface CheckerStatus {
  running: boolean;
  /** Why it could not be told (running is then false). */
  error?: string;
}

/** The success fields of each op's result (without `ok`). */
export interface OpResults {
  ensureService: { changed: boolean; created: boolean; service: Service };
  /** With dryRun, `dests` are the real servers the delete would take with the service, as they are now. */
  deleteService: { changed: boolean; dests?: Dest[] };
  getService: { service: Service | null };
  ensureDest: { changed: boolean; created: boolean; dest: Dest };
  deleteDest: { changed: boolean };
  getDest: { dest: Dest | null };
  /** `checker`: whether the health checker runs, when some stack's ledger records a check. */
  dump: { services: Service[]; checker?: CheckerStatus };
  setTimeouts: { changed: boolean; timeouts: Timeouts };
  getTimeouts: { timeouts: Timeouts };
  ensureDaemon: { changed: boolean };
  deleteDaemon: { changed: boolean };
  getDaemons: { daemons: Daemon[] };
  info: { info: { version: string; connTableSize: number } };
  zero: { changed: true };
  flush: { changed: boolean };
  /** `settings`: the managed items as now in the kernel. */
  ensureSettings: { changed: boolean; settings: Settings };
  /** Every managed item put back to the value found before the stack first set it. */
  deleteSettings: { changed: boolean };
  /** All timeouts, all running daemons, the named sysctls; `owner`: the stack holding this director's settings. */
  getSettings: { settings: Required<Omit<Settings, "ftp">> & Pick<Settings, "ftp"> & { timeouts: Timeouts }; owner: string | null };
  ensureHost: { changed: boolean; host: HostState };
  /** What the record changed and no other record needs is put back. */
  deleteHost: { changed: boolean };
  getHost: { host: HostState | null };
}

export type ResultOf<O extends Op> = OpResults[O["op"]];

export type HelperErrorCode =
  | "BAD_REQUEST"
  | "EXISTS"
  | "SERVICE_NOT_FOUND"
  | "NOT_FOUND"
  | "SCHEDULER_UNAVAILABLE"
  | "IPVS_UNAVAILABLE"
  | "OUT_OF_RANGE"
  | "INVALID"
  | "UNSUPPORTED_KERNEL"
  | "PERMISSION"
  /** A kernel call or modprobe did not finish within the helper's deadline; the op may or may not have been applied. */
  | "TIMEOUT"
  | "INTERNAL"
  /** The ownership ledger gives the entry (or the director's settings) to another stack; the message names it. */
  | "OWNED"
  /** deleteService would take real servers this stack does not own with it; the message lists them and their owners. */
  | "FOREIGN_DESTS"
  /** adopt of a VIP that kube-proxy or keepalived manages; the message names the manager. */
  | "MANAGED_ELSEWHERE"
  /** The ledger could not be locked, read or written; the message names the file. */
  | "LEDGER";

export interface WireError {
  code: HelperErrorCode;
  errno?: number;
  message: string;
}

export type WireResult = ({ ok: true } & Record<string, unknown>) | { ok: false; error: WireError };

export interface Request {
  v: typeof PROTOCOL_VERSION;
  ops: Op[];
}

export interface Response {
  v: number;
  results: WireResult[];
  /** Set when the whole request was refused (e.g. wrong protocol version). */
  error?: WireError;
}

/** One operation the helper refused; `message` names the director and the entry. */
export class HelperError extends Error {
  override readonly name = "HelperError";
  constructor(
    /** The director as messages name it: user@host:port. */
    readonly director: string,
    readonly code: HelperErrorCode,
    /** The helper's own sentence, without the director prefix. */
    readonly helperMessage: string,
    readonly errno?: number,
  ) {
    // The sentence comes from the director: shown with its control characters escaped.
    super(`ipvs-helper on ${director}: ${printable(helperMessage)}`);
  }
}
