// A DirectorSettings to the helper protocol (PROTOCOL.md "Director settings ops") and back: the managed set as
// ensureSettings takes it, the sysctls getSettings is asked for, and the kernel's values in input form (what refresh
// writes into state and what `pulumi-ipvs status` compares). The one place that knows both directions.
import { withoutUndefined } from "../../entries";
import type { Daemon, OpResults, SettingsSpec, SysctlValue } from "../../protocol";
import { IP_FORWARD, SYSCTLS, type DirectorSettingsModel, type SyncDaemonModel, type SysctlDef } from "../../schema";

type Props = Record<string, unknown>;
/** The kernel's settings as getSettings answers (the declared sysctls, every timeout, the running daemons). */
export type KernelSettings = OpResults["getSettings"]["settings"];

function sysctlToWire(d: SysctlDef, v: unknown): SysctlValue {
  if (d.bool) return v ? 1 : 0;
  if (d.kind === "pair") {
    const p = v as { threshold: number; period: number };
    return [p.threshold, p.period];
  }
  return v as number | string;
}

/** The kernel's value in input form. A defense mode's automatic 1 and 2 are one mode: the declared one is reported. */
function sysctlFromWire(d: SysctlDef, raw: SysctlValue | undefined, declared: unknown): unknown {
  if (raw === undefined) return undefined;
  if (d.bool) return raw !== 0;
  if (d.kind === "pair") return Array.isArray(raw) ? { threshold: raw[0], period: raw[1] } : raw;
  if (d.defense && (raw === 1 || raw === 2) && (declared === 1 || declared === 2)) return declared;
  return raw;
}

const sameSet = (a: number[], b: number[]) => a.length === b.length && a.every((p) => b.includes(p));

function daemonToWire(d: SyncDaemonModel): Daemon {
  return withoutUndefined({ state: d.state, interface: d.interface, syncId: d.syncId, maxLen: d.maxLength, group: d.group, port: d.port, ttl: d.ttl });
}

/** The managed set as ensureSettings takes it: sysctls by full name, only the given timeouts, the declared daemons. */
export function settingsWire(s: DirectorSettingsModel): SettingsSpec {
  const sysctls: Record<string, SysctlValue> = {};
  const add = (defs: Record<string, SysctlDef>, given: object) => {
    for (const [k, v] of Object.entries(given)) if (v !== undefined) sysctls[defs[k]!.name] = sysctlToWire(defs[k]!, v);
  };
  add(SYSCTLS, s.sysctls);
  add(IP_FORWARD, s.ipForward ?? {});
  const t = s.timeouts;
  return {
    sysctls,
    ...(t ? { timeouts: withoutUndefined({ tcp: t.tcp, tcpfin: t.tcpFin, udp: t.udp }) } : {}),
    daemons: s.syncDaemons.map(daemonToWire),
    ...(s.ftp ? { ftp: { ports: [...s.ftp.ports] } } : {}),
    // Recorded with the settings, for the health checker's unit; not a kernel item (read keeps the declared value).
    ...(s.healthMetricsDirectory !== undefined ? { healthMetricsDirectory: s.healthMetricsDirectory } : {}),
  };
}

/** The full names of the sysctls `s` manages (what read asks the kernel for). */
export const managedSysctls = (s: DirectorSettingsModel): string[] => Object.keys(settingsWire(s).sysctls);

/**
 * The managed items as the kernel has them, in props form: each declared sysctl, timeout and daemon field with the
 * kernel's value. A declared daemon that is not running is left out, so the next diff sees it missing.
 */
export function settingsProps(s: DirectorSettingsModel, real: KernelSettings): Props {
  const section = <T extends Record<string, SysctlDef>>(defs: T, declared: Partial<Record<keyof T, unknown>>) =>
    Object.fromEntries(
      Object.entries(declared).flatMap(([k, v]) => {
        const d = defs[k as keyof T]!;
        const got = sysctlFromWire(d, real.sysctls[d.name], v);
        return got === undefined ? [] : [[k, got]];
      }),
    );
  const timeouts = s.timeouts && {
    ...(s.timeouts.tcp !== undefined ? { tcp: real.timeouts.tcp } : {}),
    ...(s.timeouts.tcpFin !== undefined ? { tcpFin: real.timeouts.tcpfin } : {}),
    ...(s.timeouts.udp !== undefined ? { udp: real.timeouts.udp } : {}),
  };
  const syncDaemons = s.syncDaemons.flatMap((d) => {
    const r = real.daemons.find((x) => x.state === d.state);
    if (!r) return [];
    return [{
      state: r.state, interface: r.interface, syncId: r.syncId,
      ...(d.maxLength !== undefined ? { maxLength: r.maxLen } : {}),
      ...(d.group !== undefined ? { group: r.group } : {}),
      ...(d.port !== undefined ? { port: r.port } : {}),
      ...(d.ttl !== undefined ? { ttl: r.ttl } : {}),
    }];
  });
  return {
    ...(timeouts ? { timeouts } : {}),
    syncDaemons,
    sysctls: section(SYSCTLS, s.sysctls),
    ...(s.ipForward ? { ipForward: section(IP_FORWARD, s.ipForward) } : {}),
    // Not loaded: undefined, so read's merge over the declared props drops it and the next diff sees it missing. The
    // kernel's order is the load order, which is the declared one (a load with the same ports in another order is no
    // change to the module, so none to the diff).
    ...(s.ftp ? { ftp: real.ftp && { ports: sameSet(s.ftp.ports, real.ftp.ports) ? s.ftp.ports : real.ftp.ports } } : {}),
  };
}
