// A RealServer to the helper protocol (PROTOCOL.md) and back: its dest key, its complete settings, and the kernel's
// settings in input form (what refresh writes into state). The one place that knows both directions.
import type { DestKey, DestSettings } from "../protocol";
import type { RealServerSpec } from "../schema";

type Props = Record<string, unknown>;

export function destKey(rs: Pick<RealServerSpec, "address" | "port">): DestKey {
  return { address: rs.address, port: rs.port };
}

/** A real server's settings as declared: the fields the wire's DestSettings carries (a RealServer or a pool member). */
export type DestFields = Pick<RealServerSpec, keyof DestSettings>;

/** Complete dest settings; tunnel null for non-tunnel forwarding so a SET clears an old tunnel. */
export function destSettings(rs: DestFields): Required<DestSettings> {
  const t = rs.tunnel;
  return {
    forwarding: rs.forwarding,
    weight: rs.weight,
    upperThreshold: rs.upperThreshold,
    lowerThreshold: rs.lowerThreshold,
    tunnel: rs.forwarding === "tunnel" && t ? { type: t.type, port: t.port ?? 0, checksum: t.checksum } : null,
  };
}

/**
 * The kernel's view of a dest's settings, in input form (the inverse of destSettings: `destProps(destSettings(rs))` is
 * the declared form status compares with). `current` keeps forwarding the kernel reports differently.
 */
export function destProps(d: DestSettings, current: Props): Props {
  // The kernel turns NAT/DR to one of the director's own addresses into "local": that is not drift.
  const forwarding = d.forwarding === "local" || d.forwarding === "bypass" ? current.forwarding : d.forwarding;
  const tunnel =
    forwarding === "tunnel" && d.tunnel
      ? { type: d.tunnel.type, ...(d.tunnel.type === "gue" ? { port: d.tunnel.port } : {}), checksum: d.tunnel.checksum }
      : undefined;
  return { forwarding, weight: d.weight, upperThreshold: d.upperThreshold, lowerThreshold: d.lowerThreshold, tunnel };
}
