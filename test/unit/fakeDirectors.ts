// An in-memory stand-in for the directors' operations (provider/helperClient's DirectorOps), for unit tests of the
// entry logic in provider/entries.ts: a table per director with the helper's ensure/delete/get semantics (EXISTS,
// SERVICE_NOT_FOUND, onExisting update/fail/match), and directors that can be made unreachable. The real helper is
// tested against a real kernel in test/lab and test/integration; this only has to be faithful to PROTOCOL.md's rules.
// It keeps no ownership ledger: the log shows the ownership fields each op would send, and `refuse` makes an op fail
// with the helper's answer (OWNED, FOREIGN_DESTS, …) before it changes anything. table() is the providers' own memo
// (helperClient/directorOps withTable) over the fake's dump, so `count("dump")` shows what a refresh costs.
import { directorKey, type Director } from "../../provider/director";
import type { DirectorOps } from "../../provider/helperClient";
import { ownershipFields, TableMemo, withTable } from "../../provider/helperClient/directorOps";
import { HelperError, type DeleteServiceOwnership, type Dest, type DestKey, type DestSettings, type DestSpec, type EnsureOwnership, type OnExisting, type Service, type ServiceKey, type ServiceSpec, type Stats } from "../../provider/protocol";
import { DEST_WIRE } from "../../provider/resources/realServer/fields";
import { SERVICE_SETTING_KEYS } from "../../provider/resources/virtualService/wire";
import { DirectorError } from "../../provider/session";
import { FakeSettings } from "./fakeSettings";

const ZERO: Stats = { conns: 0, inPkts: 0, outPkts: 0, inBytes: 0, outBytes: 0, cps: 0, inPps: 0, outPps: 0, inBps: 0, outBps: 0 };

const serviceId = (k: ServiceKey) => ("fwmark" in k ? `fwmark/${k.family}/${k.fwmark}` : `${k.protocol}/${k.address}:${k.port}`);
const destId = (k: DestKey) => `${k.address}:${k.port}`;
const pickKey = (s: ServiceKey): ServiceKey =>
  "fwmark" in s ? { family: s.family, fwmark: s.fwmark } : { family: s.family, protocol: s.protocol, address: s.address, port: s.port };
const settingsOf = (o: object, keys: string[]) => JSON.stringify(keys.map((k) => (o as Record<string, unknown>)[k] ?? null));
const SERVICE_SETTINGS = SERVICE_SETTING_KEYS;
// The wire's dest settings, from the field table; a new dest's values where the spec leaves one out (as the helper does).
const DEST_SETTINGS = Object.keys(DEST_WIRE) as (keyof DestSettings)[];
const NEW_DEST: Required<DestSettings> = { forwarding: "dr", weight: 1, upperThreshold: 0, lowerThreshold: 0, tunnel: null };

interface Table {
  services: Map<string, { service: Service; dests: Map<string, Dest> }>;
}

export class FakeDirectors {
  private tables = new Map<string, Table>();
  /** Directors (host:port) whose operations fail as unreachable. */
  readonly down = new Set<string>();
  /** Every operation, as "host:port op entry", then the ownership fields as sent (JSON) when there are any. */
  readonly log: string[] = [];
  /**
   * Operations that fail with this error: the first whose key starts their log line (e.g. "host:port deleteService").
   * A helper's refusal, or a DirectorError (an op lost on the way, a host key refused, …).
   */
  readonly refuse = new Map<string, HelperError | DirectorError>();
  /** Run after an operation (not refused) whose log line starts with the key: another writer acting in between. */
  readonly after = new Map<string, () => void>();

  /** Operations logged so far whose op is `op` (e.g. "dump"), on every director or on `key` ("host:port"). */
  count(op: string, key?: string): number {
    return this.log.filter((l) => l.split(" ")[1] === op && (key === undefined || l.startsWith(`${key} `))).length;
  }

  /** Per director, the memo behind table(): the one the providers use (helperClient/directorOps withTable). */
  private memos = new Map<string, TableMemo>();

  private settingsByKey = new Map<string, FakeSettings>();
  /** The director's sysctls, timeouts, sync daemons and settings ledger record (fakeSettings.ts). */
  settings(key: string): FakeSettings {
    let s = this.settingsByKey.get(key);
    if (!s) this.settingsByKey.set(key, (s = new FakeSettings(key)));
    return s;
  }

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
    const guard = (op: string, entry: string, ownership?: EnsureOwnership & DeleteServiceOwnership) => {
      const sent = ownershipFields(ownership);
      const line = `${key} ${op} ${entry}${Object.keys(sent).length ? ` ${JSON.stringify(sent)}` : ""}`;
      this.log.push(line);
      if (this.down.has(key)) throw new DirectorError("unreachable", `${director.user}@${key}`, `cannot reach ${director.user}@${key}: connect ECONNREFUSED.`);
      const refusal = [...this.refuse].find(([prefix]) => line.startsWith(prefix));
      if (refusal) throw refusal[1];
      for (const [prefix, act] of this.after) if (line.startsWith(prefix)) queueMicrotask(act);
      return sent;
    };
    const fail = (code: "EXISTS" | "SERVICE_NOT_FOUND", message: string) => new HelperError(key, code, message);
    const decide = (exists: boolean, same: boolean, onExisting: OnExisting, what: string) => {
      if (!exists) return "create";
      if (onExisting === "fail" || (onExisting === "match" && !same)) throw fail("EXISTS", `${what} already exists.`);
      return same ? "keep" : "set";
    };
    let memo = this.memos.get(key);
    if (!memo) this.memos.set(key, (memo = new TableMemo()));
    return withTable({
      target: `${director.user}@${key}`,
      ensureService: async (spec: ServiceSpec, onExisting: OnExisting = "update", ownership) => {
        const id = serviceId(spec);
        guard("ensureService", id, ownership);
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
      deleteService: async (k, ownership) => {
        const sent = guard("deleteService", serviceId(k), ownership);
        if (sent.dryRun) return { changed: t.services.has(serviceId(k)), dests: [...(t.services.get(serviceId(k))?.dests.values() ?? [])] };
        return { changed: t.services.delete(serviceId(k)) };
      },
      getService: async (k, withDests = false) => {
        guard("getService", serviceId(k));
        const cur = t.services.get(serviceId(k));
        return cur ? { ...cur.service, ...(withDests ? { dests: [...cur.dests.values()] } : {}) } : null;
      },
      ensureDest: async (k: ServiceKey, spec: DestSpec, onExisting: OnExisting = "update", ownership) => {
        const id = `${serviceId(k)}/${destId(spec)}`;
        guard("ensureDest", id, ownership);
        const svc = t.services.get(serviceId(k));
        if (!svc) throw fail("SERVICE_NOT_FOUND", `service ${serviceId(k)} does not exist.`);
        const cur = svc.dests.get(destId(spec));
        const dest: Dest = {
          address: spec.address, port: spec.port,
          ...(Object.fromEntries(DEST_SETTINGS.map((k) => [k, spec[k] !== undefined ? spec[k] : (cur?.[k] ?? NEW_DEST[k])])) as Required<DestSettings>),
          activeConns: cur?.activeConns ?? 0, inactiveConns: 0, persistentConns: 0, stats: ZERO,
        };
        const step = decide(!!cur, !!cur && settingsOf(cur, DEST_SETTINGS) === settingsOf(dest, DEST_SETTINGS), onExisting, `real server ${id}`);
        if (step !== "keep") svc.dests.set(destId(spec), dest);
        return { changed: step !== "keep", created: step === "create", dest };
      },
      deleteDest: async (k, d, ownership) => {
        guard("deleteDest", `${serviceId(k)}/${destId(d)}`, ownership);
        return { changed: t.services.get(serviceId(k))?.dests.delete(destId(d)) ?? false };
      },
      getDest: async (k, d) => {
        guard("getDest", `${serviceId(k)}/${destId(d)}`);
        return t.services.get(serviceId(k))?.dests.get(destId(d)) ?? null;
      },
      dump: async () => {
        guard("dump", "");
        // A copy, as the helper's answer is: a memoized table must not follow later changes to the fake's table.
        return structuredClone([...t.services.values()].map((s) => ({ ...s.service, dests: [...s.dests.values()] })));
      },
      run: async (op) => {
        if (op.op === "ensureSettings" || op.op === "deleteSettings" || op.op === "getSettings") {
          const former = op.op === "ensureSettings" && op.formerOwner ? ` ${JSON.stringify({ formerOwner: op.formerOwner })}` : "";
          guard(op.op, op.op === "getSettings" ? op.sysctls.join(",") : op.owner + former);
          return this.settings(key).run(op) as never;
        }
        throw new Error(`FakeDirectors does not implement ${op.op}`);
      },
    }, memo);
  };
}
