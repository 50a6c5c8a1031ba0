// VirtualService rules (ipvsadm's, reference/ipvs-netlink.md §4): its field table, the cross-field rules and the
// normalisation (defaults filled, IPv6 compressed, scheduler flags named as ipvsadm prints them).
import * as net from "node:net";
import { z } from "zod";
import type { SchedulerFlag } from "../../protocol";
import { directorsSchema } from "../../schema/director";
import type { Director } from "../../director";
import { field, fieldsWithRole, shapeOf, type OneOf } from "../../schema/fields";
import { healthCheckSchema, type HealthCheckInputs } from "../../schema/health";
import { ownerSchema } from "../../schema/owner";
import { isUnknown, u, UNKNOWN, type Unknown } from "../../schema/unknown";
import { bool, DEFAULTS, drainSchema, FAMILIES, FORWARDING, int, ipAddress, oneOf, parseIp, PROTOCOLS, SCHEDULER_FLAGS, SCHEDULERS, type DrainInputs, type Family, type Forwarding, type Scheduler, type TransportProtocol } from "../../schema/values";

const persistenceSchema = z.strictObject({
  timeout: u(int("timeout", 1, 2678400)).default(DEFAULTS.persistenceTimeout),
  // Form depends on the family (dotted mask / prefix), checked in the service rules.
  netmask: u(z.union([z.string(), z.number()], { error: "netmask must be a string (IPv4 mask) or a number (IPv6 prefix)" })).optional(),
  engine: u(z.literal("sip", { error: 'engine must be "sip" (the only persistence engine)' })).optional(),
});

// bindAddress: the kernel's rule for an interface name (dev_valid_name): 1..15 bytes, not "." or "..", no '/', ':'
// or whitespace. ipvs0 is the helper's own dummy interface, which `true` names.
const interfaceName = z.string({ error: "bindAddress.interface must be a string (an interface name like \"eth0\")" }).superRefine((n, ctx) => {
  const problem =
    n.length < 1 || Buffer.byteLength(n) > 15 ? "must be 1 to 15 characters (the kernel's limit)"
    : n === "." || n === ".." ? 'cannot be "." or ".."'
    : /[/:\s]/.test(n) ? "cannot contain '/', ':' or whitespace"
    : n === "ipvs0" ? "ipvs0 is the helper's own dummy interface: use bindAddress: true"
    : undefined;
  if (problem) ctx.addIssue({ code: "custom", message: `bindAddress.interface ${JSON.stringify(n)} ${problem}` });
});
const BIND_SHAPE = 'bindAddress must be true, false or { interface: "eth0" }';
const bindAddressSchema = z.union([z.boolean({ error: BIND_SHAPE }), z.strictObject({ interface: u(interfaceName) }, { error: BIND_SHAPE })], { error: BIND_SHAPE });

// minHealthy: a count (the helper's 0..65535) or a percentage of the checked real servers, "0%".."100%".
const MIN_HEALTHY = 'minHealthy must be a whole number of real servers 0..65535 or a percentage "0%".."100%" (such as "50%")';
const minHealthySchema = z.union([
  z.number({ error: MIN_HEALTHY }).int({ error: MIN_HEALTHY }).min(0, { error: MIN_HEALTHY }).max(65535, { error: MIN_HEALTHY }),
  z.string({ error: MIN_HEALTHY }).regex(/^(100|[1-9]?[0-9])%$/, { error: MIN_HEALTHY }),
], { error: MIN_HEALTHY });

/** The real server added while none is healthy (the helper adds it with weight 1). */
export interface SorryServerInputs {
  /** Its IP address, of the service's family. */
  address: string;
  /** 1..65535. Default: the service port (required for fwmark services). */
  port?: number;
  /** "nat" | "dr" | "tunnel". Default "nat". */
  forwarding?: OneOf<Forwarding>;
}

const sorryServerSchema = z.strictObject({
  address: u(ipAddress("address", "dest")),
  port: u(int("port", 1, 65535)).optional(),
  forwarding: u(oneOf("forwarding", FORWARDING)).default(DEFAULTS.forwarding),
});

/** The scheduler-flag bit each name sets, and the name ipvsadm prints for that bit under each scheduler. */
const FLAG_BIT: Record<SchedulerFlag, 1 | 2 | 3> = {
  "sh-fallback": 1, "mh-fallback": 1, "flag-1": 1,
  "sh-port": 2, "mh-port": 2, "flag-2": 2,
  "flag-3": 3,
};
function canonicalFlag(bit: 1 | 2 | 3, scheduler: string): SchedulerFlag {
  if (bit !== 3 && (scheduler === "sh" || scheduler === "mh")) return `${scheduler}-${bit === 1 ? "fallback" : "port"}`;
  return `flag-${bit}`;
}

/** IPv4 netmask "a.b.c.d" with contiguous ones and at least one bit set, or undefined. */
function contiguousMask(s: string): boolean {
  if (!net.isIPv4(s)) return false;
  const n = s.split(".").reduce((acc, o) => acc * 256 + Number(o), 0);
  const inv = 0xffffffff - n;
  return n !== 0 && (inv & (inv + 1)) === 0; // ~mask + 1 must be a power of two
}

function v6Prefix(m: string | number): number | undefined {
  const n = typeof m === "number" ? m : /^\/?\d{1,3}$/.test(m.trim()) ? Number(m.trim().replace("/", "")) : NaN;
  return Number.isInteger(n) && n >= 1 && n <= 128 ? n : undefined;
}

// The VirtualService's inputs as a program writes them, with their docs: src/types.ts maps these into the public
// VirtualServiceArgs and PersistenceArgs (each field a pulumi.Input), so a field is documented once, here, next to its
// rule in VIRTUAL_SERVICE_FIELDS below (the compile-time check at the bottom keeps the two in step).

/** Session persistence (ipvsadm -p / -M / --pe). */
export interface PersistenceInputs {
  /** Seconds a client sticks to its real server, 1..2678400 (31 days). Default 360. */
  timeout?: number;
  /**
   * Clients whose addresses agree under this mask stick together. IPv4 services: a contiguous dotted mask such as
   * "255.255.255.0"; IPv6 services: a prefix length 1..128 (64 or "64"). Default: the whole address
   * ("255.255.255.255" / "128").
   */
  netmask?: string | number;
  /** Persistence engine: only "sip" (SIP Call-ID), and only for UDP or fwmark services. Default: none. */
  engine?: OneOf<"sip">;
}

export interface VirtualServiceInputs {
  /** The directors that carry this service (an HA pair gets the same service on both). At least one; no host:port twice. */
  directors: Director[];
  /** "tcp" | "udp" | "sctp". Default "tcp". Not with fwmark. */
  protocol?: OneOf<TransportProtocol>;
  /** The VIP: an IPv4 or IPv6 address (no host names). IPv6 is stored in compressed lowercase form. Not with fwmark. */
  address?: string;
  /** 0..65535. Required with address; 0 (all ports) only for persistent services. Not with fwmark. */
  port?: number;
  /** Firewall mark 1..4294967295 (set by iptables/nftables) instead of protocol + address + port. */
  fwmark?: number;
  /** Address family. Derived from address (must agree if given); for fwmark services default "ipv4". */
  family?: OneOf<Family>;
  /** Scheduler: rr wrr lc wlc lblc lblcr dh sh sed nq fo ovf mh twos. Default "wlc". twos needs kernel ≥ 6.2, mh ≥ 4.18. */
  scheduler?: OneOf<Scheduler>;
  /**
   * Scheduler flags: "sh-fallback"/"sh-port" only with sh, "mh-fallback"/"mh-port" only with mh, "flag-1".."flag-3" with
   * any scheduler. No flag twice (flag-1 on sh is sh-fallback). Default none.
   */
  schedulerFlags?: OneOf<SchedulerFlag>[];
  /** Make the service persistent (sticky clients). Default: not persistent. */
  persistence?: PersistenceInputs;
  /**
   * One-packet scheduling (each datagram scheduled on its own): only UDP or fwmark services. Default false. The kernel
   * keeps no connection for it, so replies of "nat" real servers are not translated back and clients drop them: for
   * one-way UDP, or "dr"/"tunnel" real servers.
   */
  onePacket?: boolean;
  /**
   * Put the VIP on the directors: `true` adds it (/32 or /128) to the helper's dummy interface `ipvs0` (traffic
   * routed to the director, e.g. by BGP); `{ interface: "eth0" }` adds it there and announces it (gratuitous ARP /
   * unsolicited neighbour advertisement), so the director answers for it on that LAN. Counted across services and
   * stacks: it goes with the last service binding it; an address already there is used and left alone. Not with
   * fwmark. Default false: keepalived, a BGP speaker or another tool owns the VIP.
   */
  bindAddress?: boolean | { interface: string };
  /**
   * Drain the service's real servers before the service leaves a director — a director removed from `directors`, or
   * the service deleted or replaced while real servers are still on it there (the kernel drops them with it): each
   * gets weight 0, and the removal waits until their connections end or the timeout passes. Default: remove at once.
   * (A RealServer's own `drain` covers that real server being removed.)
   */
  drain?: DrainInputs;
  /**
   * The default health check of this service's real servers (each RealServer, pool or member may declare its own, or
   * `{ type: "none" }`). Default: none.
   */
  healthCheck?: HealthCheckInputs;
  /**
   * Never take checked real servers out below this many: a count, or "NN%" of the service's checked real servers
   * (rounded up). The ones kept are named in the checker's log and in status. Default "50%". Sent with the service
   * whether or not a real server has a check yet (the director records it for checks any stack adds later).
   */
  minHealthy?: number | string;
  /** Added (weight 1) while none of the service's checked real servers is healthy, removed as soon as one is. Default: none. */
  sorryServer?: SorryServerInputs;
  /**
   * Take over an entry with this identity that already exists on a director (its settings are then set to these).
   * Default false: creating over an existing entry fails and says what is there. Neither an entry another stack owns
   * (see takeover) nor a VIP that kube-proxy or keepalived manages is adopted.
   */
  adopt?: boolean;
  /**
   * Take the service over from the stack that owns it on a director (the ledger then records this stack; that stack's
   * next up fails naming this one). Implies adopt. Default false: a service another stack owns is refused, naming it.
   */
  takeover?: boolean;
  /**
   * When the service is deleted (or leaves a director), also delete real servers this stack does not own: another
   * stack's, or ones added by hand. Default false: the removal is refused, listing them and their owners, and nothing
   * is changed (not even drained).
   */
  deleteForeignRealServers?: boolean;
}

/** Every VirtualService input: its role and its rule and default. */
export const VIRTUAL_SERVICE_FIELDS = {
  directors: field("directors", u(directorsSchema)),
  family: field("identity", u(oneOf("family", FAMILIES)).optional()),
  protocol: field("identity", u(oneOf("protocol", PROTOCOLS)).optional()),
  address: field("identity", u(ipAddress("address", "vip")).optional()),
  port: field("identity", u(int("port", 0, 65535)).optional()),
  fwmark: field("identity", u(int("fwmark", 1, 4294967295)).optional()),
  scheduler: field("setting", u(oneOf("scheduler", SCHEDULERS)).default(DEFAULTS.scheduler)),
  schedulerFlags: field("setting", u(z.array(u(oneOf("schedulerFlags", SCHEDULER_FLAGS)), { error: "schedulerFlags must be a list" })).default([])),
  persistence: field("setting", u(persistenceSchema).optional()),
  onePacket: field("setting", u(bool("onePacket")).default(false)),
  // The VIP on the directors (PROTOCOL.md "Bound addresses"): false (another tool places it), true (the helper's
  // dummy interface ipvs0) or { interface } (there, announced to its LAN).
  bindAddress: field("setting", u(bindAddressSchema).default(false)),
  drain: field("setting", u(drainSchema).optional()),
  // Health checks (PROTOCOL.md "Health checks"): the real servers' default check (they resolve theirs, passing this
  // one as service.healthCheck), and minHealthy and the sorry server, which ensureService carries.
  healthCheck: field("setting", u(healthCheckSchema).optional()),
  minHealthy: field("setting", u(minHealthySchema).default("50%")),
  sorryServer: field("setting", u(sorryServerSchema).optional()),
  adopt: field("setting", u(bool("adopt")).default(false)),
  // Ownership (PROTOCOL.md "Ownership ledger"): owner is the running stack's (src/ passes it; state written before the
  // ledger has none); takeover and deleteForeignRealServers only shape the ops, like adopt.
  owner: field("setting", u(ownerSchema("owner")).optional()),
  takeover: field("setting", u(bool("takeover")).default(false)),
  // The resource's own URN (src/urn.ts), for progress messages; absent in state written before it.
  resourceUrn: field("engine", u(z.string()).optional()),
  deleteForeignRealServers: field("setting", u(bool("deleteForeignRealServers")).default(false)),
};

const vsObject = z.strictObject(shapeOf(VIRTUAL_SERVICE_FIELDS));
type VsParsed = z.output<typeof vsObject>;
/** The input property names of a VirtualService (old outputs may carry more, e.g. read-back data). */
export const VIRTUAL_SERVICE_KEYS = Object.keys(VIRTUAL_SERVICE_FIELDS) as (keyof VsParsed)[];
/** A service's kernel identity: what a RealServer's `service` reference carries besides the directors. */
export const SERVICE_IDENTITY = fieldsWithRole(VIRTUAL_SERVICE_FIELDS, "identity");
export const VIRTUAL_SERVICE_SETTINGS = fieldsWithRole(VIRTUAL_SERVICE_FIELDS, "setting");

/** Cross-field rules of a virtual service; each one skips itself while one of its fields is unknown. */
function virtualServiceRules(v: VsParsed, ctx: z.RefinementCtx) {
  const issue = (path: (string | number)[], message: string) => ctx.addIssue({ code: "custom", path, message });
  const isFwmark = v.fwmark !== undefined;
  const persistence = v.persistence;

  if (isFwmark) {
    for (const k of ["protocol", "address", "port"] as const)
      if (v[k] !== undefined) issue([k], `${k} cannot be combined with fwmark: a service is either protocol + address + port, or fwmark`);
    if (v.bindAddress !== false)
      issue(["bindAddress"], "bindAddress cannot be used with fwmark: a fwmark service has no address to bind (its addresses come from the firewall rules that mark packets)");
  } else {
    if (v.address === undefined) issue(["address"], "set address (with protocol and port) or fwmark: a service needs an identity");
    else if (v.port === undefined) issue(["port"], "port is required for an address service (0 only with persistence)");
    const problem = familyProblem(v, "");
    if (problem) issue(["family"], problem);
  }
  // ipvsadm: "Zero port specified for non-persistent service".
  if (v.port === 0 && persistence === undefined)
    issue(["port"], "port 0 is only allowed for persistent services (ipvsadm rule)");

  const protocol = isFwmark ? undefined : (v.protocol ?? DEFAULTS.protocol);
  if (v.onePacket === true && protocol !== undefined && !isUnknown(protocol) && protocol !== "udp")
    issue(["onePacket"], `onePacket is only supported for UDP or fwmark services, not ${protocol} (ipvsadm rule)`);

  if (persistence !== undefined && !isUnknown(persistence)) {
    // The SIP engine reads Call-IDs from UDP payloads; fwmark services may carry UDP, so they are allowed.
    if (persistence.engine === "sip" && protocol !== undefined && !isUnknown(protocol) && protocol !== "udp")
      issue(["persistence", "engine"], `persistence engine "sip" only works for UDP (or fwmark) services, not ${protocol}`);
    const family = serviceFamily(v);
    const m = persistence.netmask;
    if (m !== undefined && !isUnknown(m) && family !== undefined && !isUnknown(family)) {
      if (family === "ipv4" && !(typeof m === "string" && contiguousMask(m.trim())))
        issue(["persistence", "netmask"], `netmask must be a contiguous IPv4 mask like "255.255.255.0", not ${JSON.stringify(m)}`);
      if (family === "ipv6" && v6Prefix(m) === undefined)
        issue(["persistence", "netmask"], `netmask of an IPv6 service must be a prefix length 1..128 (like 64), not ${JSON.stringify(m)}`);
    }
  }

  const sorry = v.sorryServer;
  if (sorry !== undefined && !isUnknown(sorry)) {
    const family = serviceFamily(v);
    if (!isUnknown(sorry.address) && family !== undefined && !isUnknown(family) && parseIp(sorry.address)!.family !== family)
      issue(["sorryServer", "address"], `address ${sorry.address} is ${parseIp(sorry.address)!.family} but the service is ${family}`);
    if (isFwmark && sorry.port === undefined)
      issue(["sorryServer", "port"], "port (1..65535) is required for a fwmark service: there is no service port to default to");
    const fwd = sorry.forwarding;
    // As for a real server: dr and tunnel do not rewrite the packet, so the port is the service's.
    if ((fwd === "dr" || fwd === "tunnel") && !isFwmark && sorry.port !== undefined && !isUnknown(sorry.port) && v.port !== undefined && !isUnknown(v.port) && sorry.port !== v.port)
      issue(["sorryServer", "port"], `port must equal the service port (${v.port}) with forwarding "${fwd}": the packet is not rewritten (omit port)`);
  }

  const flags = v.schedulerFlags;
  if (!isUnknown(flags) && !isUnknown(v.scheduler)) {
    const seen = new Map<number, string>();
    flags.forEach((f, i) => {
      if (isUnknown(f)) return;
      const only = f.startsWith("sh-") ? "sh" : f.startsWith("mh-") ? "mh" : undefined; // the one scheduler it is for
      if (only && v.scheduler !== only)
        issue(["schedulerFlags", i], `scheduler flag ${f} only applies to the ${only} scheduler, not ${v.scheduler} (ipvsadm rule)`);
      const bit = FLAG_BIT[f];
      const other = seen.get(bit);
      if (other !== undefined)
        issue(["schedulerFlags", i], other === f ? `scheduler flag ${f} is listed twice` : `scheduler flags ${other} and ${f} set the same kernel flag`);
      else seen.set(bit, f);
    });
  }
}

/** A service whose family disagrees with its address (`prefix` names a service nested in another resource). */
export function familyProblem(v: { family?: Family | Unknown; address?: string | Unknown }, prefix: string): string | undefined {
  if (v.address === undefined || isUnknown(v.address) || v.family === undefined || isUnknown(v.family)) return undefined;
  const family = parseIp(v.address)!.family;
  return family === v.family ? undefined : `${prefix}family is ${v.family} but ${prefix}address ${v.address} is ${family}`;
}

export function serviceFamily(v: { family?: Family | Unknown; address?: string | Unknown; fwmark?: number | Unknown }): Family | Unknown | undefined {
  if (v.address !== undefined) return isUnknown(v.address) ? UNKNOWN : parseIp(v.address)!.family;
  if (v.fwmark !== undefined) return v.family ?? DEFAULTS.fwmarkFamily;
  return v.family;
}

export const virtualServiceSchema = vsObject.superRefine(virtualServiceRules).transform((v) => {
  const isFwmark = v.fwmark !== undefined;
  const family = serviceFamily(v);
  const scheduler = v.scheduler;
  const p = v.persistence;
  let persistence: { timeout: number | Unknown; netmask: string | Unknown; engine?: "sip" | Unknown } | Unknown | undefined =
    isUnknown(p) ? UNKNOWN : undefined;
  if (p !== undefined && !isUnknown(p)) {
    const m = p.netmask;
    let netmask: string | Unknown;
    // The default depends on the family: while that is unknown, so is the default.
    if (isUnknown(m)) netmask = UNKNOWN;
    else if (family === undefined || isUnknown(family)) netmask = m === undefined ? UNKNOWN : String(m);
    else if (m === undefined) netmask = DEFAULTS.netmask[family];
    else netmask = family === "ipv4" ? String(m).trim() : String(v6Prefix(m)); // v6: the prefix as the helper writes it
    persistence = { timeout: p.timeout, netmask, ...(p.engine !== undefined ? { engine: p.engine } : {}) };
  }
  // The sorry server's port defaults to the service's (a fwmark service has none: its rule requires one).
  const sorry = v.sorryServer;
  const sorryServer = sorry === undefined || isUnknown(sorry) ? sorry : { ...sorry, port: (sorry.port ?? v.port) as number | Unknown };
  // Flags in kernel-bit order, named as ipvsadm prints them for this scheduler (flag-1 on sh = sh-fallback).
  let schedulerFlags = v.schedulerFlags;
  if (!isUnknown(schedulerFlags) && !isUnknown(scheduler) && !schedulerFlags.some(isUnknown))
    schedulerFlags = (schedulerFlags as SchedulerFlag[])
      .map((f) => FLAG_BIT[f])
      .sort()
      .map((bit) => canonicalFlag(bit, scheduler));
  return {
    directors: v.directors,
    family,
    ...(isFwmark
      ? { fwmark: v.fwmark }
      : { protocol: v.protocol ?? DEFAULTS.protocol, address: v.address, port: v.port }),
    scheduler,
    schedulerFlags,
    ...(persistence !== undefined ? { persistence } : {}),
    onePacket: v.onePacket,
    bindAddress: v.bindAddress,
    ...(v.drain !== undefined ? { drain: v.drain } : {}),
    // Always present, `{ type: "none" }` for no default check: real servers read it from this resource's outputs, and
    // at preview the SDK takes an absent output for an unknown one, which would show every real server as changing.
    healthCheck: v.healthCheck ?? { type: "none" as const },
    minHealthy: v.minHealthy,
    ...(sorryServer !== undefined ? { sorryServer } : {}),
    adopt: v.adopt,
    ...(v.owner !== undefined ? { owner: v.owner } : {}),
    takeover: v.takeover,
    deleteForeignRealServers: v.deleteForeignRealServers,
    ...(v.resourceUrn !== undefined ? { resourceUrn: v.resourceUrn } : {}),
  };
});

// Every input the program gives has a row, and every row but the provider's own (owner from the stack, the URN) is an
// input (compile-time check).
type Assert<T extends true> = T;
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
export type _InputsAreTheTable = Assert<Same<keyof VirtualServiceInputs, Exclude<keyof typeof VIRTUAL_SERVICE_FIELDS, "owner" | "resourceUrn">>>;
