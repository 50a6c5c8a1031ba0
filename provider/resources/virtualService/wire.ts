// A VirtualService to the helper protocol (PROTOCOL.md) and back: its kernel key, its complete settings, and the
// kernel's settings in input form (what refresh writes into state). The one place that knows both directions.
import type { BindAddress, Service, ServiceHealth, ServiceKey, ServiceSettings } from "../../protocol";
import type { ServiceIdentity, VirtualServiceModel } from "../../schema";

type Props = Record<string, unknown>;

/** Every wire service setting (a record, so one missing from protocol.ts's ServiceSettings is a compile error). */
const ON_THE_WIRE: { [K in keyof ServiceSettings]-?: true } = { scheduler: true, schedulerFlags: true, persistence: true, persistenceEngine: true, onePacket: true };
/** The settings a service SET carries and a read-back compares (what the unit fake compares too). */
export const SERVICE_SETTING_KEYS = Object.keys(ON_THE_WIRE) as (keyof ServiceSettings)[];

export function serviceKey(s: ServiceIdentity): ServiceKey {
  return s.fwmark !== undefined
    ? { family: s.family, fwmark: s.fwmark }
    : { family: s.family, protocol: s.protocol, address: s.address, port: s.port };
}

/** The complete desired settings (the helper's SET must never fall back to "keep current" for a field we own). */
export function serviceSettings(vs: VirtualServiceModel): Required<ServiceSettings> {
  return {
    scheduler: vs.scheduler,
    schedulerFlags: [...vs.schedulerFlags],
    persistence: vs.persistence ? { timeout: vs.persistence.timeout, netmask: vs.persistence.netmask } : null,
    persistenceEngine: vs.persistence?.engine ?? "",
    onePacket: vs.onePacket,
  };
}

/**
 * ensureService's health fields, complete: minHealthy always (its default "50%" too, so a check any stack adds later
 * is bounded by it), the sorry server or null (clears one the ledger records).
 */
export function serviceHealth(vs: VirtualServiceModel): ServiceHealth {
  return { minHealthy: vs.minHealthy, sorryServer: vs.sorryServer ?? null };
}

/**
 * The kernel's view of a service's settings, in input form (the inverse of serviceSettings:
 * `serviceProps(serviceSettings(vs))` is the declared form status compares with).
 */
export function serviceProps(s: ServiceSettings): Props {
  const persistence = s.persistence
    ? { timeout: s.persistence.timeout, netmask: s.persistence.netmask, ...(s.persistenceEngine ? { engine: s.persistenceEngine } : {}) }
    : undefined;
  return { scheduler: s.scheduler, schedulerFlags: s.schedulerFlags, persistence, onePacket: s.onePacket };
}

/**
 * A service's bound address as read back, in input form: what the director's ledger records for it while the address
 * is on its interface; false when not bound or removed by hand (drift, which the next up heals).
 */
export function boundProps(s: Pick<Service, "bindAddress">): BindAddress {
  const b = s.bindAddress;
  if (!b || b.present !== true) return false;
  return b.dummy ? true : { interface: b.interface };
}
