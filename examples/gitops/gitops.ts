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
import { appendFileSync } from "node:fs";
import { LocalWorkspace, type EngineEvent } from "@pulumi/pulumi/automation";

type Mode = "preview" | "up" | "drift";
type Kind = "VirtualService" | "RealServer";
type Props = Record<string, unknown>;

/** The settings that are kernel state, per resource kind (the rest — drain, adopt, credentials — never touch it). */
const KERNEL_FIELDS: Record<Kind, string[]> = {
  VirtualService: ["family", "protocol", "address", "port", "fwmark", "scheduler", "schedulerFlags", "persistence", "onePacket"],
  RealServer: ["address", "port", "forwarding", "weight", "upperThreshold", "lowerThreshold", "tunnel"],
};

interface Change {
  kind: Kind;
  name: string;
  op: "create" | "update" | "replace" | "delete";
  /** "tcp/192.0.2.10:80", "10.0.0.11:8080 of tcp/192.0.2.10:80". */
  entry: string;
  /** host:port of each director, or undefined when only the secret inputs know them. */
  directors?: string[];
  /** Kernel fields that change, "weight 5 → 9"; empty for an update that touches no kernel setting. */
  fields: string[];
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

const kindOf = (type: string): Kind | undefined =>
  type.endsWith(":dynamic/ipvs:VirtualService") ? "VirtualService" : type.endsWith(":dynamic/ipvs:RealServer") ? "RealServer" : undefined;
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

/** An id's parts: "tcp/192.0.2.10:80/10.0.0.11:8080@203.0.113.5:22" → entry and directors (see provider/identity.ts). */
function fromId(kind: Kind, id: unknown): { entry: string; directors: string[] } | undefined {
  if (typeof id !== "string" || !id.includes("@")) return undefined;
  const at = id.lastIndexOf("@");
  const entry = id.slice(0, at);
  const directors = id.slice(at + 1).split(",");
  if (kind === "VirtualService") return { entry, directors };
  const slash = entry.lastIndexOf("/");
  return { entry: `${entry.slice(slash + 1)} of ${entry.slice(0, slash)}`, directors };
}

/** The entry a resource's inputs or outputs name (a RealServer's `service` is readable in inputs, secret in outputs). */
function entryText(kind: Kind, props: Props): string | undefined {
  if (kind === "VirtualService") return serviceText(props);
  const svc = isPlain(props.service) ? serviceText(props.service) : undefined;
  return svc && props.address !== undefined ? `${hostPort(props.address, props.port)} of ${svc}` : undefined;
}

/** host:port of plain (non-secret) directors inputs; undefined when they are secret or unknown. */
function plainDirectors(kind: Kind, inputs: Props): string[] | undefined {
  const list = kind === "VirtualService" ? inputs.directors : isPlain(inputs.service) ? inputs.service.directors : undefined;
  if (!Array.isArray(list) || !list.every((d) => isPlain(d) && typeof d.host === "string")) return undefined;
  return list.map((d) => hostPort((d as Props).host, (d as Props).port ?? 22));
}

function fieldChanges(kind: Kind, before: Props, after: Props): string[] {
  return KERNEL_FIELDS[kind]
    .filter((f) => canonical(before[f]) !== canonical(after[f]))
    .map((f) => `${f} ${show(before[f])} → ${show(after[f])}`);
}

const OPS: Partial<Record<string, Change["op"]>> = {
  create: "create",
  update: "update",
  replace: "replace",
  "create-replacement": "replace",
  "delete-replaced": "replace",
  delete: "delete",
};

/** The kernel changes a preview plans, one per resource, from its resourcePreEvents. */
function plannedChanges(events: EngineEvent[]): Change[] {
  const byUrn = new Map<string, Change>();
  /** Existing services (unchanged ones too: the engine reports every step) and their directors, from their ids. */
  const services = new Map<string, string[]>();
  for (const md of events.flatMap((e) => (e.resourcePreEvent ? [e.resourcePreEvent.metadata] : []))) {
    const kind = kindOf(md.type);
    const op = OPS[md.op];
    const existing = kind === "VirtualService" ? fromId(kind, md.old?.id) : undefined;
    if (existing) services.set(existing.entry, existing.directors);
    // A replacement comes as create-replacement, replace, delete-replaced: the first says it all.
    if (!kind || !op || byUrn.get(md.urn)?.op === "replace") continue;
    const before = (md.old?.outputs ?? {}) as Props;
    const after = (md.new?.inputs ?? {}) as Props;
    const known = fromId(kind, md.old?.id);
    const entry = entryText(kind, after) ?? known?.entry ?? "?";
    const fields = op === "update" || op === "replace" ? fieldChanges(kind, before, after) : [];
    // A RealServer's service is secret in state, so a new service identity shows only in the entry itself.
    if (op === "replace" && known && known.entry !== entry) fields.unshift(`was ${known.entry}`);
    if (op === "update" && fields.length === 0 && md.diffs?.some((k) => k === "directors" || k === "service"))
      fields.push("directors or their connection settings (secret, not shown)");
    const change: Change = { kind, name: nameOf(md.urn), op, entry, directors: plainDirectors(kind, after) ?? known?.directors, fields };
    byUrn.set(md.urn, change);
  }
  // A real server created in an existing service is on that service's directors.
  for (const c of byUrn.values())
    if (c.kind === "RealServer" && !c.directors) c.directors = services.get(c.entry.slice(c.entry.indexOf(" of ") + 4));
  return [...byUrn.values()];
}

/** What a refresh would write into state: entries whose kernel settings differ from state, or that are gone. */
function driftedEntries(events: EngineEvent[]): Change[] {
  const out: Change[] = [];
  for (const md of events.flatMap((e) => (e.resOutputsEvent ? [e.resOutputsEvent.metadata] : []))) {
    const kind = kindOf(md.type);
    if (!kind || (md.op !== "update" && md.op !== "delete")) continue;
    const known = fromId(kind, md.old?.id);
    const before = (md.old?.outputs ?? {}) as Props;
    const after = (md.new?.outputs ?? {}) as Props;
    const fields = md.op === "delete" ? ["missing in the kernel"] : fieldChanges(kind, before, after);
    // A refresh can also update state for a change outside the kernel fields (e.g. a director that no longer holds
    // the entry): still drift, said as such.
    out.push({ kind, name: nameOf(md.urn), op: md.op, entry: known?.entry ?? "?", directors: known?.directors, fields: fields.length ? fields : ["differs from state (directors)"] });
  }
  return out;
}

const SYMBOL: Record<Change["op"], string> = { create: "+", update: "~", replace: "+-", delete: "-" };

function describe(c: Change, withDirectors: boolean): string {
  const where = withDirectors && c.directors ? ` on ${c.directors.join(", ")}` : "";
  return `${c.kind} ${c.name} (${c.entry}${where})`;
}

/** Per director: what is created, updated (which fields), replaced, deleted. A change on two directors is listed twice. */
function previewReport(changes: Change[]): string {
  if (changes.length === 0) return "No kernel changes.\n";
  const UNKNOWN = "Directors not known before up (a new service's directors are secret inputs):";
  const byDirector = new Map<string, Change[]>();
  for (const c of changes)
    for (const d of c.directors?.map((hp) => `Director ${hp}:`) ?? [UNKNOWN]) byDirector.set(d, [...(byDirector.get(d) ?? []), c]);
  const lines: string[] = [];
  for (const [heading, list] of byDirector) {
    lines.push(heading);
    for (const c of list) {
      const what = c.op === "update" && c.fields.length === 0 ? "no kernel change (drain, adopt or credentials)" : c.fields.join(", ");
      lines.push(`  ${SYMBOL[c.op].padEnd(2)} ${c.op.padEnd(7)} ${describe(c, false)}${what ? `: ${what}` : ""}`);
    }
  }
  const count = (op: Change["op"]) => changes.filter((c) => c.op === op).length;
  lines.push("", `${count("create")} to create, ${count("update")} to update, ${count("replace")} to replace, ${count("delete")} to delete.`);
  return lines.join("\n") + "\n";
}

function driftReport(drift: Change[]): string {
  if (drift.length === 0) return "No drift: every director's kernel matches the stack.\n";
  return ["Drift (the kernel differs from the stack; `up` puts the declared settings back):", ...drift.map((c) => `  ${describe(c, true)}: ${c.fields.join(", ")}`)].join("\n") + "\n";
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
    report = driftReport(drift);
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
