// What every resource's diff shares (each resource's own diff is in provider/resources/<name>/provider.ts): which
// property changes replace the kernel entry and which update it in place.
//
// The engine hands us OLD OUTPUTS (state) and NEW CHECKED INPUTS. Both are normalised through the same schema before
// comparing, so a different spelling of the same value (IPv6 case, flag order, a default written out) is no change.
//
// Decisions:
// - Replace only when the kernel identity changes (the "identity" fields of the tables in provider/schema/): a service's
//   family, protocol, address, port | family, fwmark, and for a real server its service's identity plus its own address
//   and port. The kernel cannot SET an identity.
// - Directors are NOT identity. Adding or removing a director is an in-place update: update creates the entry on added
//   directors and deletes it from removed ones; the entry on directors kept in both is untouched. Replacing instead would
//   create the same identity on the kept directors before deleting it (EEXIST) and would need delete-before-replace,
//   i.e. an outage on every director for a change that concerns one.
// - Hence deleteBeforeReplace is never needed (for an entry on a set of directors; one on a single machine replaces
//   when that machine changes, deleting first: diffOnDirector): a replacement always has a different kernel identity than the entry it
//   replaces, so old and new never collide on any director and create-before-delete is safe (zero downtime). With an
//   unknown identity at preview the same holds: if it resolves equal there is no replacement at all.
// - Credential-only changes (keys, passwords, agent, host key policy, jump hosts, sudo, timeouts) are in-place changes
//   that never touch the kernel. They must still be reported (changes: true): delete and later updates run with the
//   OUTPUTS in state, so state has to learn the new credentials, or a destroy after a key rotation would use the old key.
// - The owner (the stack the directors' ledger records) is a setting: a renamed stack or project moves ownership in
//   place, and state from before the ledger gains its owner by an update. takeover and deleteForeignRealServers only
//   shape later ops, like adopt.
// - The resource's own URN (resourceUrn, an "engine" field) is not compared as a setting, but a different one where state
//   has one is a rename with aliases: an in-place update, so the directors' ledgers move the entry's holder to the new
//   URN (formerHolder) and state learns it. State from before resourceUrn gains it with the next update.
// - Unknown at preview: an unknown identity field counts as a replacement (conservative), an unknown setting as a change.
import type * as dynamic from "@pulumi/pulumi/dynamic";
import { directorKey } from "./director";
import { isUnknown, SERVICE_IDENTITY, upgradeState, type CheckResult } from "./schema";

type Props = Record<string, unknown>;

/**
 * Old state or new inputs normalised through the resource's own check, its input keys only; when that fails (e.g. state
 * from an older version) the raw values, compared as they are.
 */
export function normalise(check: (o: unknown, n: unknown) => CheckResult<unknown>, keys: readonly string[], state: unknown): Props {
  const v = upgradeState(state);
  const raw: Props = {};
  for (const k of keys) if (v && typeof v === "object" && k in v) raw[k] = (v as Props)[k];
  const r = check(undefined, raw);
  return r.failures.length === 0 && r.inputs && typeof r.inputs === "object" ? (r.inputs as Props) : raw;
}

/** Stable JSON: object keys sorted, undefined dropped. */
export function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    x && typeof x === "object" && !Array.isArray(x)
      ? Object.fromEntries(Object.entries(x as Props).filter(([, y]) => y !== undefined).sort(([a], [b]) => (a < b ? -1 : 1)))
      : x,
  );
}

/** Equal as values (canonical JSON). */
export const same = (a: unknown, b: unknown) => canonical(a) === canonical(b);

/** Directors compared as a set keyed by host:port, so listing them in another order is no change. */
export function sameDirectors(a: unknown, b: unknown): boolean {
  const byKey = (ds: unknown) => {
    if (!Array.isArray(ds)) return ds;
    const known = ds.every((d) => d && typeof d === "object" && !isUnknown(d.host) && !isUnknown(d.port));
    return known ? [...ds].sort((x, y) => (directorKey(x) < directorKey(y) ? -1 : 1)) : ds;
  };
  return same(byKey(a), byKey(b));
}

/** An identity field changed, or is not known yet (then it may change: report it as replacing). */
export function identityChanged(o: unknown, n: unknown): boolean {
  return isUnknown(n) || !same(o, n);
}

/**
 * A `service` reference (a RealServer's, a pool's), normalised: replaced when the service's kernel identity changes or
 * is not known yet; its directors follow the VirtualService's in place.
 */
export function serviceChange(o: Props, n: Props): { replaced: boolean; directorsChanged: boolean } {
  const os = (o.service ?? {}) as Props;
  const ns = n.service as Props | string | undefined;
  const replaced = isUnknown(ns) || !ns || typeof ns !== "object" || SERVICE_IDENTITY.some((k) => identityChanged(os[k], ns[k]));
  const directorsChanged = typeof ns === "object" && ns !== null && !sameDirectors(os.directors, ns.directors);
  return { replaced, directorsChanged };
}

/** Renamed with aliases (or moved under another parent): state's URN differs from the one the program gives now. */
export function renamed(o: Props, n: Props): boolean {
  return o.resourceUrn !== undefined && !same(o.resourceUrn, n.resourceUrn);
}

/** host:port, or undefined while not known (preview) or not there. */
function placeKey(d: unknown): string | undefined {
  if (!d || typeof d !== "object") return undefined;
  const { host, port } = d as Props;
  return typeof host === "string" && typeof port === "number" && !isUnknown(host) ? directorKey({ host, port }) : undefined;
}

/**
 * The diff of a resource on one machine, `field` (DirectorSettings' director, RealServerHost's host): replace when its
 * host:port changes or is not known yet, deleting first (the old machine gets its values back, and a move between two
 * names of one machine records the right originals); anything else, credentials included, changes in place.
 */
export function diffOnDirector(check: (o: unknown, n: unknown) => CheckResult<unknown>, keys: readonly string[], field: string) {
  return (_id: string, olds: unknown, news: unknown): dynamic.DiffResult => {
    const o = normalise(check, keys, olds);
    const n = normalise(check, keys, news);
    const moved = placeKey(n[field]) === undefined || placeKey(o[field]) !== placeKey(n[field]);
    const changed = keys.some((k) => !same(o[k], n[k]));
    return { changes: moved || changed, replaces: moved ? [field] : [], deleteBeforeReplace: true };
  };
}

/** Changes and replacements as the engine takes them; never delete-before-replace (see the top). */
export function result(replaces: string[], changed: boolean): dynamic.DiffResult {
  return { changes: replaces.length > 0 || changed, replaces, deleteBeforeReplace: false };
}
