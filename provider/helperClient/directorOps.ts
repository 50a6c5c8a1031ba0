// The typed operations the providers call on one director, over its pooled session and helper client.
import { hostPort, type Director } from "../director";
import { serviceIdPart } from "../identity";
import type {
  BindAddress,
  DeleteDestOwnership,
  DeleteServiceOwnership,
  Dest,
  DestKey,
  DestSpec,
  EnsureOwnership,
  HealthCheck,
  OnExisting,
  Op,
  OpResults,
  ResultOf,
  Service,
  ServiceHealth,
  ServiceKey,
  ServiceSpec,
} from "../protocol";
import { sessionFor } from "../session";
import { helperClientFor, READ_ONLY, type HelperClient, type HelperStats } from "./client";

/** A director's whole IPVS table as one `dump` answered it, with lookups by key. */
export interface DirectorTable {
  /** Every service, each with its dests, sorted like `ipvsadm -Sn`. */
  readonly services: readonly Service[];
  /** The service (with its dests), or null when absent; like getService(key, true) at the time of the dump. */
  service(key: ServiceKey): Service | null;
  /** The dest, or null when it or its service is absent; like getDest at the time of the dump. */
  dest(service: ServiceKey, dest: DestKey): Dest | null;
}

export interface DirectorOps {
  /** user@host:port */
  readonly target: string;
  // `ownership`: the ledger fields (PROTOCOL.md "Ownership ledger"); without an owner the ledger is not involved.
  // `bindAddress`: where the service's address goes on the director (PROTOCOL.md "Bound addresses"); absent = false.
  /** `health`: minHealthy and the sorry server, recorded by the ledger, so sent only with an owner. */
  ensureService(service: ServiceSpec, onExisting?: OnExisting, ownership?: EnsureOwnership, bindAddress?: BindAddress, health?: ServiceHealth): Promise<OpResults["ensureService"]>;
  deleteService(service: ServiceKey, ownership?: DeleteServiceOwnership): Promise<OpResults["deleteService"]>;
  getService(service: ServiceKey, withDests?: boolean): Promise<Service | null>;
  /** `healthCheck`: the check in effect (null: none), recorded by the ledger, so sent only with an owner; absent keeps the recorded one. */
  ensureDest(service: ServiceKey, dest: DestSpec, onExisting?: OnExisting, ownership?: EnsureOwnership, healthCheck?: HealthCheck | null): Promise<OpResults["ensureDest"]>;
  deleteDest(service: ServiceKey, dest: DestKey, ownership?: DeleteDestOwnership): Promise<OpResults["deleteDest"]>;
  getDest(service: ServiceKey, dest: DestKey): Promise<Dest | null>;
  dump(): Promise<Service[]>;
  /**
   * The director's table from one `dump`, shared by every caller in this process until a write goes through this
   * director's operations (any op but a pure read: ensure*, delete*, settings, …), which forgets it when sent and again
   * when answered, so no caller sees a table older than our own writes. For reads that report state (the resources'
   * read, i.e. refresh: N entries on a director cost one dump, not N reads). Changes made by others after the dump are
   * not seen, and counters in it go stale: whatever acts on live values (a drain's connection counts) uses
   * getService/getDest.
   */
  table(): Promise<DirectorTable>;
  /** Any protocol operation; resolves to its result fields, rejects with HelperError or DirectorError. */
  run<O extends Op>(op: O): Promise<ResultOf<O>>;
}

/**
 * The ownership fields as sent: only the ones that say something (an owner, a formerOwner other than it, a
 * formerHolder other than a holder sent, a flag that is true), so an op of state from before the ledger carries none, as
 * protocol 1 callers before it did.
 */
export function ownershipFields<O extends EnsureOwnership & DeleteServiceOwnership>(o: O | undefined): Partial<O> {
  if (o?.owner === undefined) return {};
  const says = (k: string, v: unknown) =>
    v !== undefined && v !== false && !(k === "formerOwner" && v === o.owner) && !(k === "formerHolder" && (o.holder === undefined || v === o.holder));
  return Object.fromEntries(Object.entries(o).filter(([k, v]) => says(k, v))) as Partial<O>;
}

function indexTable(services: Service[]): DirectorTable {
  const destsOf = (s: Service) => new Map((s.dests ?? []).map((d) => [hostPort(d.address, d.port), d]));
  const byId = new Map(services.map((s) => [serviceIdPart(s), { service: s, dests: destsOf(s) }]));
  return {
    services,
    service: (key) => byId.get(serviceIdPart(key))?.service ?? null,
    dest: (key, dest) => byId.get(serviceIdPart(key))?.dests.get(hostPort(dest.address, dest.port)) ?? null,
  };
}

/** Bumped by forgetTables(): a table memoized in an earlier epoch is not used. */
let epoch = 0;

/** The memo behind table() for one director: the pending or answered dump, until forgotten. */
export class TableMemo {
  private current?: { epoch: number; table: Promise<DirectorTable> };

  get(dump: () => Promise<Service[]>): Promise<DirectorTable> {
    if (this.current?.epoch !== epoch) {
      const table = dump().then(indexTable);
      const entry = { epoch, table };
      this.current = entry;
      // A failed dump is not kept: its callers get the error, the next caller asks again.
      table.catch(() => {
        if (this.current === entry) this.current = undefined;
      });
    }
    return this.current!.table;
  }

  forget(): void {
    this.current = undefined;
  }

  /** A write: forgotten before it is sent (no later caller joins an older dump) and once it is answered. */
  write<R>(send: () => Promise<R>): Promise<R> {
    this.forget();
    return send().finally(() => this.forget());
  }
}

/**
 * `ops` with table() over `memo`, every op that is not a pure read going through memo.write. FakeDirectors
 * (test/unit) wraps its in-memory ops with this too, so the unit tests exercise the memo the providers use.
 */
export function withTable(ops: Omit<DirectorOps, "table">, memo: TableMemo): DirectorOps {
  return {
    ...ops,
    ensureService: (...a) => memo.write(() => ops.ensureService(...a)),
    deleteService: (...a) => memo.write(() => ops.deleteService(...a)),
    ensureDest: (...a) => memo.write(() => ops.ensureDest(...a)),
    deleteDest: (...a) => memo.write(() => ops.deleteDest(...a)),
    run: (op) => (READ_ONLY.has(op.op) ? ops.run(op) : memo.write(() => ops.run(op))),
    table: () => memo.get(() => ops.dump()),
  };
}

/** One memo per helper client, i.e. per pooled director session: per director for the provider process. */
const memos = new WeakMap<HelperClient, TableMemo>();

/** Operations on `director` through its pooled session and helper. */
export function directorOps(director: Director): DirectorOps {
  const client = helperClientFor(sessionFor(director));
  let memo = memos.get(client);
  if (!memo) memos.set(client, (memo = new TableMemo()));
  return withTable({
    target: client.session.target,
    ensureService: (service, onExisting = "update", ownership, bindAddress, health) =>
      client.run({
        op: "ensureService", service, onExisting, ...ownershipFields(ownership), ...(bindAddress ? { bindAddress } : {}),
        // The helper refuses health fields without an owner (state from before the ledger has none: its first up adds it).
        ...(health && ownership?.owner !== undefined ? health : {}),
      }),
    deleteService: (service, ownership) => client.run({ op: "deleteService", service, ...ownershipFields(ownership) }),
    getService: async (service, withDests = false) => (await client.run({ op: "getService", service, withDests })).service,
    ensureDest: (service, dest, onExisting = "update", ownership, healthCheck) =>
      client.run({ op: "ensureDest", service, dest, onExisting, ...ownershipFields(ownership), ...(healthCheck !== undefined && ownership?.owner !== undefined ? { healthCheck } : {}) }),
    deleteDest: (service, dest, ownership) => client.run({ op: "deleteDest", service, dest, ...ownershipFields(ownership) }),
    getDest: async (service, dest) => (await client.run({ op: "getDest", service, dest })).dest,
    dump: async () => (await client.run({ op: "dump" })).services,
    run: (op) => client.run(op),
  }, memo);
}

/**
 * Forgets every director's memoized table. For in-process callers that change directors behind the provider's back
 * and read again (tests editing with ipvsadm between reads); the engine's provider process never needs it.
 */
export function forgetTables(): void {
  epoch++;
}

export function helperStats(director: Director): HelperStats {
  return { ...helperClientFor(sessionFor(director)).stats };
}
