// A RealServer to the helper protocol (PROTOCOL.md) and back: its dest key, its complete settings, and the kernel's
// settings in input form (what refresh writes into state). The one place that knows both directions.
import type { Dest, DestKey, DestSettings } from "../protocol";
import type { RealServerSpec } from "../schema";

type Props = Record<string, unknown>;

export function destKey(rs: Pick<RealServerSpec, "address" | "port">): DestKey {
  return { address: rs.address, port: rs.port };
}

/** Complete dest settings; tunnel null for non-tunnel forwarding so a SET clears an old tunnel. */
export function destSettings(rs: RealServerSpec): Required<DestSettings> {
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
 * The kernel's view of a dest's settings, in input form (the inverse of destSettings). `current` keeps forwarding the
 * kernel reports differently.
 */
export function destProps(d: Dest, current: Props): Props {
  // The kernel turns NAT/DR to one of the director's own addresses into "local": that is not drift.
  const forwarding = d.forwarding === "local" || d.forwarding === "bypass" ? current.forwarding : d.forwarding;
  const tunnel =
    forwarding === "tunnel" && d.tunnel
      ? { type: d.tunnel.type, ...(d.tunnel.type === "gue" ? { port: d.tunnel.port } : {}), checksum: d.tunnel.checksum }
      : undefined;
  return { forwarding, weight: d.weight, upperThreshold: d.upperThreshold, lowerThreshold: d.lowerThreshold, tunnel };
}
