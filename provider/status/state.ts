// What a stack declares, read from its exported state (`pulumi stack export --show-secrets`, in memory only): the
// VirtualService and RealServer entries it manages and the directors they are on. Pure: no I/O.
import { directorKey, type Director } from "../director";
import type { DestKey, ServiceKey } from "../protocol";
import { parseRealServer, parseVirtualService, type RealServerSpec, type VirtualServiceSpec } from "../schema";
import { destKey } from "../wire/dest";
import { serviceKey } from "../wire/service";

/** The engine's marker of a secret value in an exported deployment. */
const SECRET_SIG = "4dabf18193072939515e22adb298388d";

export interface ExportedResource {
  urn: string;
  type: string;
  id?: string;
  /** Read with `get()`: the stack does not manage it. */
  external?: boolean;
  outputs?: Record<string, unknown>;
}

export interface ResourceRef {
  kind: "VirtualService" | "RealServer";
  /** The resource's name in the program (the URN's last part). */
  name: string;
  urn: string;
}

export interface DeclaredService {
  resource: ResourceRef;
  key: ServiceKey;
  entry: VirtualServiceSpec;
}

export interface DeclaredDest {
  resource: ResourceRef;
  service: ServiceKey;
  key: DestKey;
  entry: RealServerSpec;
}

export interface StackEntries {
  services: DeclaredService[];
  dests: DeclaredDest[];
  /** Every director an entry is recorded on, by host:port; the first resource naming it says how to reach it. */
  directors: Map<string, Director>;
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

const resourceName = (urn: string) => urn.slice(urn.lastIndexOf("::") + 2);
const kindOf = (type: string): ResourceRef["kind"] | undefined =>
  type.endsWith(":dynamic/ipvs:VirtualService") ? "VirtualService" : type.endsWith(":dynamic/ipvs:RealServer") ? "RealServer" : undefined;

/**
 * The entries the stack manages, from its exported resources. Outputs, not inputs: the `directors` recorded there are
 * the ones that really hold the entry (entries.ts). Resources read with get() are left out: the stack does not own them.
 */
export function stackEntries(resources: readonly ExportedResource[]): StackEntries {
  const out: StackEntries = { services: [], dests: [], directors: new Map(), problems: [], secrets: [] };
  const note = (directors: Director[]) => {
    for (const d of directors) if (!out.directors.has(directorKey(d))) out.directors.set(directorKey(d), d);
  };
  for (const r of resources) {
    const kind = kindOf(r.type);
    if (!kind || r.external) continue;
    const resource: ResourceRef = { kind, name: resourceName(r.urn), urn: r.urn };
    const props = revealSecrets(r.outputs ?? {});
    credentials(props, out.secrets);
    try {
      if (kind === "VirtualService") {
        const entry = parseVirtualService(props);
        out.services.push({ resource, key: serviceKey(entry), entry });
        note(entry.directors);
      } else {
        const entry = parseRealServer(props);
        out.dests.push({ resource, service: serviceKey(entry.service), key: destKey(entry), entry });
        note(entry.service.directors);
      }
    } catch (e) {
      out.problems.push(`${kind} ${resource.name}: cannot read its state: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  return out;
}
