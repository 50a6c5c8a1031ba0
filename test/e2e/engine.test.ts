// The real pulumi engine drives a dynamic resource built on this project's provider module (src/shim.ts) through a whole
// life: preview → up (create) → up (update) → refresh → destroy. The provider is a test-only package that logs each
// call, installed into the fixture program's node_modules the way a user installs pulumi-ipvs.
import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { providerModule } from "../../src/shim";
import { E2EStack, repoRoot, type StateDeployment } from "./harness";

const programDir = path.join(repoRoot, "test", "e2e", "fixtures", "probe-program");
const PROBE_TYPE = "pulumi-nodejs:dynamic/e2e:Probe";
const probeIn = (d: StateDeployment) => d.resources?.find((r) => r.type === PROBE_TYPE);
// Unique, so finding it anywhere can only mean a leak of this secret.
const TOKEN = `probe-secret-${randomUUID()}`;

interface Call {
  method: string;
  id?: string;
  value?: string;
  from?: string;
  to?: string;
}

describe("the pulumi engine runs the provider shim end to end", () => {
  let stack: E2EStack;
  let logDir: string;
  let logFile: string;

  const calls = (): Call[] =>
    existsSync(logFile)
      ? readFileSync(logFile, "utf8")
          .trim()
          .split("\n")
          .map((l) => JSON.parse(l) as Call)
      : [];

  beforeAll(async () => {
    // Links the probe package into the fixture's node_modules (a file: dependency: no registry involved).
    execFileSync("npm", ["install", "--no-audit", "--no-fund", "--no-package-lock", "--loglevel=error"], {
      cwd: programDir,
      stdio: ["ignore", "inherit", "inherit"],
    });
    logDir = mkdtempSync(path.join(tmpdir(), "pulumi-ipvs-probe-"));
    logFile = path.join(logDir, "calls.jsonl");
    stack = await E2EStack.create({
      program: programDir,
      config: { logFile, value: "one", token: { secret: TOKEN } },
    });
  });

  afterAll(async () => {
    await stack?.dispose();
    if (logDir) rmSync(logDir, { recursive: true, force: true });
  });

  it("preview checks the inputs and plans a create without running it", async () => {
    const res = await stack.preview();
    expect(calls().map((c) => c.method)).toEqual(["check"]);
    const planned = res.events.filter((e) => (e.resourcePreEvent as any)?.metadata?.type === PROBE_TYPE);
    expect(planned.map((e) => (e.resourcePreEvent as any).metadata.op)).toEqual(["create"]);
  });

  it("up creates the resource through the installed provider package", async () => {
    await stack.up();
    const created = calls().filter((c) => c.method === "create");
    expect(created).toHaveLength(1);
    expect(created[0].value).toBe("one");
    expect(await stack.outputs()).toMatchObject({ value: "one", createdWith: "one", probeId: created[0].id, token: "[secret]" });

    // The serialized provider loads the installed package when it runs: the state holds the require and the kind,
    // and none of the probe's own code.
    const { deployment } = await stack.exportState();
    const serialized = probeIn(deployment)?.outputs?.__provider;
    expect(typeof serialized).toBe("string");
    console.log(`__provider stored in state:\n${serialized}`);
    expect(serialized).toContain('require("pulumi-ipvs-e2e-probe")');
    expect(serialized).toContain('["Probe"]');
    expect((serialized as string).length).toBeLessThan(300);
    expect(serialized).not.toContain("appendFileSync");
    expect(serialized).not.toContain("updatedFrom");
  });

  it("keeps the secret input encrypted in state, outputs and everything the CLI printed", async () => {
    const { text, deployment } = await stack.exportState();
    expect(text).not.toContain(TOKEN);
    // Echoed into outputs by the provider, re-marked secret by the engine because the input was secret.
    const token = probeIn(deployment)?.outputs?.token as Record<string, unknown>;
    expect(token).toHaveProperty("ciphertext");
    expect(JSON.stringify(probeIn(deployment)?.inputs)).not.toContain(TOKEN);
    // And it is really there: decrypted outputs carry it.
    expect((await stack.outputs({ showSecrets: true })).token).toBe(TOKEN);
  });

  it("an input change updates in place and keeps the outputs update returned", async () => {
    const before = (await stack.outputs()).probeId;
    await stack.setConfig("value", "two");
    const res = await stack.up();
    expect(res.stdout + res.stderr + JSON.stringify(res.events)).not.toContain(TOKEN);

    const updates = calls().filter((c) => c.method === "update");
    expect(updates).toEqual([{ method: "update", id: before, from: "one", to: "two" }]);
    // updatedFrom exists only in update's result (pulumi#13983 dropped such outputs).
    expect(await stack.outputs()).toMatchObject({ probeId: before, value: "two", createdWith: "one", updatedFrom: "one" });
  });

  it("refresh reads the resource back into state", async () => {
    const res = await stack.refresh();
    expect(res.stdout + res.stderr + JSON.stringify(res.events)).not.toContain(TOKEN);
    expect(calls().filter((c) => c.method === "read")).toHaveLength(1);
    const { deployment } = await stack.exportState();
    expect(probeIn(deployment)?.outputs).toMatchObject({ value: "two", updatedFrom: "one", lastRead: "refresh" });
  });

  it("destroy deletes the resource and leaves an empty stack", async () => {
    const id = (await stack.outputs()).probeId;
    const res = await stack.destroy();
    expect(res.stdout + res.stderr + JSON.stringify(res.events)).not.toContain(TOKEN);
    expect(calls().filter((c) => c.method === "delete")).toEqual([{ method: "delete", id, value: "two" }]);
    const { deployment } = await stack.exportState();
    expect(probeIn(deployment)).toBeUndefined();
    expect(readFileSync(logFile, "utf8")).not.toContain(TOKEN);
  });
});

// Upgrading pulumi-ipvs under existing stacks: state written when resources stored their provider as a serialized
// closure (before src/shim.ts wrote the provider module itself) must keep working — no replacement, no update from
// the change of __provider alone, updates and destroy through the installed provider. The program switches with
// config `storedBy`. In this file, not its own: both install the probe package into the same node_modules.
describe("a stack whose state holds the serialized-closure provider", () => {
  let stack: E2EStack;
  let logDir: string;
  let logFile: string;
  const calls = (): Call[] =>
    existsSync(logFile) ? readFileSync(logFile, "utf8").trim().split("\n").map((l) => JSON.parse(l) as Call) : [];

  beforeAll(async () => {
    execFileSync("npm", ["install", "--no-audit", "--no-fund", "--no-package-lock", "--loglevel=error"], { cwd: programDir, stdio: ["ignore", "inherit", "inherit"] });
    logDir = mkdtempSync(path.join(tmpdir(), "pulumi-ipvs-upgrade-"));
    logFile = path.join(logDir, "calls.jsonl");
    stack = await E2EStack.create({ program: programDir, config: { logFile, value: "one", token: { secret: "t" }, storedBy: "closure" } });
  });

  afterAll(async () => {
    await stack?.dispose();
    if (logDir) rmSync(logDir, { recursive: true, force: true });
  });

  it("is updated and destroyed in place by the version that stores the provider module", async () => {
    await stack.up();
    const before = probeIn((await stack.exportState()).deployment)!;
    expect(before.outputs?.__provider).toContain("with({"); // what Pulumi's closure serializer writes
    const id = before.id;

    // The upgrade: same program, the new base class. Only __provider differs: no update, no replacement.
    await stack.setConfig("storedBy", "module");
    const n = calls().length;
    const same = await stack.up();
    expect(calls().slice(n).map((c) => c.method)).toEqual(["check", "diff"]);
    const ops = same.events.flatMap((e) => ((e.resourcePreEvent as any)?.metadata?.type === PROBE_TYPE ? [(e.resourcePreEvent as any).metadata.op] : []));
    expect(ops).toEqual(["same"]);
    expect(probeIn((await stack.exportState()).deployment)!.id).toBe(id);

    // A real change updates in place through the new module, which the state then holds.
    await stack.setConfig("value", "two");
    await stack.up();
    expect(calls().filter((c) => c.method === "update")).toEqual([{ method: "update", id, from: "one", to: "two" }]);
    const after = probeIn((await stack.exportState()).deployment)!;
    expect(after.outputs?.__provider).toBe(providerModule("Probe", "pulumi-ipvs-e2e-probe"));

    await stack.destroy();
    expect(calls().filter((c) => c.method === "delete")).toEqual([{ method: "delete", id, value: "two" }]);
  });
});
