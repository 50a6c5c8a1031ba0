// The typed operations the providers call on one director, over its pooled session and helper client.
import type { Director } from "../director";
import type {
  DeleteServiceOwnership,
  Dest,
  DestKey,
  DestSpec,
  EnsureOwnership,
  OnExisting,
  Op,
  OpResults,
  ResultOf,
  Service,
  ServiceKey,
  ServiceSpec,
} from "../protocol";
import { sessionFor } from "../session";
import { helperClientFor, type HelperStats } from "./client";

export interface DirectorOps {
  /** user@host:port */
  readonly target: string;
  // `ownership`: the ledger fields (PROTOCOL.md "Ownership ledger"); without an owner the ledger is not involved.
  ensureService(service: ServiceSpec, onExisting?: OnExisting, ownership?: EnsureOwnership): Promise<OpResults["ensureService"]>;
  deleteService(service: ServiceKey, ownership?: DeleteServiceOwnership): Promise<OpResults["deleteService"]>;
  getService(service: ServiceKey, withDests?: boolean): Promise<Service | null>;
  ensureDest(service: ServiceKey, dest: DestSpec, onExisting?: OnExisting, ownership?: EnsureOwnership): Promise<OpResults["ensureDest"]>;
  deleteDest(service: ServiceKey, dest: DestKey, ownership?: { owner?: string }): Promise<OpResults["deleteDest"]>;
  getDest(service: ServiceKey, dest: DestKey): Promise<Dest | null>;
  dump(): Promise<Service[]>;
  /** Any protocol operation; resolves to its result fields, rejects with HelperError or DirectorError. */
  run<O extends Op>(op: O): Promise<ResultOf<O>>;
}

/**
 * The ownership fields as sent: only the ones that say something (an owner, a formerOwner other than it, a flag that
 * is true), so an op of state from before the ledger carries none, as protocol 1 callers before it did.
 */
export function ownershipFields<O extends EnsureOwnership & DeleteServiceOwnership>(o: O | undefined): Partial<O> {
  if (o?.owner === undefined) return {};
  return Object.fromEntries(
    Object.entries(o).filter(([k, v]) => v !== undefined && v !== false && !(k === "formerOwner" && v === o.owner)),
  ) as Partial<O>;
}

/** Operations on `director` through its pooled session and helper. */
export function directorOps(director: Director): DirectorOps {
  const client = helperClientFor(sessionFor(director));
  return {
    target: client.session.target,
    ensureService: (service, onExisting = "update", ownership) =>
      client.run({ op: "ensureService", service, onExisting, ...ownershipFields(ownership) }),
    deleteService: (service, ownership) => client.run({ op: "deleteService", service, ...ownershipFields(ownership) }),
    getService: async (service, withDests = false) => (await client.run({ op: "getService", service, withDests })).service,
    ensureDest: (service, dest, onExisting = "update", ownership) =>
      client.run({ op: "ensureDest", service, dest, onExisting, ...ownershipFields(ownership) }),
    deleteDest: (service, dest, ownership) => client.run({ op: "deleteDest", service, dest, ...ownershipFields(ownership) }),
    getDest: async (service, dest) => (await client.run({ op: "getDest", service, dest })).dest,
    dump: async () => (await client.run({ op: "dump" })).services,
    run: (op) => client.run(op),
  };
}

export function helperStats(director: Director): HelperStats {
  return { ...helperClientFor(sessionFor(director)).stats };
}
