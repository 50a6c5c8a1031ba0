// The typed operations the providers call on one director, over its pooled session and helper client.
import type { Director } from "../director";
import type { Dest, DestKey, DestSpec, OnExisting, Op, OpResults, ResultOf, Service, ServiceKey, ServiceSpec } from "../protocol";
import { sessionFor } from "../session";
import { helperClientFor, type HelperStats } from "./client";

export interface DirectorOps {
  /** user@host:port */
  readonly target: string;
  ensureService(service: ServiceSpec, onExisting?: OnExisting): Promise<OpResults["ensureService"]>;
  deleteService(service: ServiceKey): Promise<OpResults["deleteService"]>;
  getService(service: ServiceKey, withDests?: boolean): Promise<Service | null>;
  ensureDest(service: ServiceKey, dest: DestSpec, onExisting?: OnExisting): Promise<OpResults["ensureDest"]>;
  deleteDest(service: ServiceKey, dest: DestKey): Promise<OpResults["deleteDest"]>;
  getDest(service: ServiceKey, dest: DestKey): Promise<Dest | null>;
  dump(): Promise<Service[]>;
  /** Any protocol operation; resolves to its result fields, rejects with HelperError or DirectorError. */
  run<O extends Op>(op: O): Promise<ResultOf<O>>;
}

/** Operations on `director` through its pooled session and helper. */
export function directorOps(director: Director): DirectorOps {
  const client = helperClientFor(sessionFor(director));
  return {
    target: client.session.target,
    ensureService: (service, onExisting = "update") => client.run({ op: "ensureService", service, onExisting }),
    deleteService: (service) => client.run({ op: "deleteService", service }),
    getService: async (service, withDests = false) => (await client.run({ op: "getService", service, withDests })).service,
    ensureDest: (service, dest, onExisting = "update") => client.run({ op: "ensureDest", service, dest, onExisting }),
    deleteDest: (service, dest) => client.run({ op: "deleteDest", service, dest }),
    getDest: async (service, dest) => (await client.run({ op: "getDest", service, dest })).dest,
    dump: async () => (await client.run({ op: "dump" })).services,
    run: (op) => client.run(op),
  };
}

export function helperStats(director: Director): HelperStats {
  return { ...helperClientFor(sessionFor(director)).stats };
}
