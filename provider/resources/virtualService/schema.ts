// VirtualService rules (ipvsadm's, reference/ipvs-netlink.md §4): its field table, the cross-field rules and the
// normalisation (defaults filled, IPv6 compressed, scheduler flags named as ipvsadm prints them).
import * as net from "node:net";
import { z } from "zod";
import type { SchedulerFlag } from "../../protocol";
import { directorsSchema } from "../../schema/director";
import { field, fieldsWithRole, shapeOf } from "../../schema/fields";
import { ownerSchema } from "../../schema/owner";
import { isUnknown, u, UNKNOWN, type Unknown } from "../../schema/unknown";
import { bool, DEFAULTS, drainSchema, FAMILIES, int, ipAddress, oneOf, parseIp, PROTOCOLS, SCHEDULER_FLAGS, SCHEDULERS, type Family } from "../../schema/values";

const persistenceSchema = z.strictObject({
  timeout: u(int("timeout", 1, 2678400)).default(DEFAULTS.persistenceTimeout),
  // Form depends on the family (dotted mask / prefix), checked in the service rules.
  netmask: u(z.union([z.string(), z.number()], { error: "netmask must be a string (IPv4 mask) or a number (IPv6 prefix)" })).optional(),
  engine: u(z.literal("sip", { error: 'engine must be "sip" (the only persistence engine)' })).optional(),
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
  drain: field("setting", u(drainSchema).optional()),
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
    ...(v.drain !== undefined ? { drain: v.drain } : {}),
    adopt: v.adopt,
    ...(v.owner !== undefined ? { owner: v.owner } : {}),
    takeover: v.takeover,
    deleteForeignRealServers: v.deleteForeignRealServers,
    ...(v.resourceUrn !== undefined ? { resourceUrn: v.resourceUrn } : {}),
  };
});
