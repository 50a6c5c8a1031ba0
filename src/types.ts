// Arguments of the resources, as a Pulumi program writes them, and their outputs. Rules are enforced at preview by the
// provider's schema (provider/schema/); they are listed here so editors show them. A VirtualService's and a real
// server's fields are not written here: their doc and plain type sit next to their rule in the resource's field table
// (provider/resources/virtualService/schema.ts, provider/resources/realServer/fields.ts) and are mapped below.
import type * as pulumi from "@pulumi/pulumi";
import type { Family, SchedulerFlag, TransportProtocol } from "../provider/schema";
import type { SyncDaemonModel, SysctlField, SysctlsModel } from "../provider/schema";
import type { OneOf } from "../provider/schema/fields";
import type { DestInputs, DestModel, TunnelInputs } from "../provider/resources/realServer/fields";
import type { PersistenceInputs, SorryServerInputs, VirtualServiceInputs } from "../provider/resources/virtualService/schema";
import type { DnsCheckInputs, HealthCheckInputs, HealthCheckModel, HttpCheckInputs } from "../provider/schema/health";
import type { SorryServerModel } from "../provider/schema";
import type { DrainInputs } from "../provider/schema/values";
import type { DirectorArgs, DirectorState } from "./director";

/** How packets reach a real server: NAT (masquerading), direct routing, or IP tunnelling. */
export type { Family, Forwarding, Scheduler, SchedulerFlag, TransportProtocol, TunnelChecksum, TunnelType } from "../provider/schema";

export type { OneOf } from "../provider/schema/fields";

/**
 * A plain input type as a program passes it: every field a pulumi.Input (as sst derives `Input<Inputs[K]>`), a nested
 * object given as its own Args type in `Nested`. Doc comments and optionality carry over from `T`.
 */
type ArgsOf<T, Nested = {}> = { [K in keyof T]: pulumi.Input<K extends keyof Nested ? Nested[K] : NonNullable<T[K]>> };

/** Session persistence (ipvsadm -p / -M / --pe). */
export interface PersistenceArgs extends ArgsOf<PersistenceInputs> {}

/** An http or https check's request and expected answer. */
export interface HttpCheckArgs extends ArgsOf<HttpCheckInputs> {}
/** A dns check's question. */
export interface DnsCheckArgs extends ArgsOf<DnsCheckInputs> {}
/**
 * A health check (`ipvs-helper health` on each director probes the real server's own address): on a VirtualService
 * the default for its real servers, on a RealServerPool for its members; a real server's own wins (whole objects);
 * `{ type: "none" }` switches an inherited one off.
 */
export interface HealthCheckArgs extends ArgsOf<HealthCheckInputs, { http: HttpCheckArgs; dns: DnsCheckArgs }> {}
/** The real server added (weight 1) while none of the service's checked real servers is healthy. */
export interface SorryServerArgs extends ArgsOf<SorryServerInputs> {}

/**
 * A virtual service: one VIP (protocol + address + port) or one firewall mark, on one or more directors.
 * Give either `address` + `port` (+ `protocol`) or `fwmark` (+ `family`), never both.
 *
 * Ownership: each director's ledger records the stack ("organization/project/stack", passed automatically) that
 * created or adopted the service and each real server. Another stack's entries are refused unless `takeover`; entries
 * nobody owns (by hand, keepalived, kube-proxy) are only changed through `adopt`; renaming the stack or project moves
 * ownership on the next up.
 */
export interface VirtualServiceArgs
  extends ArgsOf<
    VirtualServiceInputs,
    {
      directors: pulumi.Input<DirectorArgs>[];
      schedulerFlags: pulumi.Input<OneOf<SchedulerFlag>>[];
      persistence: PersistenceArgs;
      drain: DrainArgs;
      healthCheck: HealthCheckArgs;
      sorryServer: SorryServerArgs;
    }
  > {}

/** Tunnel encapsulation for forwarding "tunnel" (ipvsadm --tun-type/--tun-port/--tun-*csum). */
export interface TunnelArgs extends ArgsOf<TunnelInputs> {}

/** Graceful removal: on delete or replacement the real server gets weight 0, then is removed once idle. */
export interface DrainArgs extends ArgsOf<DrainInputs> {}

/**
 * What a RealServer needs from its VirtualService: the directors and identity it resolved. A VirtualService resource
 * has these outputs; the RealServer passes them to its provider as the `service` input (see RealServerInputs).
 */
export interface VirtualServiceRef {
  readonly directors: pulumi.Output<unknown[]>;
  readonly family: pulumi.Output<Family>;
  readonly protocol: pulumi.Output<TransportProtocol | undefined>;
  readonly address: pulumi.Output<string | undefined>;
  readonly port: pulumi.Output<number | undefined>;
  readonly fwmark: pulumi.Output<number | undefined>;
  /** The default check of the service's real servers (a VirtualService's healthCheck output); absent: none. */
  readonly healthCheck?: pulumi.Output<HealthCheckState | undefined>;
}

/** A real server's address and settings: what a RealServer and each RealServerPool member take. */
export interface RealServerSettingsArgs extends ArgsOf<DestInputs, { tunnel: TunnelArgs; healthCheck: HealthCheckArgs }> {}

/** A real server (backend) of a virtual service, on every director of that service. */
export interface RealServerArgs extends RealServerSettingsArgs {
  /** The virtual service; the real server inherits its directors and identity. */
  service: VirtualServiceRef;
  /** Drain before removing (delete or replacement). Default: remove at once. */
  drain?: pulumi.Input<DrainArgs>;
  /** Take over an existing dest with this address and port instead of failing (not one another stack owns). Default false. */
  adopt?: pulumi.Input<boolean>;
  /**
   * Take the real server over from the stack that owns it on a director. Implies adopt. Default false: a real server
   * another stack owns is refused, naming it.
   */
  takeover?: pulumi.Input<boolean>;
}

// Outputs: what the provider recorded, defaults filled and values normalised (so precisely typed, unlike the inputs).

/** A VirtualService's persistence as recorded: the netmask is a dotted mask (IPv4) or a prefix as a string ("64"). */
export interface PersistenceState {
  timeout: number;
  netmask: string;
  engine?: "sip";
}

/**
 * A health check as recorded: `{ type: "none" }`, or every default filled in. On a real server (a RealServer's
 * output, a pool member) it is the check in effect, inherited ones included; `port` absent = the real server's port.
 */
export type HealthCheckState = HealthCheckModel;

/** A VirtualService's sorry server as recorded (port resolved). */
export type SorryServerState = SorryServerModel;

/** A RealServer's tunnel options as recorded (forwarding "tunnel" only; port: gue only). */
export interface TunnelState extends NonNullable<DestModel["tunnel"]> {}

/** A real server's own fields as recorded (a RealServer's outputs, a pool member): defaults filled, port resolved. */
export type RealServerSettingsState = { [K in keyof DestModel]: K extends "tunnel" ? TunnelState : K extends "healthCheck" ? HealthCheckState : DestModel[K] };

export interface DrainState {
  timeoutSeconds: number;
}

/** A RealServer's `service` output: the directors (credentials included: a secret output) and the service identity. */
export interface ServiceRefState {
  directors: DirectorState[];
  family: Family;
  protocol?: TransportProtocol;
  address?: string;
  port?: number;
  fwmark?: number;
  healthCheck?: HealthCheckState;
}

// RealServerPool: one service's real servers as one resource (provider/resources/realServerPool/schema.ts has the rules).

/** One member of a RealServerPool: a real server, with exactly a RealServer's fields, defaults and rules. */
export type RealServerPoolMemberArgs = RealServerSettingsArgs;

/**
 * The real servers of one virtual service as one resource, for pools of hundreds to thousands of backends. Members
 * are identified by address:port: adding, removing or changing one touches only that member's real server (in place;
 * counters and connections of the others are untouched). Changing the service's identity replaces the pool.
 *
 * Ownership as for a RealServer: the directors' ledger records each member under this stack and this pool, so a real
 * server cannot also be a RealServer's or another pool's (refused naming the resource that holds it).
 */
export interface RealServerPoolArgs {
  /** The virtual service; the members inherit its directors and identity. */
  service: VirtualServiceRef;
  /** The real servers, each identified by address:port (no address:port twice). Order does not matter. */
  members: pulumi.Input<pulumi.Input<RealServerPoolMemberArgs>[]>;
  /** The members' default health check (a member's own wins; the VirtualService's is the fallback). Default: the service's. */
  healthCheck?: pulumi.Input<HealthCheckArgs>;
  /** Drain each removed member (and every member on delete): weight 0, wait for its connections, then remove. Default: remove at once. */
  drain?: pulumi.Input<DrainArgs>;
  /** Take over existing real servers with these addresses and ports that no stack owns, instead of failing. Default false. */
  adopt?: pulumi.Input<boolean>;
  /** Take members over from the stack or resource that holds them. Implies adopt. Default false. */
  takeover?: pulumi.Input<boolean>;
}

/** A RealServerPool member as recorded: defaults filled, port resolved. */
export interface RealServerPoolMemberState extends RealServerSettingsState {
  /**
   * Only when the member is on some of the service's directors, not all (a partial failure, or found so by a
   * refresh): those directors ("host:port"). The next `up` puts it on the others.
   */
  onlyOn?: string[];
}

// DirectorSettings: one director's IPVS settings as a whole (provider/resources/directorSettings/schema.ts has the rules).

/**
 * The settings of one director that one stack manages (`ipvsadm --set`, `--start-daemon`, net.ipv4.vs.* sysctls, IP
 * forwarding). Only what is given is managed; destroying the resource (or dropping an item) puts back the value the
 * director had before the stack first set it. A director has one stack's settings: a second stack is refused, naming
 * the first.
 */
export interface DirectorSettingsArgs {
  /** The director. Changing its host or port moves the settings (the old director gets its values back). */
  director: pulumi.Input<DirectorArgs>;
  /** IPVS connection timeouts in seconds, as `ipvsadm --set tcp tcpfin udp`. */
  timeouts?: pulumi.Input<IpvsTimeoutsArgs>;
  /** Connection sync daemons (`ipvsadm --start-daemon`) for failover: at most one master and one backup. */
  syncDaemons?: pulumi.Input<pulumi.Input<SyncDaemonArgs>[]>;
  /** net.ipv4.vs.* kernel settings (Documentation/networking/ipvs-sysctl.rst). */
  sysctls?: pulumi.Input<SysctlsArgs>;
  /** IP forwarding, which NAT directors need (the real servers' replies are routed through the director). */
  ipForward?: pulumi.Input<IpForwardArgs>;
  /**
   * FTP through NAT services: loads ip_vs_ftp for these ports, so IPVS rewrites the addresses in the control
   * connection (PASV / PORT) and lets the data connections through. Changing the ports reloads the module, which the
   * kernel allows only while no FTP connection uses it (refused, saying so, otherwise).
   */
  ftp?: pulumi.Input<FtpArgs>;
  /**
   * Where the health checker (`ipvs-helper health`) writes its state as Prometheus text metrics (`ipvs_health.prom`,
   * node_exporter's textfile-collector format), e.g. "/var/lib/node_exporter/textfile_collector": a clean absolute
   * path without white space, quotes, backslashes or "%". Passed to the checker's systemd unit as --metrics-dir (the
   * directory is created, and the checker restarted, keeping its up/down states); without systemd, pass
   * `--metrics-dir` yourself. Default: no metrics.
   */
  healthMetricsDirectory?: pulumi.Input<string>;
}

/** ip_vs_ftp's ports. */
export interface FtpArgs {
  /** The FTP control ports of the NAT services, 1..8 distinct ports 1..65535, e.g. [21]. */
  ports: pulumi.Input<pulumi.Input<number>[]>;
}

/** A DirectorSettings' ftp as recorded. */
export interface FtpState {
  ports: number[];
}

/** Seconds, 1..2147483 each; a timeout not given is not managed. */
export interface IpvsTimeoutsArgs {
  /** Idle TCP connections (kernel default 900). */
  tcp?: pulumi.Input<number>;
  /** TCP connections after the FIN (kernel default 120). */
  tcpFin?: pulumi.Input<number>;
  /** UDP (kernel default 300). */
  udp?: pulumi.Input<number>;
}

/** One connection sync daemon. A running daemon whose settings change is restarted (the kernel cannot change one). */
export interface SyncDaemonArgs {
  /** "master" sends this director's connections, "backup" receives the master's. */
  state: pulumi.Input<OneOf<"master" | "backup">>;
  /** Network interface for the sync traffic, e.g. "eth1" (1..15 characters). */
  interface: pulumi.Input<string>;
  /** Sync id 0..255; master and backup must agree (0 = accept any on a backup). */
  syncId: pulumi.Input<number>;
  /** Largest sync message in bytes, 1..65507; the kernel uses at most the interface MTU minus 28. Default: from the MTU. */
  maxLength?: pulumi.Input<number>;
  /** Multicast group (IPv4 224.0.0.0/4 or IPv6 ff00::/8). Default 224.0.0.81. */
  group?: pulumi.Input<string>;
  /** UDP port 1..65535. Default 8848. */
  port?: pulumi.Input<number>;
  /** Multicast TTL 1..255. Default 1. */
  ttl?: pulumi.Input<number>;
}

/**
 * net.ipv4.vs.* settings, one optional field per sysctl: on/off ones are booleans, the rest numbers in the range the
 * kernel documents. A field not given is not managed. A director whose kernel lacks one fails naming it.
 */
export interface SysctlsArgs {
  /** am_droprate 0..2147483647: the drop rate of drop_packet mode 3 (drop 1 of this many packets). Kernel default 10. */
  amDroprate?: pulumi.Input<number>;
  /** amemthresh 0..2147483647: available memory threshold in pages for the automatic defense modes. Kernel default 1024. */
  amemthresh?: pulumi.Input<number>;
  /** backup_only: no director function while this director is a sync backup (avoids DR/TUN loops). Default off. */
  backupOnly?: pulumi.Input<boolean>;
  /** cache_bypass: forward to the original destination when no cache server is available. Default off. */
  cacheBypass?: pulumi.Input<boolean>;
  /**
   * conn_reuse_mode 0..3, a bitmap: 1 = reschedule a new connection on a reused port when it is safe (expire_nodest_conn,
   * TIME_WAIT under NAT), 2 = also in FIN_WAIT (direct routing); 0 = send it to the same real server. Kernel default 1.
   */
  connReuseMode?: pulumi.Input<number>;
  /** conntrack: keep netfilter connection tracking entries for IPVS connections (stateful firewall rules). Default off. */
  conntrack?: pulumi.Input<boolean>;
  /** debug_level 0..12 (kernels built with CONFIG_IP_VS_DEBUG only). Default 0. */
  debugLevel?: pulumi.Input<number>;
  /** drop_entry 0..3: 0 off, 1/2 automatic (by available memory; the kernel switches between them), 3 always. Default 0. */
  dropEntry?: pulumi.Input<number>;
  /** drop_packet 0..3: like dropEntry; mode 3 drops 1 of amDroprate packets. Default 0. */
  dropPacket?: pulumi.Input<number>;
  /** est_cpulist: CPUs for the rate estimation kthreads, e.g. "0-3,8" or "0-7:1/2" ("" stops estimation). CPU numbers only. */
  estCpulist?: pulumi.Input<string>;
  /** est_nice -20..19: niceness of the estimation kthreads. Default 0. */
  estNice?: pulumi.Input<number>;
  /** expire_nodest_conn: expire a connection at once when its real server is gone (the client sees it closed). Default off. */
  expireNodestConn?: pulumi.Input<boolean>;
  /** expire_quiescent_template: expire persistence templates of a quiesced (weight 0) real server. Default off. */
  expireQuiescentTemplate?: pulumi.Input<boolean>;
  /** ignore_tunneled: do not schedule tunneled packets of unknown protocols (avoids loops when the director is also a real server). Default off. */
  ignoreTunneled?: pulumi.Input<boolean>;
  /** lblc_expiration 0..2147483 seconds (exists once the lblc scheduler is loaded). Default 86400. */
  lblcExpiration?: pulumi.Input<number>;
  /** lblcr_expiration 0..2147483 seconds (exists once the lblcr scheduler is loaded). Default 86400. */
  lblcrExpiration?: pulumi.Input<number>;
  /** nat_icmp_send: send ICMP errors for NAT replies with no connection entry. Default off. */
  natIcmpSend?: pulumi.Input<boolean>;
  /** pmtu_disc: reject DF packets over the PMTU with FRAG_NEEDED; off lets TUN fragment them. Default on. */
  pmtuDisc?: pulumi.Input<boolean>;
  /** run_estimation: compute the rate statistics (off stops the estimation kthreads). Default on. */
  runEstimation?: pulumi.Input<boolean>;
  /** schedule_icmp: schedule ICMP packets (and so reach real servers with ping). Default off. */
  scheduleIcmp?: pulumi.Input<boolean>;
  /** secure_tcp 0..3 (modes as dropEntry): a stricter TCP state table against SYN floods. Default 0. */
  secureTcp?: pulumi.Input<number>;
  /** sloppy_sctp: accept SCTP connections picked up mid-stream (e.g. on a sync backup). Default off. */
  sloppySctp?: pulumi.Input<boolean>;
  /** sloppy_tcp: accept TCP connections picked up mid-stream (e.g. on a sync backup). Default off. */
  sloppyTcp?: pulumi.Input<boolean>;
  /** snat_reroute: route NAT replies as if they came from the director (needed with policy routing). Default on. */
  snatReroute?: pulumi.Input<boolean>;
  /** sync_persist_mode 0..1: 1 syncs only persistence templates of persistent services. Default 0. */
  syncPersistMode?: pulumi.Input<number>;
  /** sync_ports: sync threads (one UDP port each from 8848), a power of two 1..64. Default 1. */
  syncPorts?: pulumi.Input<number>;
  /** sync_qlen_max 0..2^53-1: most sync messages queued. Default: 1/32 of memory pages. */
  syncQlenMax?: pulumi.Input<number>;
  /** sync_refresh_period 0..2147483 seconds: resync an unchanged connection after this long (0 = on state change only). Default 0. */
  syncRefreshPeriod?: pulumi.Input<number>;
  /** sync_retries 0..3: resend sync messages this many times (period sync_refresh_period/8). Default 0. */
  syncRetries?: pulumi.Input<number>;
  /** sync_sock_size 0..2147483647: sync socket SNDBUF (master) or RCVBUF (backup) in bytes; 0 = system default. Default 0. */
  syncSockSize?: pulumi.Input<number>;
  /** sync_threshold: sync a connection at `threshold` packets, then every `period` packets (0 ≤ threshold < period, or period 0). Default 3, 50. */
  syncThreshold?: pulumi.Input<SyncThresholdArgs>;
  /** sync_version 0..1: sync protocol version sent (0 for legacy backups). Default 1. */
  syncVersion?: pulumi.Input<number>;
}

/** net.ipv4.vs.sync_threshold: each 0..2147483647. */
export interface SyncThresholdArgs {
  threshold: pulumi.Input<number>;
  period: pulumi.Input<number>;
}

/** IP forwarding: net.ipv4.ip_forward and net.ipv6.conf.all.forwarding. */
export interface IpForwardArgs {
  ipv4?: pulumi.Input<boolean>;
  ipv6?: pulumi.Input<boolean>;
}

/** A DirectorSettings' timeouts as recorded (only the managed ones). */
export type IpvsTimeoutsState = { [K in keyof IpvsTimeoutsArgs]: number };
/** A sync daemon as recorded: the state normalised, the given optional fields only. */
export type SyncDaemonState = { [K in keyof SyncDaemonArgs]: K extends "state" ? "master" | "backup" : pulumi.Unwrap<SyncDaemonArgs[K]> };
export type SyncThresholdState = { threshold: number; period: number };
/** A DirectorSettings' sysctls as recorded (only the managed ones; est_cpulist in the kernel's form, "0-3,8"). */
export type SysctlsState = { [K in keyof SysctlsArgs]: K extends "syncThreshold" ? SyncThresholdState : pulumi.Unwrap<SysctlsArgs[K]> };
export type IpForwardState = { [K in keyof IpForwardArgs]: boolean };

// The sysctl fields are the provider's table, and the states are what its schema records (compile-time checks).
type Assert<T extends true> = T;
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
export type _SysctlsArgsAreTheTable = Assert<Same<keyof SysctlsArgs, SysctlField>>;
export type _SysctlsStateIsTheSpec = Assert<Same<Required<SysctlsState>, Required<SysctlsModel>>>;
export type _SyncDaemonStateIsTheSpec = Assert<Same<SyncDaemonState, SyncDaemonModel>>;
