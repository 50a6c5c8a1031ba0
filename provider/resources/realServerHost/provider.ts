// The RealServerHost dynamic provider: the host behind DR real servers (issue 28), prepared by the helper over the
// same SSH session code as a director (PROTOCOL.md "Real server hosts"; the host needs no IPVS). The helper records
// per resource what it changed and the values it found, counted across resources and stacks on that host.
//
// - create / update send ensureHost with the complete VIP list: what the resource stopped listing is put back.
//   dr puts the VIPs on lo; tunnel on the type's device (ipip: tunl0, gre: gre0), with its module, the device up and
//   rp_filter relaxed there.
// - read reports the VIPs still on lo and the sysctls' current values, so refresh shows a removed VIP or a reset
//   sysctl as drift, which the next `up` heals; no record on the host = gone.
// - create / update / read / delete run on provider/entries.ts as an entry on one machine (onDirector).
// - a change of the host (host:port), or of the device the VIPs go on (forwarding, tunnel type), replaces, deleting
//   first (the old host or device gets its values back); anything else, credentials included, updates in place.
import type * as dynamic from "@pulumi/pulumi/dynamic";
import { canonical, diffOnDirector, normalise } from "../../diff";
import { directorKey, type Director } from "../../director";
import { entryProvider, failureMessage, onDirector, type EntryEffects, type EntryKind, type OpsFor } from "../../entries";
import { directorOps, type DirectorOps } from "../../helperClient";
import { HelperError, type HostSpec, type HostState } from "../../protocol";
import { reachedNothing } from "../../session";
import { checkRealServerHost, parseRealServerHost, REAL_SERVER_HOST_KEYS, type HostTunnelType, type RealServerHostModel } from "./schema";

type Props = Record<string, unknown>;

/** "realserverhost@203.0.113.11:22". */
export const realServerHostId = (d: Pick<Director, "host" | "port">) => `realserverhost@${directorKey(d)}`;

const diffOnHost = diffOnDirector(checkRealServerHost, REAL_SERVER_HOST_KEYS, "host");

/** The device a preparation puts its VIPs on: lo for dr, the tunnel type's device for tunnel. */
const deviceOf = (p: Props) => canonical([p.forwarding, (p.tunnel as Props | undefined)?.type]);

/**
 * Replace when the host (host:port) changes or is not known yet, or when the VIPs move to another device (dr ↔
 * tunnel, ipip ↔ gre): the helper refuses a VIP held by another interface, so the old preparation goes first.
 * Anything else changes in place.
 */
export function diffRealServerHost(id: string, olds: unknown, news: unknown): dynamic.DiffResult {
  const d = diffOnHost(id, olds, news);
  const o = normalise(checkRealServerHost, REAL_SERVER_HOST_KEYS, olds);
  const n = normalise(checkRealServerHost, REAL_SERVER_HOST_KEYS, news);
  if (deviceOf(o) === deviceOf(n)) return d;
  return { ...d, replaces: [...(d.replaces ?? []), ...["forwarding", "tunnel"].filter((k) => canonical(o[k]) !== canonical(n[k]))] };
}

/** The prepared items as the host has them, in props form: the VIPs still on lo (in declared order), the sysctls. */
export function hostProps(h: RealServerHostModel, real: { vips: { address: string; present: boolean }[]; sysctls: Record<string, number> }): Props {
  const present = new Set(real.vips.filter((v) => v.present).map((v) => v.address));
  return { vips: h.vips.filter((v) => present.has(v)), sysctls: Object.fromEntries(Object.keys(h.sysctls).map((k) => [k, real.sysctls[k]])) };
}

/** getHost: the host's prepared items as they are now, or null when it has no record of this resource. */
const getHost = async (ops: DirectorOps, h: RealServerHostModel): Promise<HostState | null> =>
  (await ops.run({ op: "getHost", owner: h.owner, holder: h.resourceUrn })).host;

export const realServerHostKind: EntryKind<RealServerHostModel> = {
  ...onDirector("RealServerHost", "host", (h: RealServerHostModel) => h.host),
  parse: parseRealServerHost,
  id: (h) => realServerHostId(h.host),
  check: checkRealServerHost,
  diff: diffRealServerHost,
};

export const realServerHostEffects: EntryEffects<RealServerHostModel> = {
  ensure: (ops, h) => {
    const host: HostSpec =
      h.forwarding === "tunnel" ? { forwarding: "tunnel", tunnel: { type: h.tunnel!.type as HostTunnelType }, vips: h.vips } : { forwarding: "dr", vips: h.vips };
    return ops.run({ op: "ensureHost", owner: h.owner, holder: h.resourceUrn, host });
  },
  remove: async (ops, h) => {
    await ops.run({ op: "deleteHost", owner: h.owner, holder: h.resourceUrn });
  },
  // No record on the host: gone.
  read: async (ops, h) => {
    const real = await getHost(ops, h);
    return real ? hostProps(h, real) : null;
  },
  // A refusal, or a failure before the op reached the host.
  changedNothing: (e) => reachedNothing(e) || (e instanceof HelperError && e.code === "BAD_REQUEST"),
  // Maybe partly applied and recorded on the host: kept so the next up converges and destroy puts back.
  keepsPartial: true,
};

/**
 * The one read of a host outside refresh (`pulumi-ipvs status`): getHost, its failure worded as refresh words it
 * ("RealServerHost on user@host:port: read failed: …").
 */
export async function readHost(opsFor: OpsFor, h: RealServerHostModel): Promise<HostState | null> {
  try {
    return await getHost(opsFor(h.host), h);
  } catch (error) {
    throw new Error(failureMessage(realServerHostKind, h, "read", [{ director: h.host, error }], 1));
  }
}

/** The RealServerHost provider; `opsFor` reaches a host's operations (unit tests pass in-memory hosts). */
export const makeRealServerHostProvider = (opsFor: OpsFor = directorOps) => entryProvider(realServerHostKind, realServerHostEffects, opsFor);

export const realServerHostProvider = makeRealServerHostProvider();
