// Arguments of the VirtualService and RealServer resources, as a Pulumi program writes them. Rules are enforced at
// preview by the provider's schema (provider/schema.ts); they are listed here so editors show them.
import type * as pulumi from "@pulumi/pulumi";
import type { Family, Forwarding, Scheduler, SchedulerFlag, TransportProtocol, TunnelChecksum, TunnelType } from "../provider/schema";
import type { DirectorArgs, DirectorState } from "./director";

/** How packets reach a real server: NAT (masquerading), direct routing, or IP tunnelling. */
export type { Family, Forwarding, Scheduler, SchedulerFlag, TransportProtocol, TunnelChecksum, TunnelType } from "../provider/schema";

/**
 * An enum-like input as Pulumi's SDKs type them: any string (a value from config compiles), with the known values
 * offered for completion. The provider's check refuses an unknown value at preview, naming the field and the choices.
 */
export type OneOf<T extends string> = T | (string & {});

/** Session persistence (ipvsadm -p / -M / --pe). */
export interface PersistenceArgs {
  /** Seconds a client sticks to its real server, 1..2678400 (31 days). Default 360. */
  timeout?: pulumi.Input<number>;
  /**
   * Clients whose addresses agree under this mask stick together. IPv4 services: a contiguous dotted mask such as
   * "255.255.255.0"; IPv6 services: a prefix length 1..128 (64 or "64"). Default: the whole address
   * ("255.255.255.255" / "128").
   */
  netmask?: pulumi.Input<string | number>;
  /** Persistence engine: only "sip" (SIP Call-ID), and only for UDP or fwmark services. Default: none. */
  engine?: pulumi.Input<OneOf<"sip">>;
}

/**
 * A virtual service: one VIP (protocol + address + port) or one firewall mark, on one or more directors.
 * Give either `address` + `port` (+ `protocol`) or `fwmark` (+ `family`), never both.
 */
export interface VirtualServiceArgs {
  /** The directors that carry this service (an HA pair gets the same service on both). At least one; no host:port twice. */
  directors: pulumi.Input<pulumi.Input<DirectorArgs>[]>;
  /** "tcp" | "udp" | "sctp". Default "tcp". Not with fwmark. */
  protocol?: pulumi.Input<OneOf<TransportProtocol>>;
  /** The VIP: an IPv4 or IPv6 address (no host names). IPv6 is stored in compressed lowercase form. Not with fwmark. */
  address?: pulumi.Input<string>;
  /** 0..65535. Required with address; 0 (all ports) only for persistent services. Not with fwmark. */
  port?: pulumi.Input<number>;
  /** Firewall mark 1..4294967295 (set by iptables/nftables) instead of protocol + address + port. */
  fwmark?: pulumi.Input<number>;
  /** Address family. Derived from address (must agree if given); for fwmark services default "ipv4". */
  family?: pulumi.Input<OneOf<Family>>;
  /** Scheduler: rr wrr lc wlc lblc lblcr dh sh sed nq fo ovf mh twos. Default "wlc". twos needs kernel ≥ 6.2, mh ≥ 4.18. */
  scheduler?: pulumi.Input<OneOf<Scheduler>>;
  /**
   * Scheduler flags: "sh-fallback"/"sh-port" only with sh, "mh-fallback"/"mh-port" only with mh, "flag-1".."flag-3" with
   * any scheduler. No flag twice (flag-1 on sh is sh-fallback). Default none.
   */
  schedulerFlags?: pulumi.Input<pulumi.Input<OneOf<SchedulerFlag>>[]>;
  /** Make the service persistent (sticky clients). Default: not persistent. */
  persistence?: pulumi.Input<PersistenceArgs>;
  /** One-packet scheduling (each datagram scheduled on its own): only UDP or fwmark services. Default false. */
  onePacket?: pulumi.Input<boolean>;
  /**
   * Drain the service's real servers before the service leaves a director — a director removed from `directors`, or
   * the service deleted or replaced while real servers are still on it there (the kernel drops them with it): each
   * gets weight 0, and the removal waits until their connections end or the timeout passes. Default: remove at once.
   * (A RealServer's own `drain` covers that real server being removed.)
   */
  drain?: pulumi.Input<DrainArgs>;
  /**
   * Take over an entry with this identity that already exists on a director (its settings are then set to these).
   * Default false: creating over an existing entry fails and says what is there.
   */
  adopt?: pulumi.Input<boolean>;
}

/** Tunnel encapsulation for forwarding "tunnel" (ipvsadm --tun-type/--tun-port/--tun-*csum). */
export interface TunnelArgs {
  /** "ipip" | "gue" (kernel ≥ 5.2) | "gre" (kernel ≥ 5.3). Default "ipip". */
  type?: pulumi.Input<OneOf<TunnelType>>;
  /** UDP port of the GUE receiver, 1..65535: required for gue, not allowed for ipip and gre. */
  port?: pulumi.Input<number>;
  /** gue: "nocsum" | "csum" | "remcsum"; gre: "nocsum" | "csum"; ipip: only "nocsum". Default "nocsum". */
  checksum?: pulumi.Input<OneOf<TunnelChecksum>>;
}

/** Graceful removal: on delete or replacement the real server gets weight 0, then is removed once idle. */
export interface DrainArgs {
  /** Give up waiting for connections to end after this many seconds, 0..86400, and remove anyway. Default 300. */
  timeoutSeconds?: pulumi.Input<number>;
}

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
}

/** A real server (backend) of a virtual service, on every director of that service. */
export interface RealServerArgs {
  /** The virtual service; the real server inherits its directors and identity. */
  service: VirtualServiceRef;
  /** The real server's IP address (no host names). Same family as the service, unless forwarding is "tunnel". */
  address: pulumi.Input<string>;
  /**
   * 0..65535. Default: the service port (0 for fwmark services = keep the packet's port). With "dr" or "tunnel" on an
   * address service it must equal the service port (packets are not rewritten), so leave it out.
   */
  port?: pulumi.Input<number>;
  /** "nat" (masquerading) | "dr" (direct routing) | "tunnel". Default "nat". */
  forwarding?: pulumi.Input<OneOf<Forwarding>>;
  /** 0..65535; 0 = quiesced (no new connections). Default 1. */
  weight?: pulumi.Input<number>;
  /** Stop sending new connections above this many, 0..2147483647; 0 = no limit. Default 0. */
  upperThreshold?: pulumi.Input<number>;
  /** Resume below this many connections, 0..upperThreshold (needs an upperThreshold). Default 0. */
  lowerThreshold?: pulumi.Input<number>;
  /** Tunnel options; only with forwarding "tunnel". Default { type: "ipip" } there. */
  tunnel?: pulumi.Input<TunnelArgs>;
  /** Drain before removing (delete or replacement). Default: remove at once. */
  drain?: pulumi.Input<DrainArgs>;
  /** Take over an existing dest with this address and port instead of failing. Default false. */
  adopt?: pulumi.Input<boolean>;
}

// Outputs: what the provider recorded, defaults filled and values normalised (so precisely typed, unlike the inputs).

/** A VirtualService's persistence as recorded: the netmask is a dotted mask (IPv4) or a prefix as a string ("64"). */
export interface PersistenceState {
  timeout: number;
  netmask: string;
  engine?: "sip";
}

/** A RealServer's tunnel options as recorded (forwarding "tunnel" only). */
export interface TunnelState {
  type: TunnelType;
  /** gue only. */
  port?: number;
  checksum: TunnelChecksum;
}

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
}
