#!/usr/bin/env node
// `pulumi-ipvs status [--stack S] [--json] [--refreshed] [--pulumi PATH]`, run in a Pulumi project directory like the
// pulumi CLI: reads the stack's state through the Automation API (the `pulumi` on PATH or given, its usual environment:
// backend, passphrase or secrets provider), dumps each director's table once over SSH (and reads the declared settings
// of a director with DirectorSettings), and prints declared (the state's inputs: what the program last declared; with
// --refreshed the outputs: what the last up or refresh recorded) vs kernel with the kernel's counters, each
// RealServerHost against its host (read as refresh reads it), and apart from that the health of checked real servers
// and whether each director's health checker runs.
// Exit 0 everything matches, 1 drift, 2 error. The decrypted state stays in memory; every printed text is redacted.
import { accessSync, constants, statSync } from "node:fs";
import path from "node:path";
import { LocalWorkspace } from "@pulumi/pulumi/automation";
import { directorOps } from "../helperClient";
import { closeAllSessions } from "../session";
import { managedSysctls } from "../resources/directorSettings/wire";
import { readHost } from "../resources/realServerHost/provider";
import { compareStack, exitCode, type HostView, type KernelSettings, type KernelView } from "./compare";
import { render } from "./render";
import { stackEntries, type ExportedResource } from "./state";

/** The environment the pulumi CLI (and so status) reads the stack with; named when no CLI can be found. */
const PULUMI_ENV = "PULUMI_BACKEND_URL, PULUMI_ACCESS_TOKEN, PULUMI_CONFIG_PASSPHRASE(_FILE), PULUMI_HOME";

const USAGE = `usage: pulumi-ipvs status [--stack <name>] [--json] [--refreshed] [--pulumi <path>]

Run in a Pulumi project directory. Compares every VirtualService, RealServer and RealServerPool member
(pool[address:port]) of the stack (default: the selected stack) with the kernel of each director, and each
DirectorSettings with the director's timeouts, sync daemons, sysctls and ip_vs_ftp's ports, and each RealServerHost
with its host (reachable or not, each VIP on lo, tunl0 or gre0, the ARP and rp_filter sysctls); shows the real servers' connections and rates,
and their health where a check is declared (healthy / unhealthy / not probed yet, since when, the last result; depooled,
kept pooled by minHealthy, the sorry server) and whether each director's health checker runs. A real server the
checker depooled is health, not drift.
Declared is what the program last declared (a hand edit stays drift after a refresh); --refreshed compares with what
the last up or refresh recorded instead. The stack is read with the pulumi CLI on PATH, or the one --pulumi names
(the binary or its directory), and its usual environment (${PULUMI_ENV}).
Exit status: 0 everything matches, 1 drift, 2 error.`;

interface Args {
  stack?: string;
  json: boolean;
  refreshed: boolean;
  /** The directory of the pulumi CLI to use; the PATH's when absent. */
  pulumiDir?: string;
}

/** The arguments, or what to print instead and the exit code (0 for --help). */
function parseArgs(argv: string[]): Args | { print: string; code: number } {
  const usage = (why?: string) => ({ print: why ? `${why}\n${USAGE}` : USAGE, code: why ? 2 : 0 });
  const [command, ...rest] = argv;
  if (command === "--help" || command === "-h") return usage();
  if (command !== "status") return usage(command === undefined ? "no command" : `unknown command ${JSON.stringify(command)}`);
  const args: Args = { json: false, refreshed: false };
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    if (a === "--json") args.json = true;
    else if (a === "--refreshed") args.refreshed = true;
    else if (a === "--stack" || a === "-s") {
      const v = rest[++i];
      if (!v) return usage("--stack needs a stack name");
      args.stack = v;
    } else if (a.startsWith("--stack=")) args.stack = a.slice("--stack=".length);
    else if (a === "--pulumi") {
      const v = rest[++i];
      if (!v) return usage("--pulumi needs the path of the pulumi CLI");
      args.pulumiDir = v;
    } else if (a.startsWith("--pulumi=")) args.pulumiDir = a.slice("--pulumi=".length);
    else if (a === "--help" || a === "-h") return usage();
    else return usage(`unknown argument ${JSON.stringify(a)}`);
  }
  return args;
}

const executable = (file: string) => {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
};

/**
 * Puts the CLI `--pulumi` names first on PATH (the Automation API runs `pulumi` from PATH, and the CLI finds its
 * language plugins beside it), or checks that PATH has one: without a CLI the Automation API would fail with a bare
 * `spawn pulumi ENOENT`.
 */
function findPulumi(given: string | undefined): void {
  if (given !== undefined) {
    const dir = path.basename(given) === "pulumi" && !statSync(given, { throwIfNoEntry: false })?.isDirectory() ? path.dirname(given) : given;
    if (!executable(path.join(dir, "pulumi")))
      throw new Error(`--pulumi ${given}: no executable pulumi CLI there (give the binary or the directory that holds it)`);
    process.env.PATH = [path.resolve(dir), process.env.PATH ?? ""].join(path.delimiter);
    return;
  }
  const onPath = (process.env.PATH ?? "").split(path.delimiter).some((d) => d && executable(path.join(d, "pulumi")));
  if (!onPath)
    throw new Error(
      `no pulumi CLI on PATH (status reads the stack's state with it): install it (https://www.pulumi.com/docs/install/) or pass --pulumi <path to the pulumi binary>; status honours ${PULUMI_ENV} as pulumi does`,
    );
}

/** The CLI's own complaint, without the command line and output the Automation API wraps around it. */
function cliMessage(e: unknown): string {
  const result = (e as { commandResult?: { stderr?: string } }).commandResult;
  const text = result?.stderr?.trim() || (e instanceof Error ? e.message : String(e));
  return text.replace(/^error: /, "");
}

async function status(args: Args): Promise<{ text: string; code: number }> {
  findPulumi(args.pulumiDir);
  const ws = await LocalWorkspace.create({ workDir: process.cwd() });
  // The named stack is read without selecting it (`stack select` would change the project's current stack).
  const stackName = args.stack ?? (await ws.stack())?.name;
  if (!stackName) throw new Error("no stack selected: pass --stack <name> (or run `pulumi stack select`)");
  const exported = await ws.exportStack(stackName);
  const entries = stackEntries((exported.deployment as { resources?: ExportedResource[] }).resources ?? [], args.refreshed ? "refreshed" : "declared");
  // One dump per director, all at once, and beside it one getSettings (only the declared sysctls) where the stack has
  // DirectorSettings; each is bounded by the director's connect and operation deadlines.
  const message = (e: unknown) => (e instanceof Error ? e.message : String(e));
  const kernel = new Map<string, KernelView>();
  const directorsRead = Promise.all(
    [...entries.directors].map(async ([key, director]) => {
      const ops = directorOps(director);
      const declared = entries.settings.find((s) => s.director === key);
      const settings = declared
        ? ops.run({ op: "getSettings", sysctls: managedSysctls(declared.entry) }).then(
            (r): { settings: KernelSettings } => ({ settings: r.settings }),
            (e: unknown) => ({ error: message(e) }),
          )
        : undefined;
      // The dump also says whether the health checker runs there (when some stack declares a check).
      const dump = ops.run({ op: "dump" }).then(
        (r) => ({ services: r.services, ...(r.checker ? { checker: r.checker } : {}) }),
        (e: unknown) => ({ error: message(e) }),
      );
      const [dumped, read] = await Promise.all([dump, settings]);
      kernel.set(key, "error" in dumped ? dumped : { ...dumped, ...(read ? { settings: read } : {}) });
    }),
  );
  // Beside them, one getHost per RealServerHost (hosts sharing SSH settings share one session, as directors do).
  const hosts = new Map<string, HostView>();
  const hostsRead = Promise.all(
    entries.hosts.map(async (h) =>
      hosts.set(
        h.resource.urn,
        await readHost(directorOps, h.entry).then(
          (host): HostView => ({ host }),
          (e: unknown) => ({ error: message(e) }),
        ),
      ),
    ),
  );
  await Promise.all([directorsRead, hostsRead]);
  closeAllSessions();
  const report = compareStack(stackName, entries, kernel, hosts);
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
