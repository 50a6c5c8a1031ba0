// The create / read / update / delete framework all resources run on: an entry kept on a set of directors. The
// VirtualService and the RealServer use it as it is (EntryKind facts, EntryEffects on each director); DirectorSettings
// and RealServerHost are an entry on one machine (onDirector: one message line, and a failed ensure that may have
// changed something still holds it); the RealServerPool brings its own Reach (a whole pool per director in one batch,
// its members through the RealServer's effects) and shares the rest: what a failure records (reachProvider), the owner
// and holder moves (moves), the view shown where directors disagree (shownView).
//
// State is honest about where the entry exists: the `directors` recorded in outputs are the directors that hold it.
// - create on N directors where some fail records the resource (an init failure) with only the directors that
//   succeeded; the next `up` sees the others as added directors and creates there, untouched where it is already right.
//   Where every director failed, nothing is recorded (a plain error), unless a failure may have changed something
//   that must be put back (keepsPartial); likewise an update that changed nothing anywhere (changedNothing).
// - update creates on added directors (same "fail unless adopt" rule as create), SETs on kept ones (the helper only
//   SETs when something differs), deletes from removed ones. If any of that fails, state keeps the OLD settings (so the
//   next diff sees the difference again and retries) with the directors that really hold the entry.
// - read (refresh) reports the directors that still hold it and the real settings; none left = gone.
// - ownership (PROTOCOL.md "Ownership ledger"): every op carries the `owner` recorded in state (none for state from
//   before the ledger). An update that changes it (a renamed stack or project) moves the entry with formerOwner; a
//   director it leaves is removed as the old owner, and state keeps the old owner until every director got the new one.
//   Likewise the holder (the resource's URN, resourceUrn): an update after a rename with aliases passes the old URN as
//   formerHolder, and state keeps it until every director got the new one.
import type * as dynamic from "@pulumi/pulumi/dynamic";
import { canonical } from "./diff";
import { directorKey, endpointLabel, type Director } from "./director";
import { directorOps, type DirectorOps } from "./helperClient";
import { HelperError, type OnExisting } from "./protocol";
import { reachedNothing } from "./session";

type Props = Record<string, unknown>;

/** What differs between the resources, as pure facts: how to validate, name and identify an entry and its directors. */
export interface EntryKind<T> {
  /** Resource type name for messages ("VirtualService"). */
  readonly resource: string;
  /** Validates fully known inputs or state into the normalised form (throws naming every problem). */
  parse(props: unknown): T;
  /** "service tcp/192.0.2.10:80", "real server 10.0.0.11:8080 of service tcp/192.0.2.10:80". */
  describe(entry: T): string;
  id(entry: T): string;
  directors(entry: T): Director[];
  /** props with their recorded directors replaced. */
  withDirectors(props: Props, directors: Director[]): Props;
  /** The dynamic provider's check and diff (pure; preview never connects). */
  check(olds: unknown, news: unknown): dynamic.CheckResult;
  diff(id: string, olds: unknown, news: unknown): dynamic.DiffResult;
  /** Props completed from the id where `get(name, id, state)` gave only how to reach the directors. */
  fromId(id: string, props: Props): Props;
  /** The message of a failed create, read, update or delete; default: a line a director (`failureMessage`). */
  failureMessage?(entry: T, what: string, failures: DirectorFailure[], total: number): string;
}

/** What a resource does to its entry on one director, through that director's operations. */
export interface EntryEffects<T> {
  /**
   * Create or bring to the desired settings; `fail` refuses an existing entry; `formerOwner`: the owner it moves from;
   * `formerHolder`: the resource URN it moves from (renamed with aliases).
   */
  ensure(ops: DirectorOps, entry: T, onExisting: OnExisting, formerOwner?: string, formerHolder?: string): Promise<{ changed: boolean }>;
  remove(ops: DirectorOps, entry: T, formerHolder?: string): Promise<void>;
  /** The entry's settings as the kernel has them, in props form, or null when absent. */
  read(ops: DirectorOps, entry: T): Promise<Props | null>;
  /**
   * Whether a failed op left its director as it was; default: it never reached it (`reachedNothing`). An update that
   * failed so on every director is a plain error: state keeps what it had.
   */
  changedNothing?(error: unknown): boolean;
  /**
   * A director whose ensure failed after it may have changed something still holds the entry (its ledger recorded the
   * values found before, which a delete puts back). Default: a director holds only what an op there did.
   */
  keepsPartial?: boolean;
}

/** How to reach a director's operations: the pooled helper in production, an in-memory table in unit tests. */
export type OpsFor = (director: Director) => DirectorOps;

/** One resource's entry logic: its facts, its effects and the directors' operations they run on. */
interface Entries<T> {
  kind: EntryKind<T>;
  effects: EntryEffects<T>;
  opsFor: OpsFor;
}

/** What a create, update or delete did: what state records, and what failed. */
export interface Applied {
  /** What state records: the directors (the pool: and members) that hold the entry, old settings where new ones failed. */
  props: Props;
  failures: { error: unknown }[];
  /** How many ops there were: one a director (the pool: one a member on a director). */
  total: number;
  /** The failures as one message (the engine shows it). */
  message: string;
  /** Some director holds the entry; when none does, a failed create records nothing. */
  holds: boolean;
}

/**
 * How a resource's create, update, delete and read reach its directors: by default (perDirector) its EntryEffects on
 * each director; the pool overrides it (a whole pool per director in one batch). The rules of what state records on a
 * failure are reachProvider's, the same for every resource.
 */
export interface Reach {
  create(inputs: Props): Promise<Applied & { id: string }>;
  update(olds: Props, news: Props): Promise<Applied>;
  delete(props: Props): Promise<Applied>;
  read(id: string, props: Props): Promise<dynamic.ReadResult>;
  /** Whether a failed op left its director as it was; default: it never reached it (`reachedNothing`). */
  changedNothing?(error: unknown): boolean;
}

export interface DirectorFailure {
  director: Director;
  error: unknown;
  /** The entry was being removed from this director (an update that drops it, or a delete). */
  removing?: boolean;
}

export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Runs fn on every director at once; returns the ones that failed (the rest succeeded). */
export async function onEach(directors: Director[], fn: (d: Director) => Promise<unknown>): Promise<DirectorFailure[]> {
  const settled = await Promise.allSettled(directors.map(fn));
  return settled.flatMap((r, i) => (r.status === "rejected" ? [{ director: directors[i]!, error: r.reason }] : []));
}

/** What to do about a helper refusal, appended to its message (which names the stack, real servers or manager). */
export function hint({ error, removing }: Pick<DirectorFailure, "error" | "removing">): string {
  if (!(error instanceof HelperError)) return "";
  switch (error.code) {
    case "EXISTS":
      return " It was not created by this stack: set adopt: true to take it over, or remove it first.";
    case "OWNED":
      return removing
        ? " It belongs to that stack now: remove it there, or drop it from this stack's state (pulumi state delete)."
        : " Set takeover: true to take it over, or remove it from that stack.";
    case "FOREIGN_DESTS":
      return " Set deleteForeignRealServers: true to delete them with it, or remove them first.";
    case "MANAGED_ELSEWHERE":
      return " adopt does not take over what another manager runs: remove it there first.";
    default:
      return "";
  }
}

/** The message of a failed create, read, update or delete of an entry, as the provider words it (also for status). */
export function failureMessage<T>(kind: EntryKind<T>, entry: T, what: string, failures: DirectorFailure[], total: number): string {
  if (kind.failureMessage) return kind.failureMessage(entry, what, failures, total);
  const lines = failures.map((f) => `  - ${endpointLabel(f.director)}: ${errorText(f.error)}${hint(f)}`);
  return `${kind.resource} ${kind.describe(entry)}: ${what} failed on ${failures.length} of ${total} director(s):\n${lines.join("\n")}`;
}

const keyOf = (d: Director) => directorKey(d);
/** An existing entry may be taken over: adopt, or takeover (which takes one another stack owns, so implies adopt). */
const adopts = (props: Props) => props.adopt === true || props.takeover === true;
const without = (ds: Director[], gone: Director[]) => ds.filter((d) => !gone.some((g) => keyOf(g) === keyOf(d)));
/** A director whose ensure failed but may have changed something, for effects that keep such a part (keepsPartial). */
const partlyHeld = <T>(effects: EntryEffects<T>, f: DirectorFailure) => effects.keepsPartial === true && !(effects.changedNothing ?? reachedNothing)(f.error);

/** The checked inputs as outputs: everything echoed (defaults filled), nothing the engine adds. */
export function echo(inputs: Props): Props {
  const { __provider: _p, ...rest } = inputs;
  return rest;
}

/**
 * A partial failure the engine records: the resource is saved with these properties and the next `up` updates it.
 * The plugin does not add __provider to an init failure's properties, so we do (delete needs it to load the provider).
 */
function initFailure(message: string, id: string, props: Props, provider: unknown): Error {
  return Object.assign(new Error(message), { id, properties: withoutUndefined({ ...props, __provider: provider }), reasons: [message] });
}

/**
 * A create or update that failed somewhere, as the engine takes it: a plain error where there is nothing to record (no
 * director holds the entry, or nothing changed and state keeps what it had), else an init failure recording `props`.
 */
function failed(message: string, recordNothing: boolean, id: string, props: Props, provider: unknown): Error {
  return recordNothing ? new Error(message) : initFailure(message, id, props, provider);
}

/** Every one of `total` ops failed without changing anything (host key, authentication, sudo, unreachable). */
function changedNothing(failures: { error: unknown }[], total: number, nothing: (e: unknown) => boolean = reachedNothing): boolean {
  return failures.length === total && failures.every((f) => nothing(f.error));
}

/**
 * What an update moves the entry from, as state recorded it: the owner (a renamed stack or project; state from before
 * the ledger has none) and the holder, the resource's URN (renamed with aliases), which the directors' ledgers record.
 */
export function moves(olds: { owner?: unknown; resourceUrn?: unknown }, news: { owner?: unknown; resourceUrn?: unknown }) {
  const ownerChanged = olds.owner !== news.owner;
  return {
    ownerChanged,
    formerOwner: ownerChanged ? (olds.owner as string | undefined) : undefined,
    formerHolder: olds.resourceUrn !== undefined && olds.resourceUrn !== news.resourceUrn ? (olds.resourceUrn as string) : undefined,
  };
}

async function createEntry<T>({ kind, effects, opsFor }: Entries<T>, inputs: Props): Promise<Applied & { id: string }> {
  const entry = kind.parse(inputs);
  const directors = kind.directors(entry);
  const onExisting: OnExisting = adopts(inputs) ? "update" : "fail";
  const failures = await onEach(directors, (d) => effects.ensure(opsFor(d), entry, onExisting));
  const outs = echo(inputs);
  const id = kind.id(entry);
  const total = directors.length;
  if (failures.length === 0) return { id, props: outs, failures, total, message: "", holds: true };
  const held = without(directors, failures.filter((f) => !partlyHeld(effects, f)).map((f) => f.director));
  const message = failureMessage(kind, entry, "create", failures, total);
  return { id, props: kind.withDirectors(outs, held), failures, total, message, holds: held.length > 0 };
}

async function updateEntry<T>({ kind, effects, opsFor }: Entries<T>, olds: Props, news: Props): Promise<Applied> {
  const entry = kind.parse(news);
  const before = kind.directors(kind.parse(olds));
  const after = kind.directors(entry);
  const added = without(after, before);
  const kept = without(after, added);
  const removed = without(before, after);
  const adopt = adopts(news);
  const { ownerChanged, formerOwner, formerHolder } = moves(olds, news);
  // The directors it leaves have it under the old owner (none: state from before the ledger): removed as that one,
  // with the new settings (drain, deleteForeignRealServers).
  const leaving = ownerChanged && removed.length > 0 ? kind.parse({ ...news, owner: olds.owner }) : entry;

  const ensureFailures = await onEach([...added, ...kept], (d) =>
    effects.ensure(opsFor(d), entry, added.includes(d) && !adopt ? "fail" : "update", formerOwner, formerHolder),
  );
  const removeFailures = (await onEach(removed, (d) => effects.remove(opsFor(d), leaving, formerHolder))).map((f) => ({ ...f, removing: true }));
  const outs = echo(news);
  const total = after.length + removed.length;
  if (ensureFailures.length === 0 && removeFailures.length === 0) return { props: outs, failures: [], total, message: "", holds: true };

  // Where the entry exists now: kept directors (whatever happened), added ones that worked (or kept part of it), removed
  // ones that did not.
  const addedFailed = ensureFailures.filter((f) => !partlyHeld(effects, f)).map((f) => f.director).filter((d) => added.includes(d));
  const held = [...without(after, addedFailed), ...removeFailures.map((f) => f.director)];
  const failures = [...ensureFailures, ...removeFailures];
  const message = failureMessage(kind, entry, "update", failures, total);
  // Settings: new ones only if every director that holds the entry got them; otherwise the old, so the next diff retries.
  // The owner and holder likewise: a director it failed to leave still has it under the old ones (removed as those next
  // time, the new holder passing the old one as formerHolder).
  const base = ensureFailures.length === 0 ? { ...outs, owner: olds.owner, ...(formerHolder ? { resourceUrn: formerHolder } : {}) } : { ...echo(olds) };
  return { props: kind.withDirectors(base, held), failures, total, message, holds: held.length > 0 };
}

async function deleteEntry<T>({ kind, effects, opsFor }: Entries<T>, props: Props): Promise<Applied> {
  const entry = kind.parse(props);
  const directors = kind.directors(entry);
  const failures = (await onEach(directors, (d) => effects.remove(opsFor(d), entry))).map((f) => ({ ...f, removing: true }));
  const message = failures.length > 0 ? failureMessage(kind, entry, "delete", failures, directors.length) : "";
  return { props: {}, failures, total: directors.length, message, holds: false };
}

async function readEntry<T>({ kind, effects, opsFor }: Entries<T>, id: string, given: Props): Promise<dynamic.ReadResult> {
  // Defaults filled: state written by get() or by older versions may lack some.
  const complete = kind.fromId(id, given);
  const checked = kind.check(undefined, complete);
  const props = checked.failures?.length ? complete : { ...complete, ...(checked.inputs as Props) };
  const entry = kind.parse(props);
  const directors = kind.directors(entry);
  const found = new Map<string, Props>();
  const failures = await onEach(directors, async (d) => {
    const real = await effects.read(opsFor(d), entry);
    if (real) found.set(keyOf(d), real);
  });
  if (failures.length > 0) throw new Error(failureMessage(kind, entry, "read", failures, directors.length));
  const held = directors.filter((d) => found.has(keyOf(d)));
  if (held.length === 0) return { id: "" };
  const current = echo(props);
  const views = held.map((d) => found.get(keyOf(d))!);
  // The kernel's view leaves absent settings undefined (no persistence, no tunnel): absent in state too.
  return { id, props: withoutUndefined(kind.withDirectors({ ...current, ...shownView(views, current) }, held)) };
}

/**
 * Of the directors' views of one entry, the one state shows: directors can disagree after out-of-band edits, so one
 * that differs from state (`current`), so that the next up sees the drift; else the first.
 */
export function shownView(views: Props[], current: Props): Props {
  return views.find((v) => Object.entries(v).some(([k, x]) => canonical(x) !== canonical(current[k]))) ?? views[0]!;
}

/**
 * A copy without `undefined` values: the dynamic-provider plugin converts check's inputs with protobuf's
 * Struct.fromJavaScript, which throws "Unexpected struct type." on `undefined` (e.g. a service field the engine left out
 * at preview because it is not known yet). Absent and undefined mean the same to the schema; array holes become null.
 */
export function withoutUndefined<V>(v: V): V {
  if (Array.isArray(v)) return v.map((x) => (x === undefined ? null : withoutUndefined(x))) as V;
  if (v && typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype) {
    return Object.fromEntries(
      Object.entries(v as Props).flatMap(([k, x]) => (x === undefined ? [] : [[k, withoutUndefined(x)]])),
    ) as V;
  }
  return v;
}

/**
 * The facts every entry on one director share (DirectorSettings on its `director`, RealServerHost on its `host`): that
 * director is its list, get() gives the whole state, and a failure is one line naming the director and what to do.
 */
export function onDirector<T>(resource: string, field: string, of: (entry: T) => Director, hintFor: (e: unknown) => string = () => "") {
  return {
    resource,
    describe: (entry: T) => endpointLabel(of(entry)),
    directors: (entry: T) => [of(entry)],
    withDirectors: (props: Props, directors: Director[]) => ({ ...props, [field]: directors[0] ?? props[field] }),
    fromId: (_id: string, props: Props) => props,
    failureMessage: (entry: T, what: string, failures: DirectorFailure[]) =>
      failures.map((f) => `${resource} on ${endpointLabel(f.director)}: ${what} failed: ${errorText(f.error)}${hintFor(f.error)}`).join("\n"),
  } satisfies Partial<EntryKind<T>>;
}

/** The default Reach: the resource's EntryEffects on each of its directors. */
function perDirector<T>(entries: Entries<T>): Reach {
  return {
    create: (inputs) => createEntry(entries, inputs),
    update: (olds, news) => updateEntry(entries, olds, news),
    delete: (props) => deleteEntry(entries, props),
    read: (id, props) => readEntry(entries, id, props),
    changedNothing: entries.effects.changedNothing,
  };
}

/**
 * The dynamic provider of one kind of entry: check/diff pure, the rest through `reach`. A create or update that failed
 * somewhere records what holds the entry (an init failure), or nothing: a create where no director holds it, an update
 * that failed everywhere before anything changed (state keeps what it had, the engine records no failed update).
 */
export function reachProvider(kind: Pick<EntryKind<unknown>, "check" | "diff">, reach: Reach): dynamic.ResourceProvider {
  return {
    check: async (olds, news) => {
      const res = kind.check(olds, news);
      return { ...res, ...(res.inputs !== undefined ? { inputs: withoutUndefined(res.inputs) } : {}) };
    },
    diff: async (id, olds, news) => kind.diff(id, olds, news),
    create: async (inputs) => {
      const a = await reach.create(inputs);
      if (a.failures.length > 0) throw failed(a.message, !a.holds, a.id, a.props, inputs.__provider);
      return { id: a.id, outs: withoutUndefined(a.props) };
    },
    read: async (id, props) => reach.read(id, props),
    update: async (id, olds, news) => {
      const a = await reach.update(olds, news);
      if (a.failures.length > 0) throw failed(a.message, changedNothing(a.failures, a.total, reach.changedNothing), id, a.props, news.__provider);
      return { outs: withoutUndefined(a.props) };
    },
    delete: async (_id, props) => {
      const a = await reach.delete(props);
      if (a.failures.length > 0) throw new Error(a.message);
    },
  };
}

/**
 * The dynamic provider of an entry on each of its directors (`opsFor`: the pooled helpers by default; unit tests pass
 * an in-memory table).
 */
export function entryProvider<T>(kind: EntryKind<T>, effects: EntryEffects<T>, opsFor: OpsFor = directorOps): dynamic.ResourceProvider {
  return reachProvider(kind, perDirector({ kind, effects, opsFor }));
}
