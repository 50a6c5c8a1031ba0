// A RealServer to the helper protocol (PROTOCOL.md) and back: its dest key, its complete settings, and the kernel's
// settings in input form (what refresh writes into state). The one place that knows both directions.
// Generic over the field table's wire column (provider/resources/realServer/fields.ts DEST_WIRE): a new setting needs
// nothing here.
import type { Dest, DestKey, DestSettings, HealthCheck } from "../../protocol";
import { healthCheckWire } from "../../schema/health";
import { DEST_WIRE, type DestModel, type DestSetting } from "./fields";

type Props = Record<string, unknown>;

const WIRE_KEYS = Object.keys(DEST_WIRE) as (keyof DestSettings)[];

export function destKey(rs: Pick<DestModel, "address" | "port">): DestKey {
  return { address: rs.address, port: rs.port };
}

/** A real server's settings as declared: the fields the wire's DestSettings carries (a RealServer or a pool member). */
export type DestFields = Pick<DestModel, Exclude<DestSetting, "healthCheck">>;

/** ensureDest's healthCheck: the check in effect, complete (its port defaults to the real server's), or null for none. */
export function healthCheckOf(rs: Pick<DestModel, "healthCheck" | "port">): HealthCheck | null {
  return healthCheckWire(rs.healthCheck, rs.port);
}

/** Complete dest settings, each through its wire conversion in the field table (tunnel null for non-tunnel forwarding). */
export function destSettings(rs: DestFields): Required<DestSettings> {
  return Object.fromEntries(WIRE_KEYS.map((k) => [k, DEST_WIRE[k].to(rs)])) as Required<DestSettings>;
}

/**
 * The kernel's view of a dest's settings, in input form (the inverse of destSettings: `destProps(destSettings(rs))` is
 * the declared form status compares with). `current` keeps forwarding the kernel reports differently.
 */
export function destProps(d: DestSettings, current: Props): Props {
  // A dest setting's wire name is its input name (fields.ts checks that at compile time).
  return Object.fromEntries(WIRE_KEYS.map((k) => [k, DEST_WIRE[k].from(d, current)]));
}

/**
 * A dest as Pulumi's declarative view reads it: one the health checker holds out of the pool (weight 0, or deleted
 * and listed as declared) reads at the weight the stack declared, which the checker restores on recovery, so a
 * refresh shows no change for it and status no drift. Any other dest is the kernel's as it is: a hand edit of a
 * healthy server's weight stays drift.
 */
export function declaredView<D extends Pick<Dest, "weight" | "health">>(d: D): D {
  return d.health?.depooled ? { ...d, weight: d.health.declaredWeight } : d;
}
