// The RealServerPool dynamic provider: one service's real servers as one resource, on every director of the service.
// Each member is a RealServer's dest and goes through the RealServer's own effects (../realServer/provider.ts: the same
// ensure, ownership and messages), with this pool's URN as the holder the ledger records.
//
// - create / update touch only what differs: per director, a member is ensured when it is new there or its settings
//   (or the stack's owner) changed, and removed when it is no longer wanted there. All of a director's ops are issued
//   at once so the helper client pipelines them into few round trips; a weight change of one member of 2,000 is one
//   ensureDest per director. Removed members with `drain` are quiesced and waited for together, then deleted.
// - State is honest about which members exist where: a member is recorded while some director holds it; one that a
//   partial failure (or a refresh) left on only some directors carries `onlyOn` (those directors), so the next diff
//   sees a change and the next up puts it on the others. Settings changes that did not reach every director keep the
//   old settings in state (the next diff retries), as for the other resources (entries.ts).
// - A pool renamed with aliases (a new URN, the holder its members are recorded under) re-ensures every member with
//   the old URN as formerHolder, so the ledgers move them to the new one; state keeps the old URN until every op got it.
// - read (refresh): each director's table (its memoized dump, shared with every other resource's read: one dump per
//   director for a whole refresh); members gone from every director leave the outputs.
// - It runs on provider/entries.ts with its own Reach (this batching per director instead of one entry per director):
//   what state records on a failure, the owner and holder moves and the drift shown are the framework's.
import type * as dynamic from "@pulumi/pulumi/dynamic";
import { canonical, normalise, renamed, result, same, serviceChange } from "../../diff";
import { directorKey, endpointLabel, hostPort, type Director } from "../../director";
import { drainDests } from "../../drain";
import { echo, errorText, hint, moves, onEach, reachProvider, shownView, withoutUndefined, type Applied, type OpsFor, type Reach } from "../../entries";
import { directorOps, type DirectorOps } from "../../helperClient";
import { serviceIdPart, virtualServiceId } from "../../identity";
import type { DeleteDestOwnership, Dest, Service } from "../../protocol";
import { DEST_SETTING_NAMES } from "../realServer/fields";
import { quiescingAs, realServerEffects } from "../realServer/provider";
import {
  checkRealServerPool,
  parseRealServerPool,
  REAL_SERVER_POOL_KEYS,
  REAL_SERVER_POOL_SETTINGS,
  type PoolMemberModel,
  type RealServerPoolModel,
  type RealServerModel,
} from "../../schema";
import { declaredView, destKey, destProps } from "../realServer/wire";
import { serviceKey } from "../virtualService/wire";

type Props = Record<string, unknown>;

/** At most this many failure lines in a message; the rest are counted. */
const MAX_FAILURE_LINES = 20;

const describe = (p: RealServerPoolModel) => serviceIdPart(serviceKey(p.service));
const poolId = (p: RealServerPoolModel) => `pool/${virtualServiceId(serviceKey(p.service), p.service.directors)}`;

/** A member as the RealServer it is: the RealServer effects run it, with the pool's ownership and URN as holder. */
function asRealServer(p: RealServerPoolModel, m: PoolMemberModel): RealServerModel {
  const { onlyOn: _o, ...own } = m;
  return {
    ...own,
    service: p.service,
    adopt: p.adopt,
    takeover: p.takeover,
    ...(p.owner !== undefined ? { owner: p.owner } : {}),
    ...(p.resourceUrn !== undefined ? { resourceUrn: p.resourceUrn } : {}),
  };
}

const sameSettings = (a: PoolMemberModel, b: PoolMemberModel) => DEST_SETTING_NAMES.every((k) => canonical(a[k]) === canonical(b[k]));

/** Which directors ("host:port") hold each member, as state says. */
function holdersOf(p: RealServerPoolModel | undefined): Map<string, Set<string>> {
  const all = (p?.service.directors ?? []).map(directorKey);
  return new Map(Object.entries(p?.members ?? {}).map(([k, m]) => [k, new Set(m.onlyOn ?? all)]));
}

interface Failure {
  member: string;
  /** host:port, the director's identity. */
  director: string;
  /** user@host:port, how messages name it. */
  where: string;
  error: unknown;
  removing: boolean;
}

function failureMessage(p: RealServerPoolModel, what: string, failures: Failure[], total: number): string {
  // The same text on one director (it is unreachable) is one line naming the members, not one line per member.
  const groups = new Map<string, { f: Failure; members: string[] }>();
  for (const f of failures) {
    const text = `${f.where}: ${errorText(f.error)}${hint(f)}`;
    const g = groups.get(text);
    if (g) g.members.push(f.member);
    else groups.set(text, { f, members: [f.member] });
  }
  const lines = [...groups.values()].map(({ f, members }) => {
    const who = members.length === 1 ? members[0] : `${members.length} members (${members.slice(0, 3).join(", ")}${members.length > 3 ? ", …" : ""})`;
    return `  - ${who} on ${f.where}: ${errorText(f.error)}${hint(f)}`;
  });
  const shown = lines.slice(0, MAX_FAILURE_LINES);
  if (lines.length > shown.length) shown.push(`  … and ${lines.length - shown.length} more`);
  return `RealServerPool ${describe(p)}: ${what} failed for ${failures.length} of ${total} member operation(s):\n${shown.join("\n")}`;
}

/**
 * Brings the kernel from `old` (state; undefined for a create) to `want`, and says what state must record. `want`'s
 * directors empty = delete everywhere; `what` names the operation in the message.
 */
async function apply(opsFor: OpsFor, old: RealServerPoolModel | undefined, want: RealServerPoolModel, outs: Props, what: string): Promise<Applied> {
  const before = holdersOf(old);
  const oldDirs = old?.service.directors ?? [];
  const wantKeys = new Set(want.service.directors.map(directorKey));
  // Kept directors are reached with the new settings (credentials may have changed); removed ones with the old.
  const directors = [...want.service.directors, ...oldDirs.filter((d) => !wantKeys.has(directorKey(d)))];
  const { ownerChanged, formerOwner, formerHolder } = moves(old ?? want, want);
  const adopt = want.adopt || want.takeover;
  const after = new Map([...before].map(([k, s]) => [k, new Set(s)]));
  const failures: Failure[] = [];
  const failedEnsure = new Set<string>();
  const opsOn = new Map<string, number>();
  let total = 0;

  await Promise.all(
    directors.map(async (d) => {
      const dk = directorKey(d);
      const ops = opsFor(d);
      const fail = (member: string, error: unknown, removing: boolean) => {
        failures.push({ member, director: dk, where: endpointLabel(d), error, removing });
        if (!removing) failedEnsure.add(member);
      };
      const ensures = wantKeys.has(dk)
        ? Object.entries(want.members).flatMap(([k, m]) => {
            const had = before.get(k)?.has(dk) ?? false;
            const prev = old?.members[k];
            return !had || ownerChanged || formerHolder || !prev || !sameSettings(prev, m) ? [{ k, m, had }] : [];
          })
        : [];
      const removals = [...before].flatMap(([k, held]) => (held.has(dk) && !(wantKeys.has(dk) && k in want.members) ? [k] : []));
      const n = ensures.length + removals.length;
      opsOn.set(dk, n);
      total += n;
      await Promise.all([
        ...ensures.map(async ({ k, m, had }) => {
          try {
            await realServerEffects.ensure(ops, asRealServer(want, m), had || adopt ? "update" : "fail", formerOwner, formerHolder);
            after.get(k)?.add(dk) ?? after.set(k, new Set([dk]));
          } catch (e) {
            fail(k, e, false);
          }
        }),
        removeMembers(ops, old!, removals, want.resourceUrn).then((results) =>
          results.forEach((r, i) => (r.status === "fulfilled" ? after.get(removals[i]!)!.delete(dk) : fail(removals[i]!, r.reason, true))),
        ),
      ]);
    }),
  );

  // Directors state keeps: the wanted ones, except one new here that got nothing (it failed: the next up adds it
  // again), and removed ones that still hold a member (their removal is retried).
  const holds = (dk: string) => [...after.values()].some((s) => s.has(dk));
  const oldKeys = new Set(oldDirs.map(directorKey));
  const stateDirs = directors.filter((d) => {
    const dk = directorKey(d);
    if (!wantKeys.has(dk)) return holds(dk);
    return oldKeys.has(dk) || holds(dk) || !failures.some((f) => f.director === dk) || opsOn.get(dk) === 0;
  });
  const stateKeys = stateDirs.map(directorKey).sort();
  const members: Record<string, PoolMemberModel> = {};
  for (const k of new Set([...Object.keys(old?.members ?? {}), ...Object.keys(want.members)])) {
    const held = stateKeys.filter((dk) => after.get(k)?.has(dk));
    if (held.length === 0) continue;
    const w = want.members[k];
    const o = old?.members[k];
    // New settings once every director that was asked got them; otherwise the old, so the next diff retries.
    const settings = w && (!failedEnsure.has(k) || !o) ? w : o!;
    const { onlyOn: _o, ...m } = settings;
    members[k] = { ...m, ...(held.length !== stateKeys.length ? { onlyOn: held } : {}) };
  }
  // The owner moves in state once every op got it (a member left behind is still the old owner's there).
  const owner = ownerChanged && failures.length > 0 ? formerOwner : want.owner;
  const resourceUrn = formerHolder && failures.length > 0 ? formerHolder : want.resourceUrn;
  const props = { ...outs, service: { ...(outs.service as Props), directors: stateDirs }, members, owner, resourceUrn };
  const message = failures.length > 0 ? failureMessage(want, what, failures, total) : "";
  return { props: withoutUndefined(props), failures, total, message, holds: stateDirs.length > 0 };
}

/**
 * Removes members from one director: with drain, all quiesced and waited for together, then each deleted. `holder`:
 * the pool's URN now; when renamed, the old one goes as formerHolder (a member may be recorded under either).
 */
async function removeMembers(ops: DirectorOps, old: RealServerPoolModel, keys: string[], holder: string | undefined): Promise<PromiseSettledResult<unknown>[]> {
  if (keys.length === 0) return [];
  const svc = serviceKey(old.service);
  const moved = holder !== undefined && old.resourceUrn !== undefined && holder !== old.resourceUrn;
  const ownership: DeleteDestOwnership = moved ? { owner: old.owner, holder, formerHolder: old.resourceUrn } : { owner: old.owner, holder: old.resourceUrn };
  if (old.drain) {
    const gone = new Set(keys);
    const readDests = async (): Promise<Dest[]> =>
      ((await ops.getService(svc, true))?.dests ?? []).filter((d) => gone.has(hostPort(d.address, d.port)));
    try {
      await drainDests(quiescingAs(ops, ownership), svc, readDests, old.drain.timeoutSeconds, { urn: ownership.holder });
    } catch (e) {
      return keys.map(() => ({ status: "rejected", reason: e }));
    }
  }
  return Promise.allSettled(keys.map((k) => ops.deleteDest(svc, destKey(old.members[k]!), ownership)));
}

/** Replace only when the service's identity changes; directors and members change in place. */
export function diffRealServerPool(_id: string, olds: unknown, news: unknown): dynamic.DiffResult {
  const o = normalise(checkRealServerPool, REAL_SERVER_POOL_KEYS, olds);
  const n = normalise(checkRealServerPool, REAL_SERVER_POOL_KEYS, news);
  const service = serviceChange(o, n);
  const changed = service.directorsChanged || renamed(o, n) || REAL_SERVER_POOL_SETTINGS.some((k) => !same(o[k], n[k]));
  return result(service.replaced ? ["service"] : [], changed);
}

/** The members as the kernel has them (each director's table); a director without the service holds none. */
async function readPool(opsFor: OpsFor, id: string, props: Props): Promise<dynamic.ReadResult> {
  const p = parseRealServerPool(props);
  const key = serviceKey(p.service);
  const directors = p.service.directors;
  const services = new Map<Director, Service | null>();
  const failed = await onEach(directors, async (d) => services.set(d, (await opsFor(d).table()).service(key)));
  if (failed.length > 0) {
    const failures = failed.map((f) => ({ member: "the service", director: directorKey(f.director), where: endpointLabel(f.director), error: f.error, removing: false }));
    throw new Error(failureMessage(p, "read", failures, directors.length));
  }
  const views = directors.flatMap((d) => {
    const s = services.get(d);
    return s ? [{ director: d, dests: new Map((s.dests ?? []).map((x) => [hostPort(x.address, x.port), x])) }] : [];
  });
  if (views.length === 0) return { id: "" };
  const members: Record<string, Props> = {};
  for (const [k, m] of Object.entries(p.members)) {
    const found = views.flatMap((v) => (v.dests.has(k) ? [{ director: directorKey(v.director), dest: v.dests.get(k)! }] : []));
    if (found.length === 0) continue;
    const { onlyOn: _o, ...own } = m;
    // The view that differs from state where directors disagree (shownView). A member the health checker depooled
    // reads at its declared weight (health, not drift).
    const kernel = found.map((f) => destProps(declaredView(f.dest), { forwarding: m.forwarding }));
    members[k] = { ...own, ...shownView(kernel, own), ...(found.length !== views.length ? { onlyOn: found.map((f) => f.director).sort() } : {}) };
  }
  const current = echo(props);
  return { id, props: withoutUndefined({ ...current, service: { ...(current.service as Props), directors: views.map((v) => v.director) }, members }) };
}

/** The pool's Reach: a whole pool per director in one batch (`apply`), its own read (members per director). */
function poolReach(opsFor: OpsFor): Reach {
  const poolOf = (props: Props) => parseRealServerPool(props);
  return {
    create: async (inputs) => {
      const want = poolOf(inputs);
      return { id: poolId(want), ...(await apply(opsFor, undefined, want, echo(inputs), "create")) };
    },
    update: async (olds, news) => apply(opsFor, poolOf(olds), poolOf(news), echo(news), "update"),
    delete: async (props) => {
      const old = poolOf(props);
      const none = { ...old, members: {}, service: { ...old.service, directors: [] as Director[] } };
      return apply(opsFor, old, none, echo(props), "delete");
    },
    read: (id, props) => readPool(opsFor, id, props),
  };
}

/** The dynamic provider (`opsFor`: the pooled helpers by default; unit tests pass an in-memory table). */
export function realServerPoolProviderWith(opsFor: OpsFor = directorOps): dynamic.ResourceProvider {
  return reachProvider({ check: checkRealServerPool, diff: diffRealServerPool }, poolReach(opsFor));
}

export const realServerPoolProvider = realServerPoolProviderWith();
