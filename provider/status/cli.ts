#!/usr/bin/env node
// `pulumi-ipvs status [--stack S] [--json]`, run in a Pulumi project directory like the pulumi CLI: reads the stack's
// state through the Automation API (the `pulumi` on PATH, its usual environment: backend, passphrase or secrets
// provider), dumps each director's table once over SSH (and reads the declared settings of a director with
// DirectorSettings), and prints declared vs kernel with the kernel's counters.
// Exit 0 everything matches, 1 drift, 2 error. The decrypted state stays in memory; every printed text is redacted.
import { LocalWorkspace } from "@pulumi/pulumi/automation";
import { managedSysctls } from "../directorSettingsProvider";
import { directorOps } from "../helperClient";
import { closeAllSessions } from "../session";
import { compareStack, exitCode, type KernelSettings, type KernelView } from "./compare";
import { render } from "./render";
import { stackEntries, type ExportedResource } from "./state";

const USAGE = `usage: pulumi-ipvs status [--stack <name>] [--json]

Run in a Pulumi project directory. Compares every VirtualService, RealServer and RealServerPool member
(pool[address:port]) of the stack (default: the selected stack) with the kernel of each director, and each
DirectorSettings with the director's timeouts, sync daemons and sysctls; shows the real servers' connections and rates.
Exit status: 0 everything matches, 1 drift, 2 error.`;

interface Args {
  stack?: string;
  json: boolean;
}

/** The arguments, or what to print instead and the exit code (0 for --help). */
function parseArgs(argv: string[]): Args | { print: string; code: number } {
  const usage = (why?: string) => ({ print: why ? `${why}\n${USAGE}` : USAGE, code: why ? 2 : 0 });
  const [command, ...rest] = argv;
  if (command === "--help" || command === "-h") return usage();
  if (command !== "status") return usage(command === undefined ? "no command" : `unknown command ${JSON.stringify(command)}`);
  const args: Args = { json: false };
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    if (a === "--json") args.json = true;
    else if (a === "--stack" || a === "-s") {
      const v = rest[++i];
      if (!v) return usage("--stack needs a stack name");
      args.stack = v;
    } else if (a.startsWith("--stack=")) args.stack = a.slice("--stack=".length);
    else if (a === "--help" || a === "-h") return usage();
    else return usage(`unknown argument ${JSON.stringify(a)}`);
  }
  return args;
}

/** The CLI's own complaint, without the command line and output the Automation API wraps around it. */
function cliMessage(e: unknown): string {
  const result = (e as { commandResult?: { stderr?: string } }).commandResult;
  const text = result?.stderr?.trim() || (e instanceof Error ? e.message : String(e));
  return text.replace(/^error: /, "");
}

async function status(args: Args): Promise<{ text: string; code: number }> {
  const ws = await LocalWorkspace.create({ workDir: process.cwd() });
  // The named stack is read without selecting it (`stack select` would change the project's current stack).
  const stackName = args.stack ?? (await ws.stack())?.name;
  if (!stackName) throw new Error("no stack selected: pass --stack <name> (or run `pulumi stack select`)");
  const exported = await ws.exportStack(stackName);
  const entries = stackEntries(((exported.deployment as { resources?: ExportedResource[] }).resources ?? []));
  // One dump per director, all at once, and beside it one getSettings (only the declared sysctls) where the stack has
  // DirectorSettings; each is bounded by the director's connect and operation deadlines.
  const message = (e: unknown) => (e instanceof Error ? e.message : String(e));
  const kernel = new Map<string, KernelView>();
  await Promise.all(
    [...entries.directors].map(async ([key, director]) => {
      const ops = directorOps(director);
      const declared = entries.settings.find((s) => s.director === key);
      const settings = declared
        ? ops.run({ op: "getSettings", sysctls: managedSysctls(declared.entry) }).then(
            (r): { settings: KernelSettings } => ({ settings: r.settings }),
            (e: unknown) => ({ error: message(e) }),
          )
        : undefined;
      const [dump, read] = await Promise.all([ops.dump().then((services) => ({ services }), (e: unknown) => ({ error: message(e) })), settings]);
      kernel.set(key, "error" in dump ? dump : { ...dump, ...(read ? { settings: read } : {}) });
    }),
  );
  closeAllSessions();
  const report = compareStack(stackName, entries, kernel);
  const text = render(report, { json: args.json, credentials: entries.secrets });
  return { text, code: exitCode(report) };
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  if ("print" in args) {
    process.stderr.write(args.print + "\n");
    return args.code;
  }
  try {
    const { text, code } = await status(args);
    await new Promise<void>((resolve) => process.stdout.write(text, () => resolve()));
    return code;
  } catch (e) {
    const message = cliMessage(e);
    if (args.json) process.stdout.write(JSON.stringify({ status: "error", error: message }, null, 2) + "\n");
    process.stderr.write(`pulumi-ipvs status: ${message}\n`);
    return 2;
  }
}

void main().then((code) => process.exit(code));
