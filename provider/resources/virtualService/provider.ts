// The VirtualService dynamic provider: one IPVS service, the same on every listed director. Its pure part (diff, the
// EntryKind facts) and its effects (EntryEffects) run on the shared framework, provider/entries.ts.
import type * as dynamic from "@pulumi/pulumi/dynamic";
import { identityChanged, normalise, renamed, result, same, sameDirectors } from "../../diff";
import { drainDests } from "../../drain";
import { entryProvider, type EntryEffects, type EntryKind } from "../../entries";
import { parseVirtualServiceId, serviceIdPart, virtualServiceId } from "../../identity";
import type { DestKey } from "../../protocol";
import { checkVirtualService, isUnknown, parseVirtualService, SERVICE_IDENTITY, VIRTUAL_SERVICE_KEYS, VIRTUAL_SERVICE_SETTINGS, type VirtualServiceModel } from "../../schema";
import { boundProps, serviceHealth, serviceKey, serviceProps, serviceSettings } from "./wire";

type Props = Record<string, unknown>;

const destId = (d: DestKey) => `${d.address}:${d.port}`;

/** Replace when the kernel identity changes (provider/diff.ts has the decisions); directors and settings change in place. */
export function diffVirtualService(_id: string, olds: unknown, news: unknown): dynamic.DiffResult {
  const o = normalise(checkVirtualService, VIRTUAL_SERVICE_KEYS, olds);
  const n = normalise(checkVirtualService, VIRTUAL_SERVICE_KEYS, news);
  const replaces = SERVICE_IDENTITY.filter((k) => identityChanged(o[k], n[k]));
  const changed = !sameDirectors(o.directors, n.directors) || renamed(o, n) || VIRTUAL_SERVICE_SETTINGS.some((k) => !same(o[k], n[k]));
  // State written before minHealthy existed: its default ("50%") never reached the directors' ledgers, which would
  // let checks added later depool every real server. One update sends it (the kernel is not touched).
  const healthUnsent = o.owner !== undefined && !isUnknown(n.minHealthy) && (olds as Props | undefined)?.minHealthy === undefined;
  return result(replaces, changed || healthUnsent);
}

export const virtualServiceKind: EntryKind<VirtualServiceModel> = {
  resource: "VirtualService",
  parse: parseVirtualService,
  describe: (vs) => serviceIdPart(serviceKey(vs)),
  id: (vs) => virtualServiceId(serviceKey(vs), vs.directors),
  directors: (vs) => vs.directors,
  withDirectors: (props, directors) => ({ ...props, directors }),
  check: checkVirtualService,
  diff: diffVirtualService,
  fromId,
};

export const virtualServiceEffects: EntryEffects<VirtualServiceModel> = {
  ensure: (ops, vs, onExisting, formerOwner) =>
    ops.ensureService({ ...serviceKey(vs), ...serviceSettings(vs) }, onExisting, { owner: vs.owner, formerOwner, takeover: vs.takeover }, vs.bindAddress, serviceHealth(vs)),
  // The kernel drops a service's dests with it: with drain, they finish their connections first (a director removed
  // from the service, or the service deleted or replaced while real servers are still on it there). The helper refuses
  // to delete a service with real servers this stack does not own (FOREIGN_DESTS) unless deleteForeignRealServers.
  remove: async (ops, vs) => {
    const key = serviceKey(vs);
    const ownership = { owner: vs.owner, withForeignDests: vs.deleteForeignRealServers };
    if (vs.drain) {
      // Ask first (dryRun changes nothing): a delete the helper will refuse must not leave real servers quiesced. The
      // dry run lists the real servers the delete may take (this stack's, or any with deleteForeignRealServers); only
      // those are quiesced: one another stack adds after the dry run is left alone (and the delete then refuses it).
      let listed: Set<string> | undefined;
      if (vs.owner !== undefined) {
        const dry = await ops.deleteService(key, { ...ownership, dryRun: true });
        listed = new Set((dry.dests ?? []).map(destId));
      }
      const readDests = async () => ((await ops.getService(key, true))?.dests ?? []).filter((d) => listed?.has(destId(d)) ?? true);
      await drainDests(ops, key, readDests, vs.drain.timeoutSeconds, { urn: vs.resourceUrn });
    }
    await ops.deleteService(key, ownership);
  },
  // From the director's memoized dump: a refresh of N entries costs one dump per director (DirectorOps.table).
  read: async (ops, vs) => {
    const s = (await ops.table()).service(serviceKey(vs));
    return s ? { ...serviceProps(s), bindAddress: boundProps(s) } : null;
  },
};

/**
 * `VirtualService.get(name, id, { directors })` reads with only the directors in props: the identity comes from the id,
 * the settings from the kernel.
 */
function fromId(id: string, props: Props): Props {
  if (props.family !== undefined || props.address !== undefined || props.fwmark !== undefined) return props;
  const { service } = parseVirtualServiceId(id);
  if (props.directors === undefined)
    throw new Error(`VirtualService.get(${JSON.stringify(id)}): pass the directors (how to reach them) in the state argument`);
  return { ...props, ...service };
}

export const virtualServiceProvider = entryProvider(virtualServiceKind, virtualServiceEffects);
