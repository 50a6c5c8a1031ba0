// A RealServerHost as declared (its state: the VIPs and sysctls check derived) against its host as getHost reads it
// (the provider's own read path, readHost): each VIP present or missing on its device (lo for dr, tunl0 for ipip, gre0 for gre) and
// each declared sysctl's value, compared as refresh compares them (hostProps), so status and refresh agree on drift.
// Pure: the host's answer is passed in.
import { endpointLabel, type SshEndpoint } from "../director";
import type { HostState } from "../protocol";
import { hostProps } from "../resources/realServerHost/provider";
import type { DeclaredHost } from "./state";

/** getHost's answer (null: the host has no record of this resource), or why the host could not be read. */
export type HostView = { host: HostState | null } | { error: string };

export interface HostVipReport {
  address: string;
  /** Where the host's record puts it (lo, tunl0, gre0); null when the record does not list it (declared since the last up). */
  device: string | null;
  /** missing: not on its device now (removed by hand), or not prepared at all; unknown: the host could not be read. */
  status: "ok" | "missing" | "unknown";
}

export interface HostSysctlReport {
  /** The full sysctl name: "net.ipv4.conf.all.arp_ignore", "net.ipv4.conf.tunl0.rp_filter". */
  name: string;
  status: "ok" | "differs" | "unknown";
  declared: number;
  /** The host's value (absent while unknown); null: the host has no such sysctl now (tunl0 gone with its module). */
  kernel?: number | null;
}

export interface HostReport {
  /** The RealServerHost resource's name. */
  resource: string;
  /** host:port. */
  host: string;
  user: string;
  /** The jump hosts it is reached through, first hop first ("ops@203.0.113.5:22"); absent when reached directly. */
  via?: string[];
  forwarding: "dr" | "tunnel";
  /**
   * ok: every VIP on its device, every sysctl as declared; differs: some VIP missing or sysctl otherwise; missing: the
   * host has no record of this resource (never prepared, or its record removed: `up` prepares it again); unknown: the
   * host could not be read (`error` says why).
   */
  status: "ok" | "differs" | "missing" | "unknown";
  error?: string;
  /** Every declared VIP, in declared order. */
  vips: HostVipReport[];
  /** Every sysctl the preparation sets, by name. */
  sysctls: HostSysctlReport[];
}

/** The hops before the host, first hop first: each endpoint's jumpHost is the hop before it. */
function route(h: SshEndpoint): string[] {
  const hops: string[] = [];
  for (let j = h.jumpHost; j; j = j.jumpHost) hops.unshift(endpointLabel(j));
  return hops;
}

export function hostReport(declared: DeclaredHost, view: HostView): HostReport {
  const h = declared.entry;
  const via = route(h.host);
  const base = {
    resource: declared.resource.name,
    host: `${h.host.host}:${h.host.port}`,
    user: h.host.user,
    ...(via.length ? { via } : {}),
    forwarding: h.forwarding,
  };
  const names = Object.keys(h.sysctls).sort();
  if ("error" in view || view.host === null) {
    const status = "error" in view ? "unknown" : "missing";
    return {
      ...base,
      status,
      ...("error" in view ? { error: view.error } : {}),
      vips: h.vips.map((address) => ({ address, device: null, status: status === "unknown" ? "unknown" : "missing" })),
      sysctls: names.map((name) => ({ name, status: status === "unknown" ? "unknown" : "differs", declared: h.sysctls[name]!, ...(status === "missing" ? { kernel: null } : {}) })),
    };
  }
  const real = view.host;
  // As refresh reads the host back: the declared VIPs still present, the declared sysctls' values.
  const read = hostProps(h, real) as { vips: string[]; sysctls: Record<string, number | undefined> };
  const vips = h.vips.map((address): HostVipReport => ({
    address,
    device: real.vips.find((v) => v.address === address)?.interface ?? null,
    status: read.vips.includes(address) ? "ok" : "missing",
  }));
  const sysctls = names.map((name): HostSysctlReport => {
    const kernel = read.sysctls[name] ?? null;
    return { name, status: kernel === h.sysctls[name] ? "ok" : "differs", declared: h.sysctls[name]!, kernel };
  });
  const drift = vips.some((v) => v.status !== "ok") || sysctls.some((s) => s.status !== "ok");
  return { ...base, status: drift ? "differs" : "ok", vips, sysctls };
}

/** Drift: a VIP missing, a sysctl otherwise, or no record at all (`up` heals each). Unknown is an error, not drift. */
export const hostDrifted = (r: HostReport) => r.status === "differs" || r.status === "missing";
