// An in-memory stand-in for the directors' operations (provider/helperClient's DirectorOps), for unit tests of the
// entry logic in provider/entries.ts: a table per director with the helper's ensure/delete/get semantics (EXISTS,
// SERVICE_NOT_FOUND, onExisting update/fail/match), and directors that can be made unreachable. The real helper is
// tested against a real kernel in test/lab and test/integration; this only has to be faithful to PROTOCOL.md's rules.
import { directorKey, type Director } from "../../provider/director";
import type { DirectorOps } from "../../provider/helperClient";
import { HelperError, type Dest, type DestKey, type DestSpec, type OnExisting, type Service, type ServiceKey, type ServiceSpec, type Stats } from "../../provider/protocol";
import { DirectorError } from "../../provider/session";

const ZERO: Stats = { conns: 0, inPkts: 0, outPkts: 0, inBytes: 0, outBytes: 0, cps: 0, inPps: 0, outPps: 0, inBps: 0, outBps: 0 };

const serviceId = (k: ServiceKey) => ("fwmark" in k ? `fwmark/${k.family}/${k.fwmark}` : `${k.protocol}/${k.address}:${k.port}`);
const destId = (k: DestKey) => `${k.address}:${k.port}`;
const pickKey = (s: ServiceKey): ServiceKey =>
  "fwmark" in s ? { family: s.family, fwmark: s.fwmark } : { family: s.family, protocol: s.protocol, address: s.address, port: s.port };
const settingsOf = (o: object, keys: string[]) => JSON.stringify(keys.map((k) => (o as Record<string, unknown>)[k] ?? null));
const SERVICE_SETTINGS = ["scheduler", "schedulerFlags", "persistence", "persistenceEngine", "onePacket"];
const DEST_SETTINGS = ["forwarding", "weight", "upperThreshold", "lowerThreshold", "tunnel"];

interface Table {
  services: Map<string, { service: Service; dests: Map<string, Dest> }>;
}

export class FakeDirectors {
  private tables = new Map<string, Table>();
  /** Directors (host:port) whose operations fail as unreachable. */
  readonly down = new Set<string>();
  /** Every operation, as "host:port op entry". */
  readonly log: string[] = [];

  table(key: string): Table {
    let t = this.tables.get(key);
    if (!t) this.tables.set(key, (t = { services: new Map() }));
    return t;
  }

  /** The director's services and dests as short lines, e.g. "tcp/192.0.2.10:80 wlc" and "  10.0.0.11:8080 nat w1". */
  lines(key: string): string[] {
    return [...this.table(key).services.values()].flatMap(({ service: s, dests }) => [
      `${serviceId(s)} ${s.scheduler}`,
      ...[...dests.values()].map((d) => `  ${destId(d)} ${d.forwarding} w${d.weight}`),
    ]);
  }

  readonly opsFor = (director: Director): DirectorOps => {
    const key = directorKey(director);
    const t = this.table(key);
    const guard = (op: string, entry: string) => {
      this.log.push(`${key} ${op} ${entry}`);
      if (this.down.has(key)) throw new DirectorError("unreachable", `${director.user}@${key}`, `cannot reach ${director.user}@${key}: connect ECONNREFUSED.`);
    };
    const fail = (code: "EXISTS" | "SERVICE_NOT_FOUND", message: string) => new HelperError(key, code, message);
    const decide = (exists: boolean, same: boolean, onExisting: OnExisting, what: string) => {
      if (!exists) return "create";
      if (onExisting === "fail" || (onExisting === "match" && !same)) throw fail("EXISTS", `${what} already exists.`);
      return same ? "keep" : "set";
    };
    return {
      target: `${director.user}@${key}`,
      ensureService: async (spec: ServiceSpec, onExisting: OnExisting = "update") => {
        const id = serviceId(spec);
        guard("ensureService", id);
        const cur = t.services.get(id);
        const service: Service = {
          ...pickKey(spec),
          scheduler: spec.scheduler ?? "wlc", schedulerFlags: spec.schedulerFlags ?? [], persistence: spec.persistence ?? null,
          persistenceEngine: spec.persistenceEngine ?? "", onePacket: spec.onePacket ?? false, stats: ZERO,
        };
        const step = decide(!!cur, !!cur && settingsOf(cur.service, SERVICE_SETTINGS) === settingsOf(service, SERVICE_SETTINGS), onExisting, `service ${id}`);
        if (step === "create") t.services.set(id, { service, dests: new Map() });
        if (step === "set") cur!.service = service;
        return { changed: step !== "keep", created: step === "create", service };
      },
      deleteService: async (k) => {
        guard("deleteService", serviceId(k));
        return { changed: t.services.delete(serviceId(k)) };
      },
      getService: async (k, withDests = false) => {
        guard("getService", serviceId(k));
        const cur = t.services.get(serviceId(k));
        return cur ? { ...cur.service, ...(withDests ? { dests: [...cur.dests.values()] } : {}) } : null;
      },
      ensureDest: async (k: ServiceKey, spec: DestSpec, onExisting: OnExisting = "update") => {
        const id = `${serviceId(k)}/${destId(spec)}`;
        guard("ensureDest", id);
        const svc = t.services.get(serviceId(k));
        if (!svc) throw fail("SERVICE_NOT_FOUND", `service ${serviceId(k)} does not exist.`);
        const cur = svc.dests.get(destId(spec));
        const dest: Dest = {
          address: spec.address, port: spec.port,
          forwarding: spec.forwarding ?? cur?.forwarding ?? "dr", weight: spec.weight ?? cur?.weight ?? 1,
          upperThreshold: spec.upperThreshold ?? cur?.upperThreshold ?? 0, lowerThreshold: spec.lowerThreshold ?? cur?.lowerThreshold ?? 0,
          tunnel: spec.tunnel === undefined ? (cur?.tunnel ?? null) : spec.tunnel,
          activeConns: cur?.activeConns ?? 0, inactiveConns: 0, persistentConns: 0, stats: ZERO,
        };
        const step = decide(!!cur, !!cur && settingsOf(cur, DEST_SETTINGS) === settingsOf(dest, DEST_SETTINGS), onExisting, `real server ${id}`);
        if (step !== "keep") svc.dests.set(destId(spec), dest);
        return { changed: step !== "keep", created: step === "create", dest };
      },
      deleteDest: async (k, d) => {
        guard("deleteDest", `${serviceId(k)}/${destId(d)}`);
        return { changed: t.services.get(serviceId(k))?.dests.delete(destId(d)) ?? false };
      },
      getDest: async (k, d) => {
        guard("getDest", `${serviceId(k)}/${destId(d)}`);
        return t.services.get(serviceId(k))?.dests.get(destId(d)) ?? null;
      },
      dump: async () => {
        guard("dump", "");
        return [...t.services.values()].map((s) => ({ ...s.service, dests: [...s.dests.values()] }));
      },
      run: async (op) => {
        throw new Error(`FakeDirectors does not implement ${op.op}`);
      },
    };
  };
}
