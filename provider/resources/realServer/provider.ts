// The RealServer dynamic provider: one destination of a service, on every director of that service. Its pure part
// (diff, the EntryKind facts) and its effects (EntryEffects, which a RealServerPool's members run through too) run on
// the shared framework, provider/entries.ts. Its fields are fields.ts's table.
import type * as dynamic from "@pulumi/pulumi/dynamic";
import { hostPort } from "../../director";
import { identityChanged, normalise, renamed, result, same, serviceChange } from "../../diff";
import { drainDests } from "../../drain";
import { entryProvider, type EntryEffects, type EntryKind } from "../../entries";
import type { DirectorOps } from "../../helperClient";
import { parseRealServerId, realServerId, serviceIdPart } from "../../identity";
import type { DeleteDestOwnership } from "../../protocol";
import { checkRealServer, parseRealServer, REAL_SERVER_KEYS, REAL_SERVER_SETTINGS, UNKNOWN, type RealServerModel } from "../../schema";
import { declaredView, destKey, destProps, destSettings, healthCheckOf } from "./wire";
import { serviceKey } from "../virtualService/wire";

type Props = Record<string, unknown>;

const describe = (rs: RealServerModel) => `${hostPort(rs.address, rs.port)} of ${serviceIdPart(serviceKey(rs.service))}`;

export function diffRealServer(_id: string, olds: unknown, news: unknown): dynamic.DiffResult {
  const o = normalise(checkRealServer, REAL_SERVER_KEYS, olds);
  const n = normalise(checkRealServer, REAL_SERVER_KEYS, news);
  const service = serviceChange(o, n);
  const replaces: string[] = service.replaced ? ["service"] : [];
  if (identityChanged(o.address, n.address)) replaces.push("address");
  // A checked port is absent only while the service port it defaults to is unknown: then it is unknown too.
  if (identityChanged(o.port, n.port === undefined ? UNKNOWN : n.port)) replaces.push("port");
  const changed = service.directorsChanged || renamed(o, n) || REAL_SERVER_SETTINGS.some((k) => !same(o[k], n[k]));
  return result(replaces, changed);
}

export const realServerKind: EntryKind<RealServerModel> = {
  resource: "RealServer",
  parse: parseRealServer,
  describe,
  id: (rs) => realServerId(serviceKey(rs.service), destKey(rs), rs.service.directors),
  directors: (rs) => rs.service.directors,
  withDirectors: (props, directors) => ({ ...props, service: { ...(props.service as Props), directors } }),
  check: checkRealServer,
  diff: diffRealServer,
  fromId,
};

export const realServerEffects: EntryEffects<RealServerModel> = {
  ensure: async (ops, rs, onExisting, formerOwner, formerHolder) => {
    try {
      // holder: the resource holding the dest within the stack (a RealServer, or a RealServerPool for its members);
      // formerHolder: its URN before a rename with aliases.
      const ownership = { owner: rs.owner, formerOwner, takeover: rs.takeover, holder: rs.resourceUrn, formerHolder };
      // The check in effect goes every time (null when none), so dropping one clears the ledger's record.
      return await ops.ensureDest(serviceKey(rs.service), { ...destKey(rs), ...destSettings(rs) }, onExisting, ownership, healthCheckOf(rs));
    } catch (e) {
      if ((e as { code?: string }).code === "SERVICE_NOT_FOUND")
        throw new Error(
          `${(e as Error).message} — the VirtualService is missing on this director (removed out of band?): run pulumi refresh, then pulumi up recreates it`,
        );
      throw e;
    }
  },
  remove: async (ops, rs, formerHolder) => {
    const svc = serviceKey(rs.service);
    const key = destKey(rs);
    const ownership: DeleteDestOwnership = { owner: rs.owner, holder: rs.resourceUrn, formerHolder };
    if (rs.drain) {
      // The quiesce carries the ownership too: a dest another stack or resource holds is refused (OWNED) before its
      // weight changes.
      await drainDests(quiescingAs(ops, ownership), svc, async () => [await ops.getDest(svc, key)].flatMap((d) => d ?? []), rs.drain.timeoutSeconds, { urn: rs.resourceUrn });
    }
    await ops.deleteDest(svc, key, ownership);
  },
  // From the director's memoized dump, like VirtualService's read; the drain above reads live counters instead. A real
  // server the health checker depooled reads at its declared weight (health, not drift).
  read: async (ops, rs) => {
    const d = (await ops.table()).dest(serviceKey(rs.service), destKey(rs));
    return d ? destProps(declaredView(d), { forwarding: rs.forwarding }) : null;
  },
};

/** ops whose ensureDest (a drain's quiesce) carries `ownership`, so the helper checks it before the weight changes. */
export function quiescingAs(ops: DirectorOps, ownership: DeleteDestOwnership): DirectorOps {
  return { ...ops, ensureDest: (s, d, onExisting) => ops.ensureDest(s, d, onExisting, ownership) };
}

/** `RealServer.get(name, id, { service: { directors } })`: identity from the id, settings from the kernel. */
function fromId(id: string, props: Props): Props {
  if (props.address !== undefined) return props;
  const { service, dest } = parseRealServerId(id);
  const directors = (props.service as Props | undefined)?.directors;
  if (directors === undefined)
    throw new Error(`RealServer.get(${JSON.stringify(id)}): pass service.directors (how to reach them) in the state argument`);
  // A dest of the other family can only be a tunnel dest; say so before the kernel's settings are read, or the
  // family rule refuses the defaults (forwarding "nat") and get() of a mixed-family tunnel dest fails.
  const mixed = (dest.address.includes(":") ? "ipv6" : "ipv4") !== service.family;
  return { ...props, ...dest, ...(mixed && props.forwarding === undefined ? { forwarding: "tunnel" } : {}), service: { ...service, directors } };
}

export const realServerProvider = entryProvider(realServerKind, realServerEffects);
