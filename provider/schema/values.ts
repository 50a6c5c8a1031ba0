// Leaf values: IP addresses, numbers, enums and their lists, the defaults, and the small schemas the resources share.
import * as net from "node:net";
import { z } from "zod";
import type { Family, TransportProtocol } from "../protocol";
import { rule, u } from "./unknown";

export type { Family, TransportProtocol } from "../protocol";

/** Parse an IP literal strictly (no hostnames, no zone ids); IPv6 in the compressed lowercase form the kernel reports. */
export function parseIp(s: string): { family: Family; address: string } | undefined {
  if (net.isIPv4(s)) return { family: "ipv4", address: s };
  if (s.includes("%") || !net.isIPv6(s)) return undefined;
  // The WHATWG URL serializer writes IPv6 exactly as RFC 5952 (lowercase, longest zero run compressed).
  return { family: "ipv6", address: new URL(`http://[${s}]/`).hostname.slice(1, -1) };
}

/** Why an address cannot be a VIP or (role "dest") a real server, or undefined when it can (kernel wants unicast). */
function unicastProblem(family: Family, address: string, role: "vip" | "dest"): string | undefined {
  if (family === "ipv4") {
    const first = Number(address.split(".")[0]);
    if (address === "0.0.0.0") return "cannot be the unspecified address 0.0.0.0";
    // RFC 1122 "this network": no host has such an address (the kernel types it broadcast and refuses it as a dest).
    if (first === 0) return 'cannot be in 0.0.0.0/8 ("this network", RFC 1122): no host has such an address';
    if (address === "255.255.255.255") return "cannot be the broadcast address";
    if (first >= 224 && first <= 239) return "cannot be a multicast address";
    return undefined;
  }
  if (address === "::") return "cannot be the unspecified address ::";
  if (address.startsWith("ff")) return "cannot be a multicast address";
  // ::ffff:a.b.c.d would be shown differently by the kernel/helper than we normalise it; the IPv4 form is meant.
  if (/^::ffff:[0-9a-f]{1,4}:[0-9a-f]{1,4}$/.test(address)) return "is IPv4-mapped: use the plain IPv4 address";
  // A link-local address needs an interface, which a dest cannot name: the kernel refuses one that is not the director's own.
  if (role === "dest" && /^fe[89ab][0-9a-f]:/.test(address))
    return "cannot be an IPv6 link-local address (fe80::/10): the kernel refuses link-local real servers (EINVAL); use a global or unique-local address";
  return undefined;
}

export const ipAddress = (what: string, role: "vip" | "dest") =>
  z.string({ error: rule(`${what} must be an IP address`) }).transform((s, ctx) => {
    const ip = parseIp(s.trim());
    if (!ip) {
      ctx.addIssue({ code: "custom", message: `${what} must be an IPv4 or IPv6 address, not ${JSON.stringify(s)} (no host names)` });
      return z.NEVER;
    }
    const problem = unicastProblem(ip.family, ip.address, role);
    if (problem) {
      ctx.addIssue({ code: "custom", message: `${what} ${problem}` });
      return z.NEVER;
    }
    return ip.address;
  });

export const int = (what: string, min: number, max: number) =>
  z
    .number({ error: rule(`${what} must be an integer ${min}..${max}`) })
    .int({ error: `${what} must be an integer ${min}..${max}` })
    .min(min, { error: `${what} must be an integer ${min}..${max}` })
    .max(max, { error: `${what} must be an integer ${min}..${max}` });

export const bool = (what: string) => z.boolean({ error: `${what} must be true or false` });

export const oneOf = <const T extends readonly [string, ...string[]]>(what: string, values: T) =>
  z.enum(values, { error: rule(`${what} must be one of ${values.map((v) => JSON.stringify(v)).join(", ")}`) });

export const nonEmpty = (what: string) =>
  z.string({ error: rule(`${what} must be a string`) }).refine((s) => s.trim() !== "", { error: `${what} must not be empty` });

export const FAMILIES = ["ipv4", "ipv6"] as const;
export const PROTOCOLS = ["tcp", "udp", "sctp"] as const;
export const SCHEDULERS = ["rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"] as const;
export type Scheduler = (typeof SCHEDULERS)[number];
export const SCHEDULER_FLAGS = ["sh-fallback", "sh-port", "mh-fallback", "mh-port", "flag-1", "flag-2", "flag-3"] as const;
export const FORWARDING = ["nat", "dr", "tunnel"] as const;
/** How packets reach a real server, as users write it (the kernel also reports local and bypass: KernelForwarding). */
export type Forwarding = (typeof FORWARDING)[number];
export const TUNNEL_TYPES = ["ipip", "gue", "gre"] as const;
export type TunnelType = (typeof TUNNEL_TYPES)[number];
export const TUNNEL_CHECKSUMS = ["nocsum", "csum", "remcsum"] as const;
export type TunnelChecksum = (typeof TUNNEL_CHECKSUMS)[number];

export const DEFAULTS = {
  sshPort: 22,
  sshUser: "root",
  connectTimeoutSeconds: 20,
  operationTimeoutSeconds: 60,
  protocol: "tcp" as TransportProtocol,
  fwmarkFamily: "ipv4" as Family,
  scheduler: "wlc" as Scheduler,
  persistenceTimeout: 360,
  netmask: { ipv4: "255.255.255.255", ipv6: "128" } as Record<Family, string>,
  forwarding: "nat" as Forwarding,
  weight: 1,
  drainTimeoutSeconds: 300,
} as const;

export const MAX_THRESHOLD = 2147483647; // INT_MAX: the kernel compares thresholds as signed ints

/** Graceful removal: wait for connections to end before an entry goes (a VirtualService's or a RealServer's). */
export interface DrainInputs {
  /** Give up waiting for connections to end after this many seconds, 0..86400, and remove anyway. Default 300. */
  timeoutSeconds?: number;
}

/** Graceful removal (RealServer and VirtualService). */
export const drainSchema = z.strictObject({
  timeoutSeconds: u(int("timeoutSeconds", 0, 86400)).default(DEFAULTS.drainTimeoutSeconds),
});
