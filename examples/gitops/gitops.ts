// GitOps for IPVS directors with the Pulumi Automation API: one program for the three CI triggers.
//
//   tsx gitops.ts preview [--stack S] [--cwd DIR]   pull request: what would change in each director's kernel (no SSH)
//   tsx gitops.ts up      [--stack S] [--cwd DIR]   main branch: apply
//   tsx gitops.ts drift   [--stack S] [--cwd DIR]   schedule: read every director's kernel and compare it with state
//
// DIR is the Pulumi project (its Pulumi.yaml; default: the working directory), S its stack (default: the selected
// one). The pulumi CLI on PATH runs it with its usual environment (backend, PULUMI_CONFIG_PASSPHRASE or secrets
// provider). Exit status: 0 fine, 1 drift found (drift mode), 2 error. With GITHUB_STEP_SUMMARY set, the report is also
// appended to the job summary.
//
// Directors are named host:port. Their settings are secret in state and in the engine's events (credentials), so the
// tool takes them from resource ids (ids list the directors an entry was created on) or from non-secret inputs; a new
// service whose directors are secret inputs is listed under "directors not known before up".
//
// A RealServerPool is reported per member, named as `pulumi-ipvs status` names it (`web-pool[10.0.0.11:8080]`); a
// DirectorSettings per setting, by its input path (`timeouts.tcp 900 → 600`, `sysctls.expireNodestConn`). drift also
// reads every RealServerHost (a real server's machine): a VIP gone from it or a sysctl reset there is drift too
// (`RealServerHost web-host-1 (10.10.0.11:22): vip 192.0.2.20 missing`); preview does not list hosts' changes.
//
// drift also reports the real servers' health apart from drift (a server the health checker depooled is not drift:
// the refresh reads it at its declared weight), from `pulumi-ipvs status --json`: unhealthy real servers, the sorry
// server in use, a director whose checker is not running. Health does not change the exit status.
import { execFile } from "node:child_process";
import { appendFileSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { LocalWorkspace, type EngineEvent } from "@pulumi/pulumi/automation";

type Mode = "preview" | "up" | "drift";
type Kind = "VirtualService" | "RealServer" | "RealServerPool" | "DirectorSettings" | "RealServerHost";
type Props = Record<string, unknown>;

/** The settings that are kernel state, per entry (the rest — drain, adopt, credentials — never touch it). */
const KERNEL_FIELDS = {
  VirtualService: ["family", "protocol", "address", "port", "fwmark", "scheduler", "schedulerFlags", "persistence", "onePacket"],
  RealServer: ["address", "port", "forwarding", "weight", "upperThreshold", "lowerThreshold", "tunnel"],
  /** A pool member's: a RealServer's but its key (address:port). */
  member: ["forwarding", "weight", "upperThreshold", "lowerThreshold", "tunnel"],
};

/** Members of a pool created, deleted or replaced as a whole listed per director in a preview; the rest are counted. */
const MAX_WHOLE_POOL_LINES = 5;

/**
 * A pool member as `pulumi-ipvs status` names it: the pool and the member's key in its `members`. The same rule as
 * provider/status/state.ts poolMemberName, which the package does not export (only "pulumi-ipvs" and
 * "pulumi-ipvs/provider" are importable), so it is repeated here.
 */
const poolMemberName = (pool: string, member: string) => `${pool}[${member}]`;

interface Change {
  kind: Kind;
  /** The resource's name, or a pool member's poolMemberName. */
  name: string;
  op: "create" | "update" | "replace" | "delete";
  /**
   * "tcp/192.0.2.10:80", "10.0.0.11:8080 of tcp/192.0.2.10:80"; "" for a DirectorSettings (its director is the entry);
   * a RealServerHost's host:port.
   */
  entry: string;
  /** host:port of each director, or undefined when only the secret inputs know them. */
  directors?: string[];
  /** Kernel fields that change, "weight 5 → 9"; empty for an update that touches no kernel setting. */
  fields: string[];
  /** A member of a pool created, deleted or replaced as a whole (its URN): the preview lists the first few. */
  wholePool?: string;
}

function parseArgs(argv: string[]): { mode: Mode; stack?: string; cwd: string } {
  const [mode, ...rest] = argv;
  if (mode !== "preview" && mode !== "up" && mode !== "drift") throw new Error("usage: gitops.ts <preview|up|drift> [--stack S] [--cwd DIR]");
  const opts: { mode: Mode; stack?: string; cwd: string } = { mode, cwd: process.cwd() };
  for (let i = 0; i < rest.length; i++) {
    const [flag, value] = [rest[i], rest[i + 1]];
    if ((flag === "--stack" || flag === "--cwd") && value) {
      if (flag === "--stack") opts.stack = value;
      else opts.cwd = value;
      i++;
    } else throw new Error(`unknown argument ${JSON.stringify(flag)}; usage: gitops.ts <preview|up|drift> [--stack S] [--cwd DIR]`);
  }
  return opts;
}

const KINDS: readonly Kind[] = ["VirtualService", "RealServer", "RealServerPool", "DirectorSettings", "RealServerHost"];
const kindOf = (type: string): Kind | undefined => KINDS.find((k) => type.endsWith(`:dynamic/ipvs:${k}`));
const nameOf = (urn: string) => urn.slice(urn.lastIndexOf("::") + 2);
const isPlain = (v: unknown): v is Props => !!v && typeof v === "object" && !Array.isArray(v) && !("4dabf18193072939515e22adb298388d" in v);
const hostPort = (host: unknown, port: unknown) => (String(host).includes(":") ? `[${host}]:${port}` : `${host}:${port}`);

/** Stable JSON (sorted keys) so equal settings compare equal whatever their key order. */
const canonical = (v: unknown): string =>
  JSON.stringify(v ?? null, (_k, x: unknown) => (isPlain(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : 1))) : x));
const show = (v: unknown): string =>
  v === undefined || v === null ? "none" : typeof v === "object" ? canonical(v).replace(/"/g, "") : String(v);

function serviceText(s: Props): string | undefined {
  if (s.fwmark !== undefined && s.fwmark !== null) return `fwmark/${s.family}/${s.fwmark}`;
  return s.address !== undefined ? `${s.protocol}/${hostPort(s.address, s.port)}` : undefined;
}

/**
 * An id's parts → entry and directors (see provider/identity.ts): "tcp/192.0.2.10:80/10.0.0.11:8080@203.0.113.5:22",
 * a pool's "pool/tcp/192.0.2.10:80@…" (entry: its service), a DirectorSettings' "settings@203.0.113.5:22" (entry "").
 */
function fromId(kind: Kind, id: unknown): { entry: string; directors: string[] } | undefined {
  if (typeof id !== "string" || !id.includes("@")) return undefined;
  const at = id.lastIndexOf("@");
  const entry = id.slice(0, at);
  const directors = id.slice(at + 1).split(",");
  if (kind === "VirtualService") return { entry, directors };
  if (kind === "RealServerPool") return { entry: entry.replace(/^pool\//, ""), directors };
  if (kind === "DirectorSettings") return { entry: "", directors };
  const slash = entry.lastIndexOf("/");
  return { entry: `${entry.slice(slash + 1)} of ${entry.slice(0, slash)}`, directors };
}

/**
 * The entry a resource's inputs or outputs name (a RealServer's or pool's `service` is readable in inputs, secret in
 * outputs); for a pool, its service.
 */
function entryText(kind: Kind, props: Props): string | undefined {
  if (kind === "VirtualService") return serviceText(props);
  if (kind === "DirectorSettings") return "";
  const svc = isPlain(props.service) ? serviceText(props.service) : undefined;
  if (kind === "RealServerPool") return svc;
  return svc && props.address !== undefined ? `${hostPort(props.address, props.port)} of ${svc}` : undefined;
}

/** host:port of plain (non-secret) directors inputs; undefined when they are secret or unknown. */
function plainDirectors(kind: Kind, inputs: Props): string[] | undefined {
  const list =
    kind === "VirtualService" ? inputs.directors : kind === "DirectorSettings" ? [inputs.director] : isPlain(inputs.service) ? inputs.service.directors : undefined;
  if (!Array.isArray(list) || !list.every((d) => isPlain(d) && typeof d.host === "string")) return undefined;
  return list.map((d) => hostPort((d as Props).host, (d as Props).port ?? 22));
}

function fieldChanges(fields: readonly string[], before: Props, after: Props): string[] {
  return fields.filter((f) => canonical(before[f]) !== canonical(after[f])).map((f) => `${f} ${show(before[f])} → ${show(after[f])}`);
}

/** A pool's members by "address:port" (undefined while unknown or secret). */
const membersOf = (props: Props): Record<string, Props> | undefined =>
  isPlain(props.members) && Object.values(props.members).every(isPlain) ? (props.members as Record<string, Props>) : undefined;

/** The directors of `all` a member is missing from, when state's `onlyOn` says it is on some only. */
function missingOn(member: Props, all: string[] | undefined): string | undefined {
  if (!Array.isArray(member.onlyOn)) return undefined;
  const held = member.onlyOn.map(String);
  const missing = all?.filter((d) => !held.includes(d)) ?? [];
  return missing.length ? `missing on ${missing.join(", ")}` : `only on ${held.join(", ")}`;
}

/**
 * A pool's changes, one per member: added (create), removed (delete), or which fields change (update). A pool created,
 * deleted or replaced as a whole lists each member as such.
 */
function memberChanges(base: Omit<Change, "name" | "entry" | "fields">, pool: string, service: string, before: Props, after: Props, urn: string): Change[] {
  const member = (key: string, op: Change["op"], fields: string[], whole: boolean): Change => ({
    ...base, op, name: poolMemberName(pool, key), entry: `${key} of ${service}`, fields, ...(whole ? { wholePool: urn } : {}),
  });
  const [olds, news] = [membersOf(before) ?? {}, membersOf(after)];
  if (base.op === "delete") return Object.keys(olds).map((k) => member(k, "delete", [], true));
  if (!news) return [{ ...base, name: pool, entry: service, fields: ["members not known before up"] }];
  if (base.op !== "update") return Object.keys(news).map((k) => member(k, base.op, [], true));
  const out: Change[] = [];
  for (const [k, m] of Object.entries(news)) {
    const was = olds[k];
    if (!was) {
      out.push(member(k, "create", [], false));
      continue;
    }
    const fields = fieldChanges(KERNEL_FIELDS.member, was, m);
    // State records a member that a partial failure or a refresh left on some directors only: up adds it to the others.
    const partial = missingOn(was, base.directors);
    if (partial) fields.push(`${partial}: up adds it there`);
    if (fields.length) out.push(member(k, "update", fields, false));
  }
  for (const k of Object.keys(olds)) if (!(k in news)) out.push(member(k, "delete", [], false));
  return out;
}

/** A DirectorSettings' settings by input path ("timeouts.tcp", "sysctls.expireNodestConn") and its sync daemons by state. */
function settingLeaves(props: Props): { leaves: Map<string, unknown>; daemons: Map<string, Props> } {
  const leaves = new Map<string, unknown>();
  const add = (prefix: string, x: unknown, skip?: string) => {
    if (isPlain(x)) for (const [k, v] of Object.entries(x)) if (v !== undefined && v !== null && k !== skip) leaves.set(`${prefix}.${k}`, v);
  };
  add("timeouts", props.timeouts);
  add("sysctls", props.sysctls);
  add("ipForward", props.ipForward);
  const daemons = new Map<string, Props>();
  for (const d of Array.isArray(props.syncDaemons) ? props.syncDaemons : []) {
    if (!isPlain(d)) continue;
    const { state, ...fields } = d;
    daemons.set(String(state), fields);
  }
  return { leaves, daemons };
}

/**
 * Each setting that differs, "timeouts.tcp 900 → 600", a sync daemon field by field ("syncDaemons.master.syncId 1 → 2")
 * or as a whole when it is there on one side only. `gone` says what a setting missing after means: in a preview the
 * stack stops managing it (the director gets its earlier value back), in a refresh the kernel lacks it (a daemon that
 * is not running).
 */
function settingChanges(before: Props, after: Props, gone: string): string[] {
  const [olds, news] = [settingLeaves(before), settingLeaves(after)];
  const out: string[] = [];
  const compare = (path: string, o: unknown, n: unknown) => {
    if (canonical(o) !== canonical(n)) out.push(`${path} ${o === undefined ? "unmanaged" : show(o)} → ${n === undefined ? gone : show(n)}`);
  };
  for (const path of new Set([...olds.leaves.keys(), ...news.leaves.keys()])) compare(path, olds.leaves.get(path), news.leaves.get(path));
  for (const state of new Set([...olds.daemons.keys(), ...news.daemons.keys()])) {
    const [o, n] = [olds.daemons.get(state), news.daemons.get(state)];
    if (o && n) for (const f of new Set([...Object.keys(o), ...Object.keys(n)])) compare(`syncDaemons.${state}.${f}`, o[f], n[f]);
    if (!o || !n) compare(`syncDaemons.${state}`, o, n);
  }
  return out;
}

const OPS: Partial<Record<string, Change["op"]>> = {
  create: "create",
  update: "update",
  replace: "replace",
  "create-replacement": "replace",
  "delete-replaced": "replace",
  delete: "delete",
};

const SECRET_DIRECTORS = "directors or their connection settings (secret, not shown)";
/** What dropping a setting from a DirectorSettings (or deleting it) does on the director. */
const PUT_BACK = "the director's earlier value";

/** The service a real server or pool line is in: "tcp/192.0.2.10:80" of "10.0.0.11:8080 of tcp/192.0.2.10:80". */
const serviceOf = (entry: string) => (entry.includes(" of ") ? entry.slice(entry.indexOf(" of ") + 4) : entry);

/** The kernel changes a preview plans from its resourcePreEvents: one per resource, per pool member. */
function plannedChanges(events: EngineEvent[]): Change[] {
  const out: Change[] = [];
  const replaced = new Set<string>();
  /** Existing services (unchanged ones too: the engine reports every step) and their directors, from their ids. */
  const services = new Map<string, string[]>();
  for (const md of events.flatMap((e) => (e.resourcePreEvent ? [e.resourcePreEvent.metadata] : []))) {
    const kind = kindOf(md.type);
    const op = OPS[md.op];
    const existing = kind === "VirtualService" ? fromId(kind, md.old?.id) : undefined;
    if (existing) services.set(existing.entry, existing.directors);
    // A replacement comes as create-replacement, replace, delete-replaced: the first says it all. A RealServerHost
    // changes a real server's machine, not a director's kernel: not listed here.
    if (!kind || kind === "RealServerHost" || !op || replaced.has(md.urn)) continue;
    if (op === "replace") replaced.add(md.urn);
    const before = (md.old?.outputs ?? {}) as Props;
    const after = (md.new?.inputs ?? {}) as Props;
    const known = fromId(kind, md.old?.id);
    const name = nameOf(md.urn);
    const entry = entryText(kind, after) ?? known?.entry ?? "?";
    const directors = plainDirectors(kind, after) ?? known?.directors;
    const secretChange = op === "update" && !!md.diffs?.some((k) => k === "directors" || k === "service" || k === "director");
    if (kind === "RealServerPool") {
      const members = memberChanges({ kind, op, directors }, name, entry, before, after, md.urn);
      // A pool's service is secret in state, so a new service identity shows only in the members' entries.
      if (op === "replace" && known && known.entry !== entry) for (const m of members) m.fields.unshift(`was ${serviceOf(known.entry)}`);
      out.push(...members);
      if (op === "update" && (secretChange || members.length === 0)) out.push({ kind, name, op, entry, directors, fields: secretChange ? [SECRET_DIRECTORS] : [] });
      continue;
    }
    let fields: string[];
    if (kind === "DirectorSettings") {
      // A replace moves the settings to another director: the old one gets its earlier values back, the new one all.
      fields = settingChanges(op === "create" || op === "replace" ? {} : before, op === "delete" ? {} : after, PUT_BACK);
      if (op === "replace" && known && directors && canonical(known.directors) !== canonical(directors)) fields.unshift(`was on ${known.directors.join(", ")}`);
    } else {
      fields = op === "update" || op === "replace" ? fieldChanges(KERNEL_FIELDS[kind], before, after) : [];
      // A RealServer's service is secret in state, so a new service identity shows only in the entry itself.
      if (op === "replace" && known && known.entry !== entry) fields.unshift(`was ${known.entry}`);
    }
    if (secretChange && fields.length === 0) fields.push(SECRET_DIRECTORS);
    out.push({ kind, name, op, entry, directors, fields });
  }
  // A real server or pool created in an existing service is on that service's directors.
  for (const c of out)
    if ((c.kind === "RealServer" || c.kind === "RealServerPool") && !c.directors) c.directors = services.get(serviceOf(c.entry));
  return out;
}

/** A pool's drift, per member: fields the kernel has otherwise, missing members, members on some directors only. */
function poolDrift(base: Omit<Change, "name" | "entry" | "fields">, pool: string, service: string, before: Props, after: Props): Change[] {
  const [olds, news] = [membersOf(before) ?? {}, membersOf(after) ?? {}];
  return Object.entries(olds).flatMap(([k, was]) => {
    const m = news[k];
    const fields = m ? fieldChanges(KERNEL_FIELDS.member, was, m) : ["missing in the kernel"];
    if (m && canonical(was.onlyOn) !== canonical(m.onlyOn)) fields.push(missingOn(m, base.directors) ?? "on every director again");
    return fields.length ? [{ ...base, name: poolMemberName(pool, k), entry: `${k} of ${service}`, fields }] : [];
  });
}

/**
 * A real server host's drift as a refresh reads it back: each VIP no longer on its device ("vip 192.0.2.20 missing"),
 * each sysctl the host has otherwise ("net.ipv4.conf.all.arp_ignore 1 → 0"; "absent" when the host has none now).
 */
function hostDrift(before: Props, after: Props): string[] {
  const list = (v: unknown) => (Array.isArray(v) ? v.map(String) : []);
  const sysctls = (p: Props) => (isPlain(p.sysctls) ? p.sysctls : {});
  const [was, now] = [sysctls(before), sysctls(after)];
  return [
    ...list(before.vips).filter((v) => !list(after.vips).includes(v)).map((v) => `vip ${v} missing`),
    ...Object.keys(was).filter((k) => canonical(was[k]) !== canonical(now[k])).map((k) => `${k} ${show(was[k])} → ${now[k] === undefined ? "absent" : show(now[k])}`),
  ];
}

/** What a refresh would write into state: entries whose kernel settings differ from state, or that are gone. */
function driftedEntries(events: EngineEvent[]): Change[] {
  const out: Change[] = [];
  for (const md of events.flatMap((e) => (e.resOutputsEvent ? [e.resOutputsEvent.metadata] : []))) {
    const kind = kindOf(md.type);
    if (!kind || (md.op !== "update" && md.op !== "delete")) continue;
    // A real server host is on no director: its id names the host ("realserverhost@10.10.0.11:22").
    const known: { entry: string; directors?: string[] } | undefined =
      kind === "RealServerHost" ? { entry: String(md.old?.id ?? "?").replace(/^realserverhost@/, "") } : fromId(kind, md.old?.id);
    const before = (md.old?.outputs ?? {}) as Props;
    const after = (md.new?.outputs ?? {}) as Props;
    const base = { kind, name: nameOf(md.urn), op: md.op, entry: known?.entry ?? "?", directors: known?.directors };
    let fields: string[];
    if (md.op === "delete") {
      const n = Object.keys(membersOf(before) ?? {}).length;
      fields = [
        kind === "RealServerPool"
          ? `service missing in the kernel, and with it all ${n} member(s)`
          : kind === "RealServerHost"
            ? "not prepared: the host has no record of it"
            : "missing in the kernel",
      ];
    } else if (kind === "RealServerPool") {
      const members = poolDrift(base, base.name, base.entry, before, after);
      out.push(...members);
      if (members.length) continue;
      fields = [];
    } else if (kind === "DirectorSettings") fields = settingChanges(before, after, "not running");
    else if (kind === "RealServerHost") fields = hostDrift(before, after);
    else fields = fieldChanges(KERNEL_FIELDS[kind], before, after);
    // A refresh can also update state for a change outside the kernel fields (e.g. a director that no longer holds
    // the entry): still drift, said as such.
    out.push({ ...base, fields: fields.length ? fields : ["differs from state (directors)"] });
  }
  return out;
}

const SYMBOL: Record<Change["op"], string> = { create: "+", update: "~", replace: "+-", delete: "-" };

function describe(c: Change, withDirectors: boolean): string {
  const where = withDirectors && c.directors ? `on ${c.directors.join(", ")}` : "";
  const inner = [c.entry, where].filter(Boolean).join(" ");
  return `${c.kind} ${c.name}${inner ? ` (${inner})` : ""}`;
}

/**
 * Per director: what is created, updated (which fields), replaced, deleted. A change on two directors is listed twice;
 * a pool created, deleted or replaced as a whole shows its first members and counts the rest.
 */
function previewReport(changes: Change[]): string {
  if (changes.length === 0) return "No kernel changes.\n";
  const UNKNOWN = "Directors not known before up (a new service's directors are secret inputs):";
  const byDirector = new Map<string, Change[]>();
  for (const c of changes)
    for (const d of c.directors?.map((hp) => `Director ${hp}:`) ?? [UNKNOWN]) byDirector.set(d, [...(byDirector.get(d) ?? []), c]);
  const lines: string[] = [];
  const opColumns = (op: Change["op"]) => `  ${SYMBOL[op].padEnd(2)} ${op.padEnd(7)}`;
  for (const [heading, list] of byDirector) {
    lines.push(heading);
    const shown = new Map<string, number>();
    for (const c of list) {
      if (c.wholePool) {
        const n = shown.get(c.wholePool) ?? 0;
        shown.set(c.wholePool, n + 1);
        if (n === MAX_WHOLE_POOL_LINES) {
          const rest = list.filter((x) => x.wholePool === c.wholePool).length - n;
          lines.push(`${opColumns(c.op)} … and ${rest} more member(s) of RealServerPool ${nameOf(c.wholePool)}`);
        }
        if (n >= MAX_WHOLE_POOL_LINES) continue;
      }
      const what = c.op === "update" && c.fields.length === 0 ? "no kernel change (drain, adopt or credentials)" : c.fields.join(", ");
      lines.push(`${opColumns(c.op)} ${describe(c, false)}${what ? `: ${what}` : ""}`);
    }
  }
  const count = (op: Change["op"]) => changes.filter((c) => c.op === op).length;
  lines.push("", `${count("create")} to create, ${count("update")} to update, ${count("replace")} to replace, ${count("delete")} to delete.`);
  return lines.join("\n") + "\n";
}

/** `hosts`: the stack has RealServerHosts, so "no drift" speaks for them too. */
function driftReport(drift: Change[], hosts: boolean): string {
  if (drift.length === 0) return `No drift: every director's kernel matches the stack.${hosts ? " So does every real server host." : ""}\n`;
  return ["Drift (the kernel differs from the stack; `up` puts the declared settings back):", ...drift.map((c) => `  ${describe(c, true)}: ${c.fields.join(", ")}`)].join("\n") + "\n";
}

/** Bounds the status run (it reads every director, each within its own connect and operation deadlines). */
const STATUS_TIMEOUT_MS = 300_000;

/**
 * The health section of the drift report: `pulumi-ipvs status --json`'s health sentences (the package's own bin,
 * resolved from the project, else from beside this file). Empty when no director runs checks.
 */
async function healthReport(stackName: string, cwd: string): Promise<string> {
  const resolveFrom = [path.resolve(cwd, "package.json"), __filename];
  let cli: string | undefined;
  for (const from of resolveFrom) {
    try {
      const pkgJson = createRequire(from).resolve("pulumi-ipvs/package.json");
      const bin = (JSON.parse(readFileSync(pkgJson, "utf8")) as { bin: Record<string, string> }).bin["pulumi-ipvs"]!;
      cli = path.join(path.dirname(pkgJson), bin);
      break;
    } catch {
      // not installed there: try the next place
    }
  }
  if (!cli) return "Health: not read (the pulumi-ipvs package is not installed in the project).\n";
  const out = await new Promise<{ stdout: string; error?: Error }>((resolve) =>
    execFile(process.execPath, [cli, "status", "--stack", stackName, "--json"], { cwd, timeout: STATUS_TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024 }, (error, stdout) =>
      resolve({ stdout, ...(error ? { error } : {}) }),
    ),
  );
  let report: { health?: string[]; error?: string; directors?: { checker?: unknown }[] };
  try {
    report = JSON.parse(out.stdout) as typeof report;
  } catch {
    return `Health: not read (pulumi-ipvs status: ${out.error?.message ?? "no report"}).\n`;
  }
  // Exit 1 (drift) still carries the whole report; an error report says why.
  if (report.error !== undefined) return `Health: not read (pulumi-ipvs status: ${report.error}).\n`;
  if (!report.directors?.some((d) => d.checker !== undefined)) return "";
  if (!report.health?.length) return "Health: every checked real server is healthy and every director's checker runs.\n";
  return ["Health (the checker's doing, not drift; `up` does not change it):", ...report.health.map((l) => `  ${l}`)].join("\n") + "\n";
}

async function main(): Promise<number> {
  const opts = parseArgs(process.argv.slice(2));
  const workspace = await LocalWorkspace.create({ workDir: opts.cwd });
  const stackName = opts.stack ?? (await workspace.stack())?.name;
  if (!stackName) throw new Error("no stack selected: pass --stack <name>");
  const stack = await LocalWorkspace.selectStack({ stackName, workDir: opts.cwd });
  const events: EngineEvent[] = [];
  const onEvent = (e: EngineEvent) => events.push(e);
  let report: string;
  let code = 0;
  if (opts.mode === "preview") {
    await stack.preview({ onEvent });
    report = previewReport(plannedChanges(events));
  } else if (opts.mode === "up") {
    const res = await stack.up({ onEvent, onOutput: (out) => process.stderr.write(out) });
    report = `up ${res.summary.result}: ${JSON.stringify(res.summary.resourceChanges ?? {})}\n`;
  } else {
    // refresh --preview-only: reads every director, changes no state (a recorded drift would hide itself next time).
    await stack.previewRefresh({ onEvent });
    const drift = driftedEntries(events);
    const hosts = events.some((e) => e.resOutputsEvent && kindOf(e.resOutputsEvent.metadata.type) === "RealServerHost");
    report = driftReport(drift, hosts) + (await healthReport(stackName, opts.cwd));
    code = drift.length ? 1 : 0;
  }
  process.stdout.write(report);
  if (process.env.GITHUB_STEP_SUMMARY) appendFileSync(process.env.GITHUB_STEP_SUMMARY, `### ipvs ${opts.mode} (${stackName})\n\n\`\`\`\n${report}\`\`\`\n`);
  return code;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    // The Automation API's error carries the whole CLI output; its stderr says what went wrong.
    const stderr = (e as { commandResult?: { stderr?: string } }).commandResult?.stderr?.trim();
    process.stderr.write(`gitops: ${stderr || (e instanceof Error ? e.message : String(e))}\n`);
    process.exit(2);
  },
);
