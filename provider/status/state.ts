// What a stack declares, read from its exported state (`pulumi stack export --show-secrets`, in memory only): the
// VirtualService, RealServer and RealServerPool entries it manages, its DirectorSettings, the directors they are on,
// and its RealServerHosts (the real servers' machines, each reached over SSH like a director).
// State keeps each resource twice: its inputs (what the program last declared, which a refresh leaves alone) and its
// outputs (what the last up or refresh recorded, a refresh writing the kernel's values). Pure: no I/O.
import { directorKey, type Director } from "../director";
import type { DestKey, ServiceKey } from "../protocol";
import {
  parseDirectorSettings,
  parseRealServer,
  parseRealServerPool,
  parseVirtualService,
  type DirectorSettingsModel,
  type RealServerModel,
  type VirtualServiceModel,
} from "../schema";
import { destKey, type DestFields } from "../resources/realServer/wire";
import { serviceKey } from "../resources/virtualService/wire";
import { parseRealServerHost, type RealServerHostModel } from "../resources/realServerHost/schema";

/** The engine's marker of a secret value in an exported deployment. */
const SECRET_SIG = "4dabf18193072939515e22adb298388d";

export interface ExportedResource {
  urn: string;
  type: string;
  id?: string;
  /** Read with `get()`: the stack does not manage it. */
  external?: boolean;
  /** What the program declared (check's inputs), as of the last up. */
  inputs?: Record<string, unknown>;
  outputs?: Record<string, unknown>;
}

/**
 * Which side of state is compared with the kernel. declared: the inputs, so a hand edit stays drift after a refresh
 * (and an entry a refresh found gone is still "missing"); refreshed: the outputs, what the last up or refresh recorded.
 */
export type StateView = "declared" | "refreshed";

export interface ResourceRef {
  kind: "VirtualService" | "RealServer" | "RealServerPool" | "DirectorSettings" | "RealServerHost";
  /** The resource's name in the program (the URN's last part). */
  name: string;
  urn: string;
}

export interface DeclaredService {
  resource: ResourceRef;
  key: ServiceKey;
  entry: VirtualServiceModel;
}

/** A real server as declared, by a RealServer or as a RealServerPool member: what the kernel's dest is compared with. */
export type DestDeclaration = Pick<RealServerModel, "service" | "address" | "port"> & DestFields;

export interface DeclaredDest {
  resource: ResourceRef;
  /** What the report calls it: the RealServer's name, or a pool member's `poolMemberName`. */
  name: string;
  service: ServiceKey;
  key: DestKey;
  entry: DestDeclaration;
}

export interface DeclaredSettings {
  resource: ResourceRef;
  /** host:port. */
  director: string;
  entry: DirectorSettingsModel;
}

export interface DeclaredHost {
  resource: ResourceRef;
  /** The VIPs and sysctls as declared (check derives both), how to reach the host, its ledger record's owner and holder. */
  entry: RealServerHostModel;
}

export interface StackEntries {
  services: DeclaredService[];
  dests: DeclaredDest[];
  /** At most one per director. */
  settings: DeclaredSettings[];
  /** Every director an entry is recorded on, by host:port; the first resource naming it says how to reach it. */
  directors: Map<string, Director>;
  /** Every RealServerHost, each read on its own (two may share a host:port behind different jump hosts). */
  hosts: DeclaredHost[];
  /** Resources whose state could not be read, with why. */
  problems: string[];
  /** Every credential in the state, for redacting messages that might quote one. */
  secrets: string[];
}

/**
 * A copy of `v` with every `{ <sig>, plaintext }` secret replaced by its value. (`ciphertext` secrets — an export
 * without --show-secrets — stay as they are and fail to parse, naming the field.)
 */
export function revealSecrets(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(revealSecrets);
  if (!v || typeof v !== "object") return v;
  const o = v as Record<string, unknown>;
  if (o[SECRET_SIG] !== undefined && typeof o.plaintext === "string") return revealSecrets(JSON.parse(o.plaintext) as unknown);
  return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, revealSecrets(x)]));
}

/** The fields that authenticate, on every hop (src/secrets.ts makes the same ones secret). */
const CREDENTIALS = new Set(["privateKey", "privateKeyPassphrase", "password"]);

/**
 * Every credential value in `v`, wherever it is nested (jump hosts too). Only these are redacted: a whole `directors`
 * list is secret in state, but its hosts and users must stay readable.
 */
export function credentials(v: unknown, out: string[] = []): string[] {
  if (Array.isArray(v)) v.forEach((x) => credentials(x, out));
  else if (v && typeof v === "object")
    for (const [k, x] of Object.entries(v)) {
      if (CREDENTIALS.has(k) && typeof x === "string") out.push(x);
      else credentials(x, out);
    }
  return out;
}

/**
 * A pool member as people find it: the pool's name and the member's key in its `members` map, the key preview --diff
 * and the pool's error messages show ("web-pool[10.0.0.11:8080]", "web-pool[[2001:db8::11]:80]").
 */
export const poolMemberName = (pool: string, member: string) => `${pool}[${member}]`;

const resourceName = (urn: string) => urn.slice(urn.lastIndexOf("::") + 2);
const KINDS: readonly ResourceRef["kind"][] = ["VirtualService", "RealServer", "RealServerPool", "DirectorSettings", "RealServerHost"];
const kindOf = (type: string): ResourceRef["kind"] | undefined => KINDS.find((k) => type.endsWith(`:dynamic/ipvs:${k}`));

/**
 * The entries the stack manages, from its exported resources: as declared (inputs: every declared director, every pool
 * member) or as refreshed (outputs: the `directors` and members recorded there are the ones that really held the entry,
 * entries.ts). State without inputs (older exports) is read from its outputs. Resources read with get() are left out:
 * the stack does not own them.
 */
export function stackEntries(resources: readonly ExportedResource[], view: StateView = "declared"): StackEntries {
  const out: StackEntries = { services: [], dests: [], settings: [], directors: new Map(), hosts: [], problems: [], secrets: [] };
  const note = (directors: Director[]) => {
    for (const d of directors) if (!out.directors.has(directorKey(d))) out.directors.set(directorKey(d), d);
  };
  for (const r of resources) {
    const kind = kindOf(r.type);
    if (!kind || r.external) continue;
    const resource: ResourceRef = { kind, name: resourceName(r.urn), urn: r.urn };
    const props = revealSecrets((view === "declared" ? r.inputs : undefined) ?? r.outputs ?? {});
    // Both sides: a credential changed by the program is in the inputs, the one of the last up in the outputs.
    credentials(revealSecrets([r.inputs ?? {}, r.outputs ?? {}]), out.secrets);
    try {
      if (kind === "VirtualService") {
        const entry = parseVirtualService(props);
        out.services.push({ resource, key: serviceKey(entry), entry });
        note(entry.directors);
      } else if (kind === "RealServer") {
        const entry = parseRealServer(props);
        out.dests.push({ resource, name: resource.name, service: serviceKey(entry.service), key: destKey(entry), entry });
        note(entry.service.directors);
      } else if (kind === "RealServerPool") {
        // Each member is a real server of the pool's service on the directors state records it on, as for a
        // RealServer: all of the pool's, or those of its `onlyOn` after a partial failure or a refresh.
        const pool = parseRealServerPool(props);
        const service = serviceKey(pool.service);
        for (const [member, { onlyOn, ...m }] of Object.entries(pool.members)) {
          const directors = onlyOn ? pool.service.directors.filter((d) => onlyOn.includes(directorKey(d))) : pool.service.directors;
          const entry = { ...m, service: { ...pool.service, directors } };
          out.dests.push({ resource, name: poolMemberName(resource.name, member), service, key: destKey(entry), entry });
        }
        note(pool.service.directors);
      } else if (kind === "RealServerHost") {
        // Not a director: its host is read with getHost, never dumped.
        out.hosts.push({ resource, entry: parseRealServerHost(props) });
      } else {
        const entry = parseDirectorSettings(props);
        const director = directorKey(entry.director);
        const held = out.settings.find((s) => s.director === director);
        if (held)
          out.problems.push(`DirectorSettings ${resource.name}: director ${director} already has DirectorSettings ${held.resource.name} in this stack (one per director); only ${held.resource.name} is compared`);
        else out.settings.push({ resource, director, entry });
        note([entry.director]);
      }
    } catch (e) {
      out.problems.push(`${kind} ${resource.name}: cannot read its state: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  return out;
}
