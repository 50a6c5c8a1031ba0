// Issue 26 items 3 and 4 through the real pulumi CLI, on a lab director: what a user reads when something fails, and
// what state keeps of a failure that changed nothing.
//
// The sequence from the issue: a create with a wrong host key fails and leaves no resource in state; fixing the key
// while also changing the port (the director reached through another port, here a TCP forwarder) is then a clean
// create, not a delete on the old director with the old key. On the way: a fingerprint pasted as hostKey, and a
// refresh with the director down. Every failure is printed once (the CLI's errors: stderr with --diff), without a
// JavaScript stack line and without internal field names or the engine's raw property dumps.
import { createServer, connect, type Server, type Socket } from "node:net";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDirector, type LabDirector } from "../lab/director";
import { ipvsadmSave } from "../lab/ipvsadm";
import { E2EStack, repoRoot, type CliResult, type OperationResult } from "./harness";

const FIXTURE = path.join(repoRoot, "test", "e2e", "fixtures", "messages");
const SETTINGS = "pulumi-nodejs:dynamic/ipvs:DirectorSettings";
const VS = "pulumi-nodejs:dynamic/ipvs:VirtualService";
/** A well-formed ed25519 key line that is not the lab director's. */
const WRONG_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKq3iFQ0QO4wS2rZQ3QmQO0bHnhyA2pSxVwA0dq2H3Jx";
/** Bound on one CLI operation: it only turns a hang into a failure. */
const OP_MS = 180_000;

/** What must never reach a user: stack lines, protocol field names, the engine's dumps of a property's value. */
function expectClean(text: string): void {
  expect(text).not.toMatch(/^\s+at /m);
  expect(text).not.toContain("withForeignDests");
  expect(text).not.toContain("{<nil>}");
  expect(text).not.toMatch(/value \{map\[/);
  expect(text).not.toMatch(/has a problem: .*has a problem/);
}

/** How many times `needle` occurs in `text`. */
const count = (text: string, needle: string) => text.split(needle).length - 1;

/** The CLI's output of a run that failed (E2EStack rejects with it in the message). */
async function failed(run: Promise<unknown>): Promise<{ stdout: string; stderr: string }> {
  const err = await run.then(
    () => undefined,
    (e: Error) => e,
  );
  if (!err) throw new Error("the operation succeeded; expected it to fail");
  const m = /\n--- stdout\n([\s\S]*)\n--- stderr\n([\s\S]*)$/.exec(err.message);
  if (!m) throw err;
  return { stdout: m[1]!, stderr: m[2]! };
}

/** Types of the stack's ipvs resources in state. */
async function inState(stack: E2EStack): Promise<string[]> {
  const { deployment } = await stack.exportState();
  return (deployment.resources ?? []).map((r) => r.type).filter((t) => t.includes(":dynamic/ipvs:")).sort();
}

/** The engine's step per ipvs resource type, from an operation's event log ("create", "delete", …). */
function steps(res: OperationResult): string[] {
  return res.events
    .flatMap((e) => {
      const md = (e.resourcePreEvent as { metadata?: { op: string; type: string } } | undefined)?.metadata;
      return md && md.type.includes(":dynamic/ipvs:") ? [`${md.op} ${md.type.split(":").pop()}`] : [];
    })
    .sort();
}

/** A TCP forwarder to the director's SSH port: the director under a second port, which close() takes away. */
class Forwarder {
  private server?: Server;
  private readonly sockets = new Set<Socket>();
  port = 0;

  constructor(private readonly target: number) {}

  async open(): Promise<void> {
    const server = createServer((client) => {
      const upstream = connect(this.target, "127.0.0.1");
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on("close", () => this.sockets.delete(s));
        s.on("error", () => (s === client ? upstream : client).destroy());
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.port, "127.0.0.1", () => resolve());
    });
    this.port = (server.address() as { port: number }).port;
    this.server = server;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server = undefined;
  }
}

describe("what a user reads when something fails (issue 26 items 3 and 4)", () => {
  let d: LabDirector;
  let stack: E2EStack;
  let fwd: Forwarder;
  const directorConfig = (extra: Record<string, unknown>) =>
    JSON.stringify({ host: d.host, port: d.port, user: d.user, privateKeyPath: d.privateKeyPath, hostKey: d.hostKey, ...extra });

  beforeAll(async () => {
    d = await startDirector();
    fwd = new Forwarder(d.port);
    await fwd.open();
    stack = await E2EStack.create({ program: FIXTURE, config: { director: directorConfig({ hostKey: WRONG_KEY }) } });
  }, 300_000);

  afterAll(async () => {
    await fwd?.open(); // the last case takes it away; destroy goes through it
    await stack?.dispose();
    await fwd?.close();
    await d?.stop();
  }, 300_000);

  it("a wrong host key: each resource's message once, naming the director, and nothing left in state", async () => {
    const { stdout, stderr } = await failed(stack.up());
    const target = `ops@127.0.0.1:${d.port}`;
    expect(d.user).toBe("ops");
    const settingsLine = `DirectorSettings on ${target}: create failed: host key mismatch for ${target}: it presented ssh-ed25519 SHA256:`;
    const serviceLine = `VirtualService tcp/192.0.2.77:80: create failed on 1 of 1 director(s):\n  - ${target}: host key mismatch for ${target}: it presented`;
    const all = stdout + stderr;
    expect(count(all, settingsLine)).toBe(1);
    expect(count(all, serviceLine)).toBe(1);
    expect(count(all, "host key mismatch")).toBe(2);
    expectClean(all);
    // Nothing reached the director: no half-created resource a later up would delete with this key.
    expect(await inState(stack)).toEqual([]);
  }, OP_MS);

  it("a fingerprint pasted as hostKey: said so once, quoting what was given, no property dump", async () => {
    await stack.setConfig("director", directorConfig({ hostKey: "SHA256:p5hW0OG+KEo48eEzaZfHpcZ8O8RAPN+vbLcoDenO7bM" }));
    const { stdout, stderr } = await failed(stack.preview());
    const all = stdout + stderr;
    const reason = `hostKey "SHA256:p5hW0OG+KEo48eEza…" is a fingerprint, and a fingerprint is not a key line: `;
    // The engine stops at the first resource that fails its check, whichever the program registered first in this run.
    const lines = all.split("\n").filter((l) => l.includes("has a problem"));
    expect(lines).toHaveLength(1);
    expect([
      `error: ${SETTINGS} resource 'settings' has a problem: director.${reason}`,
      `error: ${VS} resource 'web' has a problem: directors[0].${reason}`,
    ]).toContain(lines[0]!.slice(0, lines[0]!.indexOf(reason) + reason.length));
    expect(count(all, "a fingerprint is not a key line")).toBe(1);
    expectClean(all);
  }, OP_MS);

  it("fixing the key while changing the port is a clean create", async () => {
    await stack.setConfig("director", directorConfig({ port: fwd.port }));
    const res = await stack.up();
    expect(steps(res)).toEqual([`create DirectorSettings`, `create VirtualService`]);
    expect(await inState(stack)).toEqual([SETTINGS, VS].sort());
    expect(await ipvsadmSave(d)).toContain("-A -t 192.0.2.77:80 -s rr");
  }, OP_MS);

  it("a refresh with the director down: each read failure once, without a stack", async () => {
    await fwd.close();
    // --diff, as up() runs: the CLI then prints its errors on stderr, once each.
    const run: Promise<CliResult> = stack.cli(["refresh", "--yes", "--skip-preview", "--diff", "--non-interactive"]);
    const { stdout, stderr } = await failed(run);
    const all = stdout + stderr;
    const target = `ops@127.0.0.1:${fwd.port}`;
    expect(count(all, `DirectorSettings on ${target}: read failed: cannot reach ${target}`)).toBe(1);
    expect(count(all, `VirtualService tcp/192.0.2.77:80: read failed on 1 of 1 director(s):\n  - ${target}: cannot reach ${target}`)).toBe(1);
    expectClean(all);
  }, OP_MS);
});
