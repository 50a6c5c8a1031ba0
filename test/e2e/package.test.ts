// Issue 10 item 6, "a package that installs": `npm pack` makes a tarball holding exactly what a user needs. Issue 26
// item 1: the README's "A new project" (its three files, its install and pulumi lines, read from README.md) is
// followed in an empty directory with that tarball through the real pulumi CLI against a lab director, no process the
// CLI starts resolves a single file from this checkout, and the package's .d.ts compile under TypeScript 5.9 and 6.0.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, lstatSync, readFileSync } from "node:fs";
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDirector, type LabDirector } from "../lab/director";
import { ipvsadmSave } from "../lab/ipvsadm";
import { addRealServers, addVip, httpRequests } from "../lab/realServers";
import { ensureCli, pulumiEnvFor, repoRoot } from "./harness";

const run = promisify(execFile);
const pkg = JSON.parse(readFileSync(path.join(repoRoot, "package.json"), "utf8")) as {
  version: string;
  license: string;
  devDependencies: Record<string, string>;
};
const VIP = "192.0.2.10";
const BINARIES = ["ipvs-helper-linux-amd64", "ipvs-helper-linux-arm64"];
/** The newest TypeScript @pulumi/pulumi's peer range (>=3.8.3 <7) accepts, which the README says the .d.ts compile under. */
const NEWEST_TS = "6.0.3";

/** The .ts files tsconfig.json compiles (src/ and provider/ minus tests and the Go helper), repo-relative. */
async function compiledSources(): Promise<string[]> {
  const out: string[] = [];
  for (const root of ["src", "provider"]) {
    for (const f of await readdir(path.join(repoRoot, root), { recursive: true })) {
      const rel = path.join(root, f);
      if (rel.endsWith(".ts") && !rel.endsWith(".test.ts") && !rel.startsWith("provider/helper/")) out.push(rel);
    }
  }
  return out;
}

/**
 * The tarball is packed with --ignore-scripts: prepack would `rm -rf dist` and rebuild, pulling dist/ from under the
 * e2e files vitest runs beside this one (they load it through node_modules/pulumi-ipvs). Instead tsc compiles into a
 * temp dir and dist/ must match it, and the helper is rebuilt (reproducible, replaced by rename, a no-op when current).
 */
async function ensureBuildCurrent(tmp: string): Promise<void> {
  const fresh = path.join(tmp, "fresh-dist");
  await run(process.execPath, [require.resolve("typescript/bin/tsc"), "-p", "tsconfig.json", "--outDir", fresh], { cwd: repoRoot });
  const stale: string[] = [];
  for (const f of await readdir(fresh, { recursive: true })) {
    if (!/\.(js|d\.ts)$/.test(f)) continue;
    const built = path.join(repoRoot, "dist", f);
    if (!existsSync(built) || !readFileSync(built).equals(readFileSync(path.join(fresh, f)))) stale.push(f);
  }
  if (stale.length > 0) throw new Error(`dist/ is not the build of the current sources (${stale.join(", ")}): run npm run build`);
  await run("bash", [path.join(repoRoot, "provider/helper/build.sh")], { cwd: repoRoot });
}

/** The environment for npm in the user's project: nothing npx/vitest set about this repo (its package, its prefix). */
function userNpmEnv(base: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(base)) {
    if (!/^(npm_package_|npm_lifecycle_|npm_config_local_prefix$|INIT_CWD$|NODE_PATH$)/.test(k)) env[k] = v;
  }
  return env;
}

/**
 * The README's "A new project" section as a user reads it: each fenced block that is not shell is a file, named by the
 * `name` that opens the paragraph before it; index.ts is the file its "`index.ts`: a copy of `…`" names; the shell
 * blocks are the commands, one a line. Parsed from README.md itself, so the test fails when README and reality part.
 */
function readmeNewProject(): { files: Map<string, string>; indexFrom: string; commands: string[] } {
  const readme = readFileSync(path.join(repoRoot, "README.md"), "utf8");
  const start = readme.indexOf("\n## A new project\n");
  if (start < 0) throw new Error('README.md has no "## A new project" section');
  const end = readme.indexOf("\n## ", start + 1);
  const section = readme.slice(start, end < 0 ? undefined : end);
  const files = new Map<string, string>();
  const commands: string[] = [];
  const fence = /^```(\w*)\n([\s\S]*?)^```$/gm;
  let last = 0;
  for (let m = fence.exec(section); m; m = fence.exec(section)) {
    const paragraph = section.slice(last, m.index).trim().split(/\n\s*\n/).pop() ?? "";
    last = fence.lastIndex;
    if (m[1] === "sh") commands.push(...m[2]!.split("\n").map((l) => l.trim()).filter((l) => l !== ""));
    else {
      const name = /^`([^`]+)`/.exec(paragraph)?.[1];
      if (!name) throw new Error(`README "A new project": a ${m[1]} block without a \`file name\` before it`);
      files.set(name, m[2]!);
    }
  }
  const indexFrom = /`index\.ts`: a copy of `([^`]+)`/.exec(section)?.[1];
  if (!indexFrom) throw new Error('README "A new project" no longer says "`index.ts`: a copy of `…`"');
  return { files, indexFrom, commands };
}

/**
 * A README command line as this test runs it: the package name `pulumi-ipvs` in an `npm install` becomes the packed
 * tarball, and each `pulumi config set KEY VALUE` (or `< FILE`) gets the lab director's value for KEY, in the same form.
 * Anything else runs as written.
 */
function userLine(line: string, opts: { tarball: string; lab?: Record<string, string> }): string {
  if (/^npm install /.test(line)) return line.replace(/(?<=\s)pulumi-ipvs(?=\s|$)/, quote(opts.tarball));
  const m = /^pulumi config set ((?:--secret )?)(\S+) (.+)$/.exec(line);
  if (!m) return line;
  const value = opts.lab?.[m[2]!];
  if (value === undefined) throw new Error(`README sets config key ${m[2]}, which this test has no lab value for: ${line}`);
  return `pulumi config set ${m[1]}${m[2]} ${m[3]!.startsWith("<") ? "< " : ""}${quote(value)}`;
}

/** Single-quoted for bash. */
function quote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function installedVersion(project: string, name: string): string {
  return (JSON.parse(readFileSync(path.join(project, "node_modules", name, "package.json"), "utf8")) as { version: string }).version;
}

// Preloaded (NODE_OPTIONS --require) into every node process the CLI starts (program, dynamic provider, the
// launchers' resolve calls): appends each file that require or require.resolve resolves to, one log per process,
// as it happens (the engine kills plugin processes, so an exit hook would not run).
const RECORDER = `const Module = require("module");
const fs = require("fs");
const log = process.env.PKG_TEST_RESOLVED_DIR + "/" + process.pid + ".log";
const seen = new Set();
const resolve = Module._resolveFilename;
Module._resolveFilename = function (...args) {
  const file = resolve.apply(this, args);
  if (!seen.has(file)) { seen.add(file); fs.appendFileSync(log, file + "\\n"); }
  return file;
};
`;

describe("npm pack → an empty project made as the README says → up and destroy against a lab director", () => {
  let tmp: string;
  let tarball: string;
  let files: string[];
  let d: LabDirector | undefined;

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(tmpdir(), "pulumi-ipvs-pack-"));
    await ensureBuildCurrent(tmp);
    const { stdout } = await run("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", tmp], { cwd: repoRoot });
    tarball = path.join(tmp, (JSON.parse(stdout) as Array<{ filename: string }>)[0]!.filename);
    const listing = (await run("tar", ["-tzf", tarball])).stdout;
    files = listing.split("\n").filter(Boolean).map((f) => f.replace(/^package\//, "")).sort();
  });

  afterAll(async () => {
    // The stack's state lives in tmp and its resources on the lab VM: stopping one and removing the other is the
    // clean-up, also when the test stopped between up and destroy.
    try {
      await d?.stop();
    } finally {
      if (tmp) await rm(tmp, { recursive: true, force: true });
    }
  });

  it("the tarball holds dist/ (JS + .d.ts of every source), both helper binaries with their SHA256SUMS, README and LICENSE — nothing else", async () => {
    const forbidden = files.filter((f) =>
      /^(test|examples|scripts|\.lab|\.pulumi-cli|\.pulumi-state|node_modules)\/|\.map$|(?<!\.d)\.ts$|\.go$|go\.(mod|sum)$|^provider\/helper\/(?!bin\/)|Pulumi(\.[^/]*)?\.yaml$/.test(f),
    );
    expect(forbidden).toEqual([]);
    // Exactly the build of the current sources: no output of a file since deleted (it could shadow a directory module).
    const dist = (await compiledSources()).flatMap((ts) => [`dist/${ts.replace(/\.ts$/, ".js")}`, `dist/${ts.replace(/\.ts$/, ".d.ts")}`]);
    const bins = [...BINARIES, "SHA256SUMS"].map((b) => `provider/helper/bin/${b}`);
    expect(files).toEqual(["LICENSE", "README.md", "package.json", ...dist, ...bins].sort());

    const unpacked = path.join(tmp, "unpacked");
    await mkdir(unpacked);
    await run("tar", ["-xzf", tarball, "-C", unpacked]);
    const root = path.join(unpacked, "package");
    const binDir = path.join(root, "provider/helper/bin");
    const sums = readFileSync(path.join(binDir, "SHA256SUMS"), "utf8").trim().split("\n");
    expect(sums).toEqual(BINARIES.map((b) => `${createHash("sha256").update(readFileSync(path.join(binDir, b))).digest("hex")}  ${b}`));
    // ELF e_machine: x86-64 (0x3e) and AArch64 (0xb7), so each name holds its architecture.
    expect(BINARIES.map((b) => readFileSync(path.join(binDir, b)).readUInt16LE(18))).toEqual([0x3e, 0xb7]);

    expect(pkg.license).toBe("Apache-2.0");
    const license = readFileSync(path.join(root, "LICENSE"), "utf8");
    expect(license).toMatch(/^\s*Apache License\s+Version 2\.0, January 2004\s+http:\/\/www\.apache\.org\/licenses\//);
    expect(license).toContain("END OF TERMS AND CONDITIONS");
    // Every entry point the packed package.json names is in the tarball.
    const packed = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")) as {
      main: string;
      types: string;
      exports: Record<string, unknown>;
      bin?: string | Record<string, string>;
    };
    const targets = [
      packed.main,
      packed.types,
      ...Object.values(packed.exports).flatMap((e) => (typeof e === "string" ? [e] : Object.values(e as object))),
      ...(typeof packed.bin === "string" ? [packed.bin] : Object.values(packed.bin ?? {})),
    ];
    for (const t of targets) expect(files, t).toContain(path.normalize(t));
  });

  it("the README's \"A new project\", followed literally in an empty directory: tsc passes, pulumi up builds the table (HTTP through the VIP), pulumi destroy empties it, nothing resolved from this checkout; the .d.ts also compile under TypeScript 6.0", async () => {
    const readme = readmeNewProject();
    expect([...readme.files.keys()].sort()).toEqual(["Pulumi.yaml", "package.json", "tsconfig.json"]);
    expect(readme.commands).toContain("pulumi up");
    expect(readme.commands).toContain("pulumi destroy");
    const project = path.join(tmp, "project");
    await mkdir(project);
    for (const [name, text] of readme.files) await writeFile(path.join(project, name), text);
    await cp(path.join(repoRoot, readme.indexFrom), path.join(project, "index.ts"));

    // The README's `pulumi` is this project's CLI (first on PATH in pulumiEnvFor), built if its inputs changed.
    ensureCli();
    const workDir = path.join(tmp, "pulumi");
    await mkdir(path.join(workDir, "state"), { recursive: true });
    await mkdir(path.join(workDir, "home"));
    const resolvedDir = path.join(tmp, "resolved");
    await mkdir(resolvedDir);
    const recorder = path.join(tmp, "record-resolutions.js");
    await writeFile(recorder, RECORDER);
    // What the user's shell would have, minus prompts: pulumi's hermetic home and backend (no --yes in the README's
    // lines, so confirmations are skipped through the environment), npm's cache first (the same lines, no audit).
    const env: NodeJS.ProcessEnv = {
      ...userNpmEnv(pulumiEnvFor(workDir)),
      PULUMI_SKIP_CONFIRMATIONS: "true",
      npm_config_prefer_offline: "true",
      npm_config_audit: "false",
      npm_config_fund: "false",
    };
    // For the processes pulumi starts: NODE_PATH empty and the cwd in the temp project, so `require` can only find
    // the project's node_modules, and every resolution is recorded.
    const pulumiEnv = { ...env, NODE_PATH: "", NODE_OPTIONS: `--require ${recorder}`, PKG_TEST_RESOLVED_DIR: resolvedDir };
    const sh = async (line: string): Promise<void> => {
      try {
        await run("bash", ["-c", line], { cwd: project, env: line.startsWith("pulumi ") ? pulumiEnv : env, maxBuffer: 64 * 1024 * 1024 });
      } catch (err) {
        const e = err as { stdout?: string; stderr?: string };
        throw new Error(`README line \`${line}\` failed:\n--- stdout\n${e.stdout ?? ""}\n--- stderr\n${e.stderr ?? ""}`);
      }
    };

    // The lines before the first pulumi command need no director (install, type-check): the VM boots meanwhile.
    const firstPulumi = readme.commands.findIndex((l) => l.startsWith("pulumi "));
    const setup = async (): Promise<void> => {
      for (const line of readme.commands.slice(0, firstPulumi)) await sh(userLine(line, { tarball }));
    };
    const [director] = await Promise.all([startDirector(), setup()]);
    d = director;
    const installed = path.join(project, "node_modules");
    // A real copy from the tarball, and its own dependencies came in through the install; the TypeScript it pins.
    expect(lstatSync(path.join(installed, "pulumi-ipvs")).isDirectory()).toBe(true);
    for (const dep of ["node-ssh", "zod", "@pulumi/pulumi"]) expect(existsSync(path.join(installed, dep, "package.json")), dep).toBe(true);
    expect(installedVersion(project, "typescript")).toMatch(/^5\.9\./);

    const servers = await addRealServers(d, 3);
    await addVip(d, VIP);
    const keyFile = path.join(tmp, "director-key");
    await writeFile(keyFile, readFileSync(d.privateKeyPath, "utf8"), { mode: 0o600 });
    const lab: Record<string, string> = {
      host: d.host,
      port: String(d.port),
      user: d.user,
      hostKey: d.hostKey,
      privateKey: keyFile,
      vip: VIP,
      backends: JSON.stringify(servers.map((s) => s.address)),
    };
    const upAt = readme.commands.indexOf("pulumi up");
    for (const line of readme.commands.slice(firstPulumi, upAt + 1)) await sh(userLine(line, { tarball, lab }));
    const save = (await ipvsadmSave(d)).trim().split("\n");
    expect(save).toHaveLength(4);
    expect(save).toContain(`-A -t ${VIP}:80 -s rr`);
    for (const s of servers) expect(save).toContain(`-a -t ${VIP}:80 -r ${s.address}:80 -m -w 1`);
    // Round robin over three equal weights: three requests, three real servers, each answering over real HTTP.
    expect(new Set(await httpRequests(d, VIP, 80, 3))).toEqual(new Set(servers.map((s) => s.name)));
    // The helper on the director is the tarball's amd64 binary, installed under the package version and its hash.
    const amd64 = readFileSync(path.join(installed, "pulumi-ipvs/provider/helper/bin/ipvs-helper-linux-amd64"));
    const sha = createHash("sha256").update(amd64).digest("hex");
    const helperOnDirector = (await d.exec(`sha256sum /usr/local/lib/pulumi-ipvs/${pkg.version}-${sha.slice(0, 12)}/ipvs-helper`)).stdout;
    expect(helperOnDirector.split(" ")[0]).toBe(sha);

    for (const line of readme.commands.slice(upAt + 1)) await sh(userLine(line, { tarball, lab }));
    expect((await ipvsadmSave(d)).trim()).toBe("");

    const resolved = new Set<string>();
    for (const log of await readdir(resolvedDir)) {
      for (const f of (await readFile(path.join(resolvedDir, log), "utf8")).split("\n")) if (f.startsWith("/")) resolved.add(f);
    }
    expect([...resolved].filter((f) => f.startsWith(`${repoRoot}/`))).toEqual([]);
    const ours = path.join(installed, "pulumi-ipvs");
    // The provider process loaded the installed package, and locateHelper found the binaries through it.
    expect(resolved).toContain(path.join(ours, "dist/provider/helperClient/binaries.js"));
    expect(resolved).toContain(path.join(ours, "package.json"));
    expect(resolved).toContain(path.join(installed, "@pulumi/pulumi/cmd/dynamic-provider/index.js"));

    // The README's claim about the newest TypeScript Pulumi accepts: the same files and .d.ts type-check under it.
    await sh(`npm install -D typescript@${NEWEST_TS}`);
    expect(installedVersion(project, "typescript")).toBe(NEWEST_TS);
    await sh("npx tsc --noEmit");
  });
});
