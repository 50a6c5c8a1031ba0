// A real server's own fields (a dest, in the kernel's word) — a RealServer's, and each RealServerPool member's —
// annotated once, in this file:
// - doc and input type: DestInputs (src/types.ts maps it into the public RealServerSettingsArgs, doc comments
//   included, as sst derives `Input<Inputs[K]>` from one plain type);
// - role, rule and default: DEST_FIELDS (zod: the range and its message, the default check() fills in);
// - wire key and conversion: DEST_WIRE (the helper's DestSettings, provider/protocol.ts, PROTOCOL.md).
// Everything else that lists these fields derives from here: the normalised model (DestModel), the outputs of
// RealServer and of a pool member (src/), the pool's settings that decide a re-ensure, the wire mapping both ways
// (wire.ts), status's declared properties and the unit fakes. The compile-time checks at the bottom fail
// when the interface, the table and the wire mirror disagree.
import { z } from "zod";
import type { DestSettings, Tunnel } from "../../protocol";
import { field, fieldsWithRole, shapeOf, type FieldsWithRole, type OneOf } from "../../schema/fields";
import { healthCheckSchema, type HealthCheckInputs, type HealthCheckModel } from "../../schema/health";
import { isUnknown, u, type Known } from "../../schema/unknown";
import { DEFAULTS, FORWARDING, int, ipAddress, MAX_THRESHOLD, oneOf, TUNNEL_CHECKSUMS, TUNNEL_TYPES, type Forwarding, type TunnelChecksum, type TunnelType } from "../../schema/values";

/** Tunnel encapsulation for forwarding "tunnel" (ipvsadm --tun-type/--tun-port/--tun-*csum), as a program writes it. */
export interface TunnelInputs {
  /** "ipip" | "gue" (kernel ≥ 5.2) | "gre" (kernel ≥ 5.3). Default "ipip". */
  type?: OneOf<TunnelType>;
  /** UDP port of the GUE receiver, 1..65535: required for gue, not allowed for ipip and gre. */
  port?: number;
  /** gue: "nocsum" | "csum" | "remcsum"; gre: "nocsum" | "csum"; ipip: only "nocsum". Default "nocsum". */
  checksum?: OneOf<TunnelChecksum>;
}

/** A real server's address and settings: what a RealServer and each RealServerPool member take. */
export interface DestInputs {
  /** The real server's IP address (no host names). Same family as the service, unless forwarding is "tunnel". */
  address: string;
  /**
   * 0..65535. Default: the service port (0 for fwmark services = keep the packet's port). With "dr" or "tunnel" on an
   * address service it must equal the service port (packets are not rewritten), so leave it out.
   */
  port?: number;
  /** "nat" (masquerading) | "dr" (direct routing) | "tunnel". Default "nat". */
  forwarding?: OneOf<Forwarding>;
  /** 0..65535; 0 = quiesced (no new connections). Default 1. */
  weight?: number;
  /** Stop sending new connections above this many, 0..2147483647; 0 = no limit. Default 0. */
  upperThreshold?: number;
  /** Resume below this many connections, 0..upperThreshold (needs an upperThreshold). Default 0. */
  lowerThreshold?: number;
  /** Tunnel options; only with forwarding "tunnel". Default { type: "ipip" } there. */
  tunnel?: TunnelInputs;
  /**
   * This real server's health check (see HealthCheckInputs): wins over its pool's and its service's; `{ type: "none" }`
   * switches an inherited one off. Default: the pool's, else the VirtualService's, else none. As an output: the check
   * in effect (inherited ones included).
   */
  healthCheck?: HealthCheckInputs;
}

const tunnelSchema = z
  .strictObject({
    type: u(oneOf("type", TUNNEL_TYPES)).default("ipip"),
    port: u(int("port", 1, 65535)).optional(),
    checksum: u(oneOf("checksum", TUNNEL_CHECKSUMS)).optional(),
  })
  .superRefine((t, ctx) => {
    const issue = (path: string, message: string) => ctx.addIssue({ code: "custom", path: [path], message });
    if (isUnknown(t.type)) return;
    // ipvsadm: ipip has neither port nor checksum options; gue needs a port; gre has no port and no remcsum.
    if (t.type !== "gue" && t.port !== undefined) issue("port", `port is only used by gue tunnels, not ${t.type}`);
    if (t.type === "gue" && t.port === undefined) issue("port", "port (1..65535) is required for gue tunnels");
    if (t.type === "ipip" && t.checksum !== undefined && t.checksum !== "nocsum")
      issue("checksum", `checksum ${t.checksum} is not available for ipip tunnels (only gue and gre)`);
    if (t.type === "gre" && t.checksum === "remcsum") issue("checksum", "checksum remcsum is only available for gue tunnels");
  })
  .transform((t) => ({ ...t, checksum: t.checksum ?? ("nocsum" as const) }));

/**
 * Each field's role (identity: a change replaces the real server; setting: changed in place) and its rule and
 * default. Cross-field rules (lower ≤ upper, tunnel only with forwarding "tunnel", …) are schema.ts's
 * memberRules.
 */
export const DEST_FIELDS = {
  address: field("identity", u(ipAddress("address", "dest"))),
  port: field("identity", u(int("port", 0, 65535)).optional()),
  forwarding: field("setting", u(oneOf("forwarding", FORWARDING)).default(DEFAULTS.forwarding)),
  weight: field("setting", u(int("weight", 0, 65535)).default(DEFAULTS.weight)),
  upperThreshold: field("setting", u(int("upperThreshold", 0, MAX_THRESHOLD)).default(0)),
  lowerThreshold: field("setting", u(int("lowerThreshold", 0, MAX_THRESHOLD)).default(0)),
  tunnel: field("setting", u(tunnelSchema).optional()),
  // Recorded resolved (schema.ts normaliseMember): the check in effect, so a change of an inherited one is a change here.
  // Not a kernel setting: ensureDest carries it beside the dest (wire.ts healthCheckOf), the ledger records it.
  healthCheck: field("setting", u(healthCheckSchema).optional()),
} satisfies { [K in keyof DestInputs]-?: unknown };

export type DestField = keyof typeof DEST_FIELDS;
/** Every field, in table order. */
export const DEST_FIELD_NAMES = Object.keys(DEST_FIELDS) as DestField[];
/** The fields changed in place: what a pool compares to decide whether a member is ensured again. */
export const DEST_SETTING_NAMES = fieldsWithRole(DEST_FIELDS, "setting");
export type DestSetting = FieldsWithRole<typeof DEST_FIELDS, "setting">;

export const destObject = z.strictObject(shapeOf(DEST_FIELDS));
/** The fields as check() leaves them: defaults filled, any value possibly unknown at preview. */
export type DestParsed = z.output<typeof destObject>;

/** The normalised model of a real server's own fields (fully known; port resolved from the service). */
export type DestModel = Known<Omit<DestParsed, "port" | "healthCheck">> & { port: number; healthCheck?: HealthCheckModel };

type Props = Record<string, unknown>;

/** How one setting goes into the helper's DestSettings, and how the kernel's value comes back in input form. */
interface DestWire<K extends keyof DestSettings> {
  /** The declared value on the wire (complete: a SET must never fall back to "keep current" for a field we own). */
  to(rs: Pick<DestModel, DestSetting>): Required<DestSettings>[K];
  /** The kernel's value in input form; `current`: what state has (its forwarding where the kernel reports another). */
  from(d: DestSettings, current: Props): unknown;
}

const asIs = <K extends keyof DestSettings & DestSetting>(k: K): DestWire<K> => ({
  to: (rs) => rs[k] as Required<DestSettings>[K],
  from: (d) => d[k],
});

/** Each kernel setting on the wire, keyed by the wire name (PROTOCOL.md DestSettings); healthCheck goes beside the dest. */
export const DEST_WIRE: { [K in keyof DestSettings]-?: DestWire<K> } = {
  forwarding: {
    to: (rs) => rs.forwarding,
    // The kernel turns NAT/DR to one of the director's own addresses into "local": that is not drift.
    from: (d, current) => (d.forwarding === "local" || d.forwarding === "bypass" ? current.forwarding : d.forwarding),
  },
  weight: asIs("weight"),
  upperThreshold: asIs("upperThreshold"),
  lowerThreshold: asIs("lowerThreshold"),
  tunnel: {
    // null for non-tunnel forwarding, so a SET clears an old tunnel.
    to: (rs): Tunnel | null => (rs.forwarding === "tunnel" && rs.tunnel ? { type: rs.tunnel.type, port: rs.tunnel.port ?? 0, checksum: rs.tunnel.checksum } : null),
    from: (d) =>
      d.forwarding === "tunnel" && d.tunnel
        ? { type: d.tunnel.type, ...(d.tunnel.type === "gue" ? { port: d.tunnel.port } : {}), checksum: d.tunnel.checksum }
        : undefined,
  },
};

// The interface, the table and the wire mirror agree (compile-time checks): every input has a row (the `satisfies`
// above also refuses a row without an input), and the settings are exactly the wire's DestSettings and the health check.
type Assert<T extends true> = T;
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
export type _SettingsAreTheWire = Assert<Same<DestSetting, keyof DestSettings | "healthCheck">>;
export type _InputsAreTheTable = Assert<Same<keyof DestInputs, DestField>>;
