// The DirectorSettings dynamic provider: one director's IPVS timeouts, sync daemons, sysctls and IP forwarding, held by
// one stack in the director's ledger (PROTOCOL.md "Director settings ops"). The helper records the values it found
// before the stack first set each item, and deleteSettings puts them back.
//
// - create / update send ensureSettings with the complete managed set: what the stack stopped managing is put back.
//   An update after a renamed stack or project sends it with formerOwner: the record moves, nothing is put back.
// - read reports the kernel's values of the managed items only, so refresh shows drift in what the stack declared and
//   nothing else (an unmanaged timeout or a daemon field left to the kernel's default is not compared).
// - create / update / read / delete run on provider/entries.ts as an entry on one director (onDirector).
// - a director host/port change replaces (delete first: the old director gets its values back, and a move between two
//   names of one machine records the right originals); anything else, credentials included, updates in place.
import { diffOnDirector } from "../../diff";
import { directorKey, type Director } from "../../director";
import { entryProvider, onDirector, type EntryEffects, type EntryKind, type OpsFor } from "../../entries";
import { directorOps } from "../../helperClient";
import { HelperError } from "../../protocol";
import { reachedNothing } from "../../session";
import { ALL_SYSCTLS, checkDirectorSettings, DIRECTOR_SETTINGS_KEYS, parseDirectorSettings, type DirectorSettingsModel } from "../../schema";
import { managedSysctls, settingsProps, settingsWire } from "./wire";

/** "settings@203.0.113.5:22": one DirectorSettings per director per stack. */
export const directorSettingsId = (d: Pick<Director, "host" | "port">) => `settings@${directorKey(d)}`;

/** Replace when the director (host:port) changes or is not known yet; anything else changes in place. */
export const diffDirectorSettings = diffOnDirector(checkDirectorSettings, DIRECTOR_SETTINGS_KEYS, "director");

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

export const directorSettingsKind: EntryKind<DirectorSettingsModel> = {
  ...onDirector("DirectorSettings", "director", (s: DirectorSettingsModel) => s.director, hint),
  parse: parseDirectorSettings,
  id: (s) => directorSettingsId(s.director),
  check: checkDirectorSettings,
  diff: diffDirectorSettings,
};

export const directorSettingsEffects: EntryEffects<DirectorSettingsModel> = {
  // The complete managed set every time: what the stack stopped managing is put back. `formerOwner`: a renamed stack
  // or project; the helper moves the record to the new owner, so the director's settings never revert in between (no
  // sync daemon restarted, no conntrack switched off under live connections).
  ensure: (ops, s, _onExisting, formerOwner) =>
    ops.run({ op: "ensureSettings", owner: s.owner, ...(formerOwner ? { formerOwner } : {}), settings: settingsWire(s) }),
  remove: async (ops, s) => {
    await ops.run({ op: "deleteSettings", owner: s.owner });
  },
  // The kernel's values of the managed items only: refresh shows drift in what the stack declared and nothing else.
  read: async (ops, s) => settingsProps(s, (await ops.run({ op: "getSettings", sysctls: managedSysctls(s) })).settings),
  // A refusal, or a failure before the op reached the director: a failed create then leaves nothing in state, and a
  // failed update leaves state as it was (a half-created resource would be deleted, with the settings it was created
  // with, when the program moves it).
  changedNothing: (e) => reachedNothing(e) || (e instanceof HelperError && ["BAD_REQUEST", "UNSUPPORTED_KERNEL", "OWNED"].includes(e.code)),
  // Maybe partly applied, and recorded in the ledger: kept, so that the next up converges and a destroy puts the
  // original values back.
  keepsPartial: true,
};

/** The DirectorSettings provider; `opsFor` reaches a director's operations (unit tests pass in-memory directors). */
export const makeDirectorSettingsProvider = (opsFor: OpsFor = directorOps) => entryProvider(directorSettingsKind, directorSettingsEffects, opsFor);

export const directorSettingsProvider = makeDirectorSettingsProvider();
