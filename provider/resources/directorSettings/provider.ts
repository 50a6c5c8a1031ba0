// The DirectorSettings dynamic provider: one director's IPVS timeouts, sync daemons, sysctls and IP forwarding, held by
// one stack in the director's ledger (PROTOCOL.md "Director settings ops"). The helper records the values it found
// before the stack first set each item, and deleteSettings puts them back.
//
// - create / update send ensureSettings with the complete managed set: what the stack stopped managing is put back.
//   An update after a renamed stack or project sends it with formerOwner: the record moves, nothing is put back.
// - read reports the kernel's values of the managed items only, so refresh shows drift in what the stack declared and
//   nothing else (an unmanaged timeout or a daemon field left to the kernel's default is not compared).
// - a director host/port change replaces (delete first: the old director gets its values back, and a move between two
//   names of one machine records the right originals); anything else, credentials included, updates in place.
import type * as dynamic from "@pulumi/pulumi/dynamic";
import { canonical, normalise } from "../../diff";
import { directorKey, endpointLabel, type Director } from "../../director";
import { echo, errorText, initFailure, withoutUndefined, type OpsFor } from "../../entries";
import { directorOps } from "../../helperClient";
import { HelperError } from "../../protocol";
import { reachedNothing } from "../../session";
import {
  ALL_SYSCTLS,
  checkDirectorSettings,
  DIRECTOR_SETTINGS_KEYS,
  isUnknown,
  parseDirectorSettings,
  type DirectorSettingsModel,
} from "../../schema";
import { managedSysctls, settingsProps, settingsWire, type KernelSettings } from "./wire";

type Props = Record<string, unknown>;

const RESOURCE = "DirectorSettings";

/** "settings@203.0.113.5:22": one DirectorSettings per director per stack. */
export const directorSettingsId = (d: Pick<Director, "host" | "port">) => `settings@${directorKey(d)}`;

const normalised = (state: unknown) => normalise(checkDirectorSettings, DIRECTOR_SETTINGS_KEYS, state);

/** host:port, or undefined while not known (preview) or not there. */
function keyOf(d: unknown): string | undefined {
  if (!d || typeof d !== "object") return undefined;
  const { host, port } = d as Props;
  return typeof host === "string" && typeof port === "number" && !isUnknown(host) ? directorKey({ host, port }) : undefined;
}

/** Replace when the director (host:port) changes or is not known yet; anything else changes in place. */
export function diffDirectorSettings(_id: string, olds: unknown, news: unknown): dynamic.DiffResult {
  const o = normalised(olds);
  const n = normalised(news);
  const moved = keyOf(n.director) === undefined || keyOf(o.director) !== keyOf(n.director);
  const changed = DIRECTOR_SETTINGS_KEYS.some((k) => canonical(o[k]) !== canonical(n[k]));
  return { changes: moved || changed, replaces: moved ? ["director"] : [], deleteBeforeReplace: true };
}

// --- effects --------------------------------------------------------------------------------------------------------

/** What to do about a refusal, appended to the helper's message (which names the stack or the sysctl). */
function hint(e: unknown): string {
  if (!(e instanceof HelperError)) return "";
  if (e.code === "OWNED")
    return " Another stack holds this director's settings (a director has one stack's settings): destroy its DirectorSettings first.";
  if (e.code === "UNSUPPORTED_KERNEL") {
    const paths = ALL_SYSCTLS.filter((d) => e.helperMessage.includes(d.name)).map((d) => d.path);
    if (paths.length) return ` Leave ${paths.join(", ")} out for this director.`;
  }
  return "";
}

function failure(director: Director, what: string, e: unknown): string {
  return `${RESOURCE} on ${endpointLabel(director)}: ${what} failed: ${errorText(e)}${hint(e)}`;
}

/**
 * A failure that changed nothing on the director: a refusal, or one before the op reached it (host key, authentication,
 * sudo, unreachable). A failed create then leaves nothing in state, and a failed update leaves state as it was: a
 * half-created resource would be deleted, with the settings it was created with, when the program moves it.
 */
const changedNothing = (e: unknown) => reachedNothing(e) || (e instanceof HelperError && ["BAD_REQUEST", "UNSUPPORTED_KERNEL", "OWNED"].includes(e.code));

/** `formerOwner`: the owner the settings move from (a renamed stack or project), as they are, nothing put back. */
async function ensure(opsFor: OpsFor, s: DirectorSettingsModel, formerOwner?: string): Promise<void> {
  await opsFor(s.director).run({ op: "ensureSettings", owner: s.owner, ...(formerOwner ? { formerOwner } : {}), settings: settingsWire(s) });
}

async function remove(opsFor: OpsFor, s: DirectorSettingsModel): Promise<void> {
  await opsFor(s.director).run({ op: "deleteSettings", owner: s.owner });
}

/** The DirectorSettings provider; `opsFor` reaches a director's operations (unit tests pass in-memory directors). */
export function makeDirectorSettingsProvider(opsFor: OpsFor = directorOps): dynamic.ResourceProvider {
  return {
    check: async (_olds, news) => {
      const r = checkDirectorSettings(undefined, news);
      return { inputs: withoutUndefined(r.inputs), failures: r.failures };
    },
    diff: async (id, olds, news) => diffDirectorSettings(id, olds, news),
    create: async (inputs) => {
      const s = parseDirectorSettings(inputs);
      const id = directorSettingsId(s.director);
      try {
        await ensure(opsFor, s);
      } catch (e) {
        if (changedNothing(e)) throw new Error(failure(s.director, "create", e));
        // Maybe partly applied, and recorded in the ledger: keep the resource so that the next up converges and a
        // destroy puts the original values back.
        throw initFailure(failure(s.director, "create", e), id, echo(inputs), inputs.__provider);
      }
      return { id, outs: withoutUndefined(echo(inputs)) };
    },
    update: async (id, olds, news) => {
      const s = parseDirectorSettings(news);
      const old = parseDirectorSettings(olds);
      try {
        // A renamed stack or project: the helper moves the record to the new owner, so the director's settings never
        // revert in between (no sync daemon restarted, no conntrack switched off under live connections).
        await ensure(opsFor, s, old.owner !== s.owner ? old.owner : undefined);
      } catch (e) {
        if (changedNothing(e)) throw new Error(failure(s.director, "update", e));
        // State keeps the old settings, so the next diff sees the difference again and retries; the new credentials.
        throw initFailure(failure(s.director, "update", e), id, { ...echo(olds), director: news.director }, news.__provider);
      }
      return { outs: withoutUndefined(echo(news)) };
    },
    read: async (id, props) => {
      const s = parseDirectorSettings(props);
      let real: KernelSettings;
      try {
        real = (await opsFor(s.director).run({ op: "getSettings", sysctls: managedSysctls(s) })).settings;
      } catch (e) {
        throw new Error(failure(s.director, "read", e));
      }
      const current = echo(normalised(props));
      return { id, props: withoutUndefined({ ...current, ...settingsProps(s, real) }) };
    },
    delete: async (_id, props) => {
      const s = parseDirectorSettings(props);
      try {
        await remove(opsFor, s);
      } catch (e) {
        throw new Error(failure(s.director, "delete", e));
      }
    },
  };
}

export const directorSettingsProvider = makeDirectorSettingsProvider();
