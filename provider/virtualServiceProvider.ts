// The VirtualService dynamic provider: one IPVS service, the same on every listed director.
import { diffVirtualService } from "./diff";
import { entryProvider, type EntryKind } from "./entries";
import { parseVirtualServiceId, serviceIdPart, virtualServiceId } from "./identity";
import type { Service } from "./protocol";
import { checkVirtualService, parseVirtualService, serviceKey, serviceSettings, type VirtualService } from "./schema";

type Props = Record<string, unknown>;

/** The kernel's view of a service's settings, in input form (what refresh writes into state). */
export function serviceProps(s: Service): Props {
  const persistence = s.persistence
    ? { timeout: s.persistence.timeout, netmask: s.persistence.netmask, ...(s.persistenceEngine ? { engine: s.persistenceEngine } : {}) }
    : undefined;
  return { scheduler: s.scheduler, schedulerFlags: s.schedulerFlags, persistence, onePacket: s.onePacket };
}

const kind: EntryKind<VirtualService> = {
  resource: "VirtualService",
  parse: parseVirtualService,
  describe: (vs) => serviceIdPart(serviceKey(vs)),
  id: (vs) => virtualServiceId(serviceKey(vs), vs.directors),
  directors: (vs) => vs.directors,
  withDirectors: (props, directors) => ({ ...props, directors }),
  ensure: (ops, vs, onExisting) => ops.ensureService({ ...serviceKey(vs), ...serviceSettings(vs) }, onExisting),
  remove: async (ops, vs) => {
    await ops.deleteService(serviceKey(vs));
  },
  read: async (ops, vs) => {
    const s = await ops.getService(serviceKey(vs));
    return s ? serviceProps(s) : null;
  },
  adoptHint: "It was not created by this stack: set adopt: true to take it over, or remove it first.",
  check: checkVirtualService,
  diff: diffVirtualService,
  fromId,
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

export const virtualServiceProvider = entryProvider(kind);
