// RealServerHost rules (issue 28): the host behind DR real servers, reached over SSH like a director, and the VIPs
// it must accept (PROTOCOL.md "Real server hosts"). Every rule is checked here, at preview, naming the field.
import { z } from "zod";
import type { Director } from "../../director";
import { check, parse, type CheckResult } from "../../schema/check";
import { directorSchema, upgradeState } from "../../schema/director";
import { ownerSchema } from "../../schema/owner";
import { isUnknown, rule, u, UNKNOWN, type Unknown } from "../../schema/unknown";
import { int, ipAddress, oneOf, TUNNEL_TYPES } from "../../schema/values";

export const HOST_FORWARDING = ["dr", "tunnel"] as const;
export type HostForwarding = (typeof HOST_FORWARDING)[number];

/** What the helper sets for dr with an IPv4 VIP (its value on conf/all: the kernel applies the larger of all and the interface's). */
export const DR_SYSCTLS: Readonly<Record<string, number>> = { "net.ipv4.conf.all.arp_announce": 2, "net.ipv4.conf.all.arp_ignore": 1 };

/** The tunnel types RealServerHost prepares, each with the fallback device its module creates, where the VIPs go. */
export const TUNNEL_DEVICES = { ipip: "tunl0", gre: "gre0" } as const;
export type HostTunnelType = keyof typeof TUNNEL_DEVICES;

/**
 * What the helper sets for a tunnel besides: the device's rp_filter off (decapsulated packets arrive there from the
 * client, whose route leaves by another interface). `all` is loosened (2) only where it was strict: not derived.
 */
export const tunnelSysctls = (type: HostTunnelType): Record<string, number> => ({ [`net.ipv4.conf.${TUNNEL_DEVICES[type]}.rp_filter`]: 0 });

export interface RealServerHostModel {
  /** How to reach the host: a director's SSH settings (a jumpHost through the director works). */
  host: Director;
  forwarding: HostForwarding;
  /** With forwarding "tunnel": the encapsulation (ipip or gre; gue is refused at check). */
  tunnel?: { type: "ipip" | "gue" | "gre"; port?: number };
  /** Every VIP to prepare: vips, then the services' addresses, each once. */
  vips: string[];
  /** The sysctls this preparation sets, by full name: what refresh reads back. */
  sysctls: Record<string, number>;
  owner: string;
  /** The resource's URN: the holder of its record in the host's ledger. */
  resourceUrn: string;
}

/** A service as src passes it: its identity outputs. */
const serviceRef = (i: number) =>
  z
    .looseObject({ address: u(z.string()).optional(), fwmark: u(z.number()).optional() }, { error: rule(`services[${i}] must be a VirtualService`) })
    .transform((s, ctx): string | Unknown | undefined => {
      if (s.fwmark !== undefined && !isUnknown(s.fwmark)) {
        ctx.addIssue({ code: "custom", message: `services[${i}] is a fwmark service: its addresses come from the firewall rules that mark its packets; list them in vips` });
        return z.NEVER;
      }
      return s.address;
    });

const tunnelSchema = z.strictObject(
  {
    type: u(oneOf("tunnel.type", TUNNEL_TYPES)),
    port: u(int("tunnel.port", 1, 65535)).optional(),
  },
  { error: rule('tunnel must be { type: "ipip" | "gue" | "gre", port? }') },
);

export const REAL_SERVER_HOST_KEYS = ["host", "forwarding", "tunnel", "vips", "sysctls", "owner", "resourceUrn"] as const;

const required = <T extends z.ZodType>(text: string, schema: T) =>
  z
    .unknown()
    .superRefine((v, ctx) => {
      if (!v || typeof v !== "object" || Array.isArray(v)) ctx.addIssue({ code: "custom", message: v === undefined ? "is required" : text });
    })
    .pipe(schema);

export const realServerHostSchema = z
  .strictObject({
    host: u(required("host must be SSH settings: { host, user, privateKey | …, hostKey | … }", directorSchema)),
    forwarding: u(oneOf("forwarding", HOST_FORWARDING)),
    tunnel: u(tunnelSchema).optional(),
    vips: u(z.array(u(ipAddress("vips[]", "vip")), { error: rule("vips must be a list of IP addresses") })).optional(),
    services: u(z.array(z.unknown(), { error: rule("services must be a list of VirtualServices") })).optional(),
    // Derived by check from forwarding and vips; state holds it as refresh read it back (src never passes it).
    sysctls: u(z.record(z.string(), z.number(), { error: rule("sysctls must map sysctl names to numbers") })).optional(),
    owner: u(ownerSchema("owner")),
    resourceUrn: u(z.string({ error: rule("resourceUrn must be a string") })),
  })
  .transform((s, ctx) => {
    const issue = (path: (string | number)[], message: string) => ctx.addIssue({ code: "custom", path, message });
    if (s.tunnel !== undefined && s.forwarding !== "tunnel" && !isUnknown(s.forwarding))
      issue(["tunnel"], `tunnel options need forwarding "tunnel", not "${s.forwarding}"`);
    if (s.forwarding === "tunnel" && s.tunnel === undefined) issue(["tunnel"], 'tunnel is required with forwarding "tunnel": { type: "ipip" | "gre" }');
    const tunnelType = s.tunnel && !isUnknown(s.tunnel) ? s.tunnel.type : undefined;
    if (s.forwarding === "tunnel" && tunnelType === "gue")
      issue(["tunnel", "type"], `tunnel.type "gue" is not prepared by RealServerHost yet (only "ipip" and "gre"): prepare gue real servers by hand`);
    if (s.tunnel && !isUnknown(s.tunnel) && s.tunnel.port !== undefined && s.tunnel.type !== "gue" && !isUnknown(s.tunnel.type))
      issue(["tunnel", "port"], `tunnel.port is the gue UDP port: only for tunnel.type "gue", not "${s.tunnel.type}"`);
    // Each VIP once: vips in order, then the services' addresses (a service's VIP also in vips is not a mistake).
    let vips: (string | Unknown)[] | Unknown = [];
    if (isUnknown(s.vips) || isUnknown(s.services)) vips = UNKNOWN;
    else {
      const given = s.vips ?? [];
      given.forEach((v, i) => {
        const first = given.indexOf(v);
        if (!isUnknown(v) && first < i) issue(["vips", i], `vips[${i}]: ${v} is listed twice (also vips[${first}])`);
      });
      const fromServices = (s.services ?? []).map((svc, i) => {
        const r = serviceRef(i).safeParse(svc);
        if (!r.success) {
          for (const iss of r.error.issues) issue(["services", i], iss.message);
          return undefined;
        }
        return r.data;
      });
      // State read back by refresh may list none left (every VIP removed by hand): that is drift, not bad input.
      if (given.length === 0 && (s.services ?? []).length === 0 && s.sysctls === undefined)
        issue(["vips"], "give vips or services: a RealServerHost prepares at least one VIP");
      for (const v of [...given, ...fromServices]) if (v !== undefined && (isUnknown(v) || !vips.includes(v))) vips.push(v);
      const sshHost = isUnknown(s.host) ? undefined : s.host.host;
      vips.forEach((v) => {
        // ip6gre's ip6gre0 and ipip6 are other devices: not prepared (yet), so refused rather than half done.
        if (s.forwarding === "tunnel" && (tunnelType === "ipip" || tunnelType === "gre") && !isUnknown(v) && v.includes(":")) {
          const i = given.indexOf(v);
          issue(i >= 0 ? ["vips", i] : ["services"], `${v} is IPv6, and RealServerHost prepares ${tunnelType} tunnels for IPv4 only (on ${TUNNEL_DEVICES[tunnelType]})`);
        }
        if (v === sshHost && !isUnknown(v)) {
          const i = given.indexOf(v);
          issue(i >= 0 ? ["vips", i] : ["services"], `${v} is the host's own SSH address (host.host): a real server only accepts a VIP on lo, which would cut this host off; a VIP is the directors' address`);
        }
      });
    }
    const known = !isUnknown(vips) && !vips.some(isUnknown);
    const derived = !known
      ? UNKNOWN
      : {
          ...((vips as string[]).some((v) => !v.includes(":")) ? DR_SYSCTLS : {}),
          ...(s.forwarding === "tunnel" && (tunnelType === "ipip" || tunnelType === "gre") ? tunnelSysctls(tunnelType) : {}),
        };
    const sysctls = s.sysctls ?? derived;
    return {
      host: s.host,
      forwarding: s.forwarding,
      ...(s.tunnel !== undefined ? { tunnel: s.tunnel } : {}),
      vips,
      sysctls,
      owner: s.owner,
      resourceUrn: s.resourceUrn,
    };
  });

export type RealServerHostChecked = z.output<typeof realServerHostSchema>;

/** Validate and normalise RealServerHost inputs; the dynamic provider's check (pure: never connects). */
export function checkRealServerHost(_olds: unknown, news: unknown): CheckResult<RealServerHostChecked> {
  return check(realServerHostSchema, news);
}

/** Fully known, normalised RealServerHost (for create/update/read/delete); throws with every problem listed. */
export function parseRealServerHost(inputs: unknown): RealServerHostModel {
  const props = upgradeState(inputs) as Record<string, unknown> | undefined;
  // State holds the derived VIP list already (services' addresses merged in): parse it as it is.
  return parse("RealServerHost inputs", checkRealServerHost(undefined, props));
}
