// Issue 10 item 6, "a package that installs": `npm pack` makes a tarball holding exactly what a user needs; installed
// with @pulumi/pulumi into an empty project, the README quickstart runs there through the real pulumi CLI against a
// lab director, and no process the CLI starts resolves a single file from this checkout.
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
import { E2EStack, repoRoot } from "./harness";

const run = promisify(execFile);
const pkg = JSON.parse(readFileSync(path.join(repoRoot, "package.json"), "utf8")) as {
  version: string;
  license: string;
  devDependencies: Record<string, string>;
};
const VIP = "192.0.2.10";
const BINARIES = ["ipvs-helper-linux-amd64", "ipvs-helper-linux-arm64"];

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
function userNpmEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(npm_package_|npm_lifecycle_|npm_config_local_prefix$|INIT_CWD$|NODE_PATH$)/.test(k)) env[k] = v;
  }
  return env;
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

describe("npm pack → an empty project → the README quickstart against a lab director", () => {
  let tmp: string;
  let tarball: string;
  let files: string[];
  let d: LabDirector | undefined;
  let stack: E2EStack | undefined;

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(tmpdir(), "pulumi-ipvs-pack-"));
    await ensureBuildCurrent(tmp);
    const { stdout } = await run("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", tmp], { cwd: repoRoot });
    tarball = path.join(tmp, (JSON.parse(stdout) as Array<{ filename: string }>)[0]!.filename);
    const listing = (await run("tar", ["-tzf", tarball])).stdout;
    files = listing.split("\n").filter(Boolean).map((f) => f.replace(/^package\//, "")).sort();
  });

  afterAll(async () => {
    try {
      await stack?.dispose();
    } finally {
      await d?.stop();
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

  it("installed into an empty project, the quickstart goes up (ipvsadm, HTTP through the VIP) and is destroyed, nothing resolved from this checkout", async () => {
    const project = path.join(tmp, "project");
    await cp(path.join(repoRoot, "test/e2e/fixtures/package-quickstart"), project, { recursive: true });
    const install = run(
      "npm",
      ["install", tarball, `@pulumi/pulumi@${pkg.devDependencies["@pulumi/pulumi"]}`, "--prefer-offline", "--no-audit", "--no-fund"],
      { cwd: project, env: userNpmEnv(), maxBuffer: 16 * 1024 * 1024 },
    );
    // The VM boots while npm installs.
    const [director] = await Promise.all([startDirector(), install]);
    d = director;
    const installed = path.join(project, "node_modules");
    // A real copy from the tarball, and its own dependencies came in through the install.
    expect(lstatSync(path.join(installed, "pulumi-ipvs")).isDirectory()).toBe(true);
    for (const dep of ["node-ssh", "zod", "@pulumi/pulumi"]) expect(existsSync(path.join(installed, dep, "package.json")), dep).toBe(true);

    const servers = await addRealServers(d, 3, { port: 8080 });
    await addVip(d, VIP);
    const resolvedDir = path.join(tmp, "resolved");
    await mkdir(resolvedDir);
    const recorder = path.join(tmp, "record-resolutions.js");
    await writeFile(recorder, RECORDER);
    stack = await E2EStack.create({
      program: project,
      ownProject: true,
      config: {
        host: d.host,
        port: String(d.port),
        user: d.user,
        sshKey: { secret: readFileSync(d.privateKeyPath, "utf8") },
        hostKey: d.hostKey,
        vip: VIP,
        backends: JSON.stringify(servers.map((s) => s.address)),
      },
      // NODE_PATH empty and the cwd in the temp project: `require` can only find the project's node_modules.
      env: { NODE_PATH: "", NODE_OPTIONS: `--require ${recorder}`, PKG_TEST_RESOLVED_DIR: resolvedDir },
    });

    await stack.up();
    const save = (await ipvsadmSave(d)).trim().split("\n");
    expect(save).toHaveLength(4);
    expect(save).toContain(`-A -t ${VIP}:80 -s wrr -p 300 -M 255.255.255.0`);
    for (const s of servers) expect(save).toContain(`-a -t ${VIP}:80 -r ${s.address}:8080 -m -w 5`);
    // Persistence per /24: the one lab client sticks to one real server, which answers over real HTTP.
    const answers = await httpRequests(d, VIP, 80, 4);
    expect(servers.map((s) => s.name)).toContain(answers[0]);
    expect(new Set(answers).size).toBe(1);
    // The helper on the director is the tarball's amd64 binary, installed under the package version and its hash.
    const amd64 = readFileSync(path.join(installed, "pulumi-ipvs/provider/helper/bin/ipvs-helper-linux-amd64"));
    const sha = createHash("sha256").update(amd64).digest("hex");
    const helperOnDirector = (await d.exec(`sha256sum /usr/local/lib/pulumi-ipvs/${pkg.version}-${sha.slice(0, 12)}/ipvs-helper`)).stdout;
    expect(helperOnDirector.split(" ")[0]).toBe(sha);

    await stack.destroy();
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
  });
});
