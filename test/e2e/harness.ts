// Runs a Pulumi program with the project's own pulumi CLI (.pulumi-cli/bin, built by test/e2e/pulumi-cli/build.sh)
// against a fresh stack in a throw-away file backend, and hands back what a test needs to check: raw stdout/stderr,
// the engine's event log, stack outputs and the exported state.
//
// The program runs in place (so `require` resolves this repo's node_modules, as for a user's program); only the
// project file, stack config, state and CLI home live in a temp directory, removed by dispose(). With ownProject the
// program folder brings its own Pulumi.yaml and node_modules (a user's project) and the CLI runs there.
import { execFile, execFileSync } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { readFileSync } from "node:fs";
import type { LabDirector } from "../lab/director";

export const repoRoot = path.resolve(__dirname, "../..");
const cliBin = path.join(repoRoot, ".pulumi-cli", "bin");
const buildScript = path.join(repoRoot, "test", "e2e", "pulumi-cli", "build.sh");

/** Passphrase for the temp stacks' secrets; the stacks live only for one test. */
const PASSPHRASE = "pulumi-ipvs-e2e";
const STACK = "e2e";

export interface CliResult {
  /** The pulumi arguments, for error messages. */
  args: string[];
  code: number;
  stdout: string;
  stderr: string;
}

export interface OperationResult extends CliResult {
  /** Engine events from `--event-log`, in order. */
  events: EngineEvent[];
}

/** One line of the engine's event log; see @pulumi/pulumi/automation/events for the full shape. */
export interface EngineEvent {
  sequence: number;
  timestamp: number;
  [kind: string]: unknown;
}

export interface StackOptions {
  /** Program folder, absolute or relative to the repo root (an examples/ folder or a test fixture). */
  program: string;
  /** Entry file inside the folder. */
  entry?: string;
  /** Pulumi project name; defaults to the folder name. */
  project?: string;
  /** Initial stack config; keys without a namespace belong to the project. */
  config?: Record<string, string | { secret: string }>;
  /** Extra environment for every CLI run of this stack (set after the hermetic defaults, e.g. NODE_OPTIONS for a hook). */
  env?: Record<string, string>;
  /**
   * The program folder is a project of its own (its Pulumi.yaml, its node_modules, e.g. a user's project in a temp
   * dir): the CLI runs there instead of in a generated project, and stack config files land there.
   */
  ownProject?: boolean;
}

/** Builds the CLI if its inputs changed (a no-op taking milliseconds otherwise). */
export function ensureCli(): void {
  execFileSync("bash", [buildScript], { stdio: ["ignore", "inherit", "inherit"] });
}

export class E2EStack {
  private constructor(
    readonly programDir: string,
    /** Temp directory holding project/, state/ and home/. */
    readonly workDir: string,
    private readonly extraEnv: Record<string, string> = {},
    private readonly ownProject = false,
  ) {}

  /** The stack's name: "e2e" until renameStack. */
  private current = STACK;

  get stackName(): string {
    return this.current;
  }

  /** `pulumi stack rename <name>` (state and stack config file move); later calls use the new name. */
  async renameStack(name: string): Promise<CliResult> {
    const res = await this.cli(["stack", "rename", name, "--stack", this.current, "--non-interactive"]);
    this.current = name;
    return res;
  }

  get projectDir(): string {
    return this.ownProject ? this.programDir : path.join(this.workDir, "project");
  }

  static async create(opts: StackOptions): Promise<E2EStack> {
    ensureCli();
    const programDir = path.resolve(repoRoot, opts.program);
    const entry = path.join(programDir, opts.entry ?? "index.ts");
    if (!existsSync(entry)) throw new Error(`E2EStack: program entry ${entry} does not exist`);

    const workDir = await mkdtemp(path.join(tmpdir(), "pulumi-ipvs-e2e-"));
    const stack = new E2EStack(programDir, workDir, opts.env, opts.ownProject);
    try {
      await mkdir(path.join(workDir, "state"));
      await mkdir(path.join(workDir, "home"));
      if (opts.ownProject) {
        if (!existsSync(path.join(programDir, "Pulumi.yaml"))) throw new Error(`E2EStack: ${programDir} has no Pulumi.yaml`);
      } else {
        await mkdir(stack.projectDir);
        // An absolute `main` naming the entry file: the engine then runs the program in its own folder, with the
        // program folder as working directory (also for the dynamic-provider process, whose `require`s resolve there).
        const project = opts.project ?? path.basename(programDir);
        await writeFile(
          path.join(stack.projectDir, "Pulumi.yaml"),
          `name: ${project}\nruntime:\n  name: nodejs\n  options:\n    typescript: true\nmain: ${JSON.stringify(entry)}\n`,
        );
      }
      await stack.cli(["stack", "init", STACK]);
      for (const [key, value] of Object.entries(opts.config ?? {})) {
        if (typeof value === "string") await stack.setConfig(key, value);
        else await stack.setConfig(key, value.secret, { secret: true });
      }
    } catch (err) {
      await rm(workDir, { recursive: true, force: true });
      throw err;
    }
    return stack;
  }

  /** Sets a config value; secret values go through stdin, so they never appear in a process list. */
  async setConfig(key: string, value: string, opts: { secret?: boolean } = {}): Promise<void> {
    const args = ["config", "set", "--stack", this.current, ...(opts.secret ? ["--secret"] : ["--plaintext"]), key];
    if (opts.secret) await this.cli(args, { stdin: value });
    else await this.cli([...args, "--", value]);
  }

  preview(): Promise<OperationResult> {
    return this.operation("preview", ["preview", "--diff"]);
  }

  up(): Promise<OperationResult> {
    return this.operation("up", ["up", "--yes", "--skip-preview", "--diff"]);
  }

  refresh(): Promise<OperationResult> {
    return this.operation("refresh", ["refresh", "--yes", "--skip-preview"]);
  }

  destroy(): Promise<OperationResult> {
    return this.operation("destroy", ["destroy", "--yes", "--skip-preview"]);
  }

  /** Stack outputs; secret outputs come back as "[secret]" unless showSecrets. */
  async outputs(opts: { showSecrets?: boolean } = {}): Promise<Record<string, unknown>> {
    const res = await this.cli(["stack", "output", "--stack", this.current, "--json", `--show-secrets=${!!opts.showSecrets}`]);
    return JSON.parse(res.stdout) as Record<string, unknown>;
  }

  /** The state as `pulumi stack export --show-secrets=false` writes it (secrets stay encrypted). */
  async exportState(): Promise<{ text: string; deployment: StateDeployment }> {
    const res = await this.cli(["stack", "export", "--stack", this.current, "--show-secrets=false"]);
    const parsed = JSON.parse(res.stdout) as { deployment: StateDeployment };
    return { text: res.stdout, deployment: parsed.deployment };
  }

  /** Destroys what the stack still owns, then removes the temp directory with the stack, its state and config. */
  async dispose(): Promise<void> {
    try {
      const { deployment } = await this.exportState();
      const owned = (deployment.resources ?? []).filter((r) => !r.type.startsWith("pulumi:"));
      if (owned.length > 0) await this.destroy();
    } finally {
      await rm(this.workDir, { recursive: true, force: true });
    }
  }

  private async operation(name: string, args: string[]): Promise<OperationResult> {
    const eventLog = path.join(this.workDir, `${name}-${Date.now()}.events.jsonl`);
    const res = await this.cli([...args, "--stack", this.current, "--non-interactive", "--event-log", eventLog]);
    const text = existsSync(eventLog) ? await readFile(eventLog, "utf8") : "";
    const events = text
      .split("\n")
      .filter((line) => line.trim() !== "")
      .map((line) => JSON.parse(line) as EngineEvent);
    return { ...res, events };
  }

  /** The hermetic environment of this stack's pulumi runs (see pulumiEnvFor), also for the Automation API. */
  pulumiEnv(): NodeJS.ProcessEnv {
    return pulumiEnvFor(this.workDir);
  }

  /** Runs the CLI in the project directory with a hermetic environment; a non-zero exit throws with all output. */
  cli(args: string[], opts: { stdin?: string } = {}): Promise<CliResult> {
    // --event-log is registered only for "debug commands" (the Automation API sets this too).
    const env = { ...this.pulumiEnv(), PULUMI_DEBUG_COMMANDS: "true", ...this.extraEnv };
    // Global flags first: anything after a `--` is a positional value.
    const fullArgs = ["--color=never", ...args];
    return new Promise((resolve, reject) => {
      const child = execFile(
        path.join(cliBin, "pulumi"),
        fullArgs,
        { cwd: this.projectDir, env, maxBuffer: 64 * 1024 * 1024 },
        (err, stdout, stderr) => {
          const result: CliResult = { args: fullArgs, code: child.exitCode ?? (err ? 1 : 0), stdout, stderr };
          if (err) {
            reject(
              new Error(
                `pulumi ${fullArgs.join(" ")} failed (exit ${result.code}):\n--- stdout\n${stdout}\n--- stderr\n${stderr}`,
              ),
            );
          } else resolve(result);
        },
      );
      child.stdin?.end(opts.stdin ?? "");
    });
  }
}

/**
 * A hermetic environment for pulumi runs whose home and file backend are workDir's home/ and state/ (which must
 * exist): the temp passphrase, no update checks or plugin downloads, the project's CLI first on PATH. For a test that
 * runs `pulumi` as a user types it (test/e2e/package.test.ts) as well as for E2EStack.
 */
export function pulumiEnvFor(workDir: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    // Nothing from the caller's Pulumi setup (tokens, backends, homes) or Node flags may leak into the run.
    if (!k.startsWith("PULUMI_") && k !== "NODE_OPTIONS") env[k] = v;
  }
  return Object.assign(env, {
    PATH: [cliBin, path.dirname(process.execPath), process.env.PATH ?? ""].join(path.delimiter),
    PULUMI_HOME: path.join(workDir, "home"),
    PULUMI_BACKEND_URL: `file://${path.join(workDir, "state")}`,
    PULUMI_CONFIG_PASSPHRASE: PASSPHRASE,
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
  });
}

/** The parts of an exported deployment the tests look at. */
export interface StateDeployment {
  resources?: Array<{
    urn: string;
    type: string;
    id?: string;
    inputs?: Record<string, unknown>;
    outputs?: Record<string, unknown>;
    /** Where the program registered it: "project:///<path relative to the project folder>#<line>,<column>". */
    sourcePosition?: string;
  }>;
}

/** The stack config that points a fixture's director at the lab director d (the fixtures read these keys). */
export const labDirectorConfig = (d: LabDirector) => ({
  host: d.host,
  port: String(d.port),
  user: d.user,
  privateKey: { secret: readFileSync(d.privateKeyPath, "utf8") },
  hostKey: d.hostKey,
});
