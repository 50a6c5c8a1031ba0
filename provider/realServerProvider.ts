// The RealServer dynamic provider: one destination of a service, on every director of that service.
import { hostPort } from "./director";
import { diffRealServer } from "./diff";
import { drainDests } from "./drain";
import { entryProvider, type EntryEffects, type EntryKind } from "./entries";
import type { DirectorOps } from "./helperClient";
import { parseRealServerId, realServerId, serviceIdPart } from "./identity";
import type { DeleteDestOwnership } from "./protocol";
import { checkRealServer, parseRealServer, type RealServerSpec } from "./schema";
import { destKey, destProps, destSettings } from "./wire/dest";
import { serviceKey } from "./wire/service";

type Props = Record<string, unknown>;

const describe = (rs: RealServerSpec) => `${hostPort(rs.address, rs.port)} of ${serviceIdPart(serviceKey(rs.service))}`;

export const realServerKind: EntryKind<RealServerSpec> = {
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

export const realServerEffects: EntryEffects<RealServerSpec> = {
  ensure: async (ops, rs, onExisting, formerOwner, formerHolder) => {
    try {
      // holder: the resource holding the dest within the stack (a RealServer, or a RealServerPool for its members);
      // formerHolder: its URN before a rename with aliases.
      const ownership = { owner: rs.owner, formerOwner, takeover: rs.takeover, holder: rs.resourceUrn, formerHolder };
      return await ops.ensureDest(serviceKey(rs.service), { ...destKey(rs), ...destSettings(rs) }, onExisting, ownership);
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
  // From the director's memoized dump, like VirtualService's read; the drain above reads live counters instead.
  read: async (ops, rs) => {
    const d = (await ops.table()).dest(serviceKey(rs.service), destKey(rs));
    return d ? destProps(d, { forwarding: rs.forwarding }) : null;
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
