// The RealServerHost dynamic provider: the host behind DR real servers (issue 28), prepared by the helper over the
// same SSH session code as a director (PROTOCOL.md "Real server hosts"; the host needs no IPVS). The helper records
// per resource what it changed and the values it found, counted across resources and stacks on that host.
//
// - create / update send ensureHost with the complete VIP list: what the resource stopped listing is put back.
//   dr puts the VIPs on lo; tunnel (ipip) on tunl0, with its module, the device up and rp_filter relaxed there.
// - read reports the VIPs still on lo and the sysctls' current values, so refresh shows a removed VIP or a reset
//   sysctl as drift, which the next `up` heals; no record on the host = gone.
// - a change of the host (host:port) replaces, deleting first (the old host gets its values back); anything else,
//   credentials included, updates in place.
import type * as dynamic from "@pulumi/pulumi/dynamic";
import { canonical, normalise } from "../../diff";
import { directorKey, endpointLabel, type Director } from "../../director";
import { echo, errorText, initFailure, withoutUndefined, type OpsFor } from "../../entries";
import { directorOps } from "../../helperClient";
import { HelperError, type HostSpec, type HostState } from "../../protocol";
import { isUnknown } from "../../schema";
import { reachedNothing } from "../../session";
import { checkRealServerHost, parseRealServerHost, REAL_SERVER_HOST_KEYS, type RealServerHostModel } from "./schema";

type Props = Record<string, unknown>;

const RESOURCE = "RealServerHost";

/** "realserverhost@203.0.113.11:22". */
export const realServerHostId = (d: Pick<Director, "host" | "port">) => `realserverhost@${directorKey(d)}`;

const normalised = (state: unknown) => normalise(checkRealServerHost, REAL_SERVER_HOST_KEYS, state);

function keyOf(d: unknown): string | undefined {
  if (!d || typeof d !== "object") return undefined;
  const { host, port } = d as Props;
  return typeof host === "string" && typeof port === "number" && !isUnknown(host) ? directorKey({ host, port }) : undefined;
}

/** Replace when the host (host:port) changes or is not known yet; anything else changes in place. */
export function diffRealServerHost(_id: string, olds: unknown, news: unknown): dynamic.DiffResult {
  const o = normalised(olds);
  const n = normalised(news);
  const moved = keyOf(n.host) === undefined || keyOf(o.host) !== keyOf(n.host);
  const changed = REAL_SERVER_HOST_KEYS.some((k) => canonical(o[k]) !== canonical(n[k]));
  return { changes: moved || changed, replaces: moved ? ["host"] : [], deleteBeforeReplace: true };
}

function failure(host: Director, what: string, e: unknown): string {
  return `${RESOURCE} on ${endpointLabel(host)}: ${what} failed: ${errorText(e)}`;
}

/** A failure that changed nothing on the host: a refusal, or one before the op reached it. */
const changedNothing = (e: unknown) => reachedNothing(e) || (e instanceof HelperError && e.code === "BAD_REQUEST");

async function ensure(opsFor: OpsFor, h: RealServerHostModel): Promise<void> {
  const host: HostSpec = h.forwarding === "tunnel" ? { forwarding: "tunnel", tunnel: { type: "ipip" }, vips: h.vips } : { forwarding: "dr", vips: h.vips };
  await opsFor(h.host).run({ op: "ensureHost", owner: h.owner, holder: h.resourceUrn, host });
}

/** The prepared items as the host has them, in props form: the VIPs still on lo (in declared order), the sysctls. */
export function hostProps(h: RealServerHostModel, real: Pick<HostState, "vips" | "sysctls">): Props {
  const present = new Set(real.vips.filter((v) => v.present).map((v) => v.address));
  return { vips: h.vips.filter((v) => present.has(v)), sysctls: Object.fromEntries(Object.keys(h.sysctls).map((k) => [k, real.sysctls[k]])) };
}

/**
 * The host's prepared items as they are now (getHost), or null when the host has no record of this resource: the one
 * read of a host, for refresh and for `pulumi-ipvs status`. Throws naming the host when it cannot be read.
 */
export async function readHost(opsFor: OpsFor, h: RealServerHostModel): Promise<HostState | null> {
  try {
    return (await opsFor(h.host).run({ op: "getHost", owner: h.owner, holder: h.resourceUrn })).host;
  } catch (e) {
    throw new Error(failure(h.host, "read", e));
  }
}

/** The RealServerHost provider; `opsFor` reaches a host's operations (unit tests pass in-memory hosts). */
export function makeRealServerHostProvider(opsFor: OpsFor = directorOps): dynamic.ResourceProvider {
  return {
    check: async (_olds, news) => {
      const r = checkRealServerHost(undefined, news);
      return { inputs: withoutUndefined(r.inputs), failures: r.failures };
    },
    diff: async (id, olds, news) => diffRealServerHost(id, olds, news),
    create: async (inputs) => {
      const h = parseRealServerHost(inputs);
      const id = realServerHostId(h.host);
      try {
        await ensure(opsFor, h);
      } catch (e) {
        if (changedNothing(e)) throw new Error(failure(h.host, "create", e));
        // Maybe partly applied and recorded on the host: keep the resource so the next up converges and destroy puts back.
        throw initFailure(failure(h.host, "create", e), id, echo(inputs), inputs.__provider);
      }
      return { id, outs: withoutUndefined(echo(inputs)) };
    },
    update: async (id, olds, news) => {
      const h = parseRealServerHost(news);
      try {
        await ensure(opsFor, h);
      } catch (e) {
        if (changedNothing(e)) throw new Error(failure(h.host, "update", e));
        throw initFailure(failure(h.host, "update", e), id, { ...echo(olds), host: news.host }, news.__provider);
      }
      return { outs: withoutUndefined(echo(news)) };
    },
    read: async (id, props) => {
      const h = parseRealServerHost(props);
      const real = await readHost(opsFor, h);
      if (!real) return { id: "" };
      return { id, props: withoutUndefined({ ...echo(normalised(props)), ...hostProps(h, real) }) };
    },
    delete: async (_id, props) => {
      const h = parseRealServerHost(props);
      try {
        await opsFor(h.host).run({ op: "deleteHost", owner: h.owner, holder: h.resourceUrn });
      } catch (e) {
        throw new Error(failure(h.host, "delete", e));
      }
    },
  };
}

export const realServerHostProvider = makeRealServerHostProvider();
