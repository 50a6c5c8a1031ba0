// Issue #10 item 5: a drain that waits shows its progress in `pulumi up`'s output — connections left and seconds left
// while it waits, then how it ended — through the real pulumi CLI (--non-interactive, as CI runs it) on a lab director
// with a real long-lived client connection through the VIP. The lines come from provider/progress.ts over the engine's
// Log RPC: statuses are ephemeral diagnostics (live output only), the outcome a lasting one (also in the summary).
//
// Timing: the test acts on observed conditions (the connection active in the kernel, a "left" status in the event
// log the running CLI writes); the drain timeout bounds each wait, and the deadlines below only turn a hang into a failure.
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDirector, type LabDirector } from "../lab/director";
import { ipvsadm, ipvsadmSave } from "../lab/ipvsadm";
import { addRealServers, addVip, openLongConnection, type LabRealServer, type LongConnection } from "../lab/realServers";
import { E2EStack, repoRoot, type EngineEvent } from "./harness";

const FIXTURE = path.join(repoRoot, "test", "e2e", "fixtures", "drain-progress");
const VIP = "192.0.2.90";

interface Diagnostic {
  urn?: string;
  message: string;
  severity: string;
  ephemeral?: boolean;
}

let lab: LabDirector;
let server: LabRealServer;
let stack: E2EStack;
const open: LongConnection[] = [];

beforeAll(async () => {
  lab = await startDirector();
  [server] = await addRealServers(lab, 1);
  await addVip(lab, VIP);
  const director = { host: lab.host, port: lab.port, user: lab.user, privateKeyPath: lab.privateKeyPath, hostKey: lab.hostKey };
  stack = await E2EStack.create({ program: FIXTURE, config: { director: JSON.stringify(director), vip: VIP } });
});

afterAll(async () => {
  // abort, not close: a connection whose dest is gone never sees its FIN answered (IPVS drops it).
  for (const c of open.splice(0)) await c.abort();
  await stack?.dispose();
  await lab?.stop();
});

/** Active connections IPVS counts on the real server, from `ipvsadm -Ln`. */
async function activeConns(): Promise<number | undefined> {
  const m = new RegExp(`->\\s+${server.address.replace(/\./g, "\\.")}:80\\s+\\S+\\s+\\d+\\s+(\\d+)`).exec(await ipvsadm(lab, "-Ln --exact"));
  return m ? Number(m[1]) : undefined;
}

/** Polls `probe` until true; fails after boundMs or as soon as `stop()` says the awaited thing can no longer happen. */
async function until(what: string, probe: () => Promise<boolean> | boolean, stop = () => false, boundMs = 60_000): Promise<void> {
  const deadline = Date.now() + boundMs;
  while (!(await probe())) {
    if (stop()) throw new Error(`gave up waiting for ${what}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The diagnostics of an event log, also one a running CLI is still writing (its last line may be incomplete). */
function diagnostics(eventLog: string): Diagnostic[] {
  if (!existsSync(eventLog)) return [];
  const text = readFileSync(eventLog, "utf8");
  return text
    .slice(0, text.lastIndexOf("\n") + 1)
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => (JSON.parse(l) as EngineEvent).diagnosticEvent as Diagnostic | undefined)
    .filter((d): d is Diagnostic => d !== undefined && d.severity !== "debug");
}

/** Creates the real server with this drain timeout and opens a connection through the VIP that stays active on it. */
async function realServerWithLiveConnection(timeoutSeconds: number): Promise<LongConnection> {
  await stack.setConfig("realServer", JSON.stringify({ address: server.address, timeoutSeconds }));
  await stack.up();
  const conn = await openLongConnection(lab, VIP, 80);
  open.push(conn);
  await until("the connection to show as active on the real server", async () => (await activeConns()) === 1);
  return conn;
}

/** `pulumi up` removing the real server, with its event log at a known path so the test can watch it while it runs. */
async function removeRealServer(name: string) {
  await stack.setConfig("realServer", "null");
  const eventLog = path.join(stack.workDir, `${name}.events.jsonl`);
  let settled = false;
  const run = stack.cli(["up", "--yes", "--skip-preview", "--non-interactive", "--event-log", eventLog]).finally(() => (settled = true));
  run.catch(() => {}); // awaited by the caller; this only keeps an early failure from being unhandled meanwhile
  return { eventLog, run, settled: () => settled };
}

describe("a drain that waits shows its progress in pulumi up's output", () => {
  const what = () => `1 real server(s) of tcp/${VIP}:80 on ${lab.user}@${lab.host}:${lab.port}`;

  it("while it waits: connections left and seconds left; then that it drained", async () => {
    const conn = await realServerWithLiveConnection(120);
    const up = await removeRealServer("drained");

    const left = new RegExp(`draining ${escape(what())}: 1 connection\\(s\\) left, (\\d+) s left`);
    // Bounded below the drain's 120 s: after that no "left" status can come.
    const status = () => diagnostics(up.eventLog).some((d) => left.test(d.message));
    await until("a progress status in the event log", status, up.settled, 110_000);
    // The drain is waiting on the connection: it is still there, at weight 0.
    expect((await ipvsadmSave(lab)).split("\n")).toContain(`-a -t ${VIP}:80 -r ${server.address}:80 -m -w 0`);
    await conn.close();
    const res = await up.run;
    console.log(`pulumi up removing a draining real server:\n${res.stdout}`);

    const started = `draining ${what()}: 1 active connection(s), up to 120 s`;
    const drained = new RegExp(`drained ${escape(what())}: connections ended after \\d+ s`);
    // The live output shows all three, the closing summary only the outcome.
    const [live, summary = ""] = res.stdout.split("\nDiagnostics:\n");
    expect(live).toContain(started);
    expect(live).toMatch(left);
    expect(Number(left.exec(live)![1])).toBeLessThan(120);
    expect(summary).toMatch(drained);
    expect(summary).not.toContain("draining ");

    const diags = diagnostics(up.eventLog).filter((d) => d.message.includes(`tcp/${VIP}:80`));
    expect(diags[0]).toMatchObject({ message: `${started}\n`, severity: "info", ephemeral: true });
    expect(diags.slice(1, -1).every((d) => left.test(d.message) && d.ephemeral === true)).toBe(true);
    expect(diags.at(-1)).toMatchObject({ severity: "info" });
    expect(diags.at(-1)!.message).toMatch(drained);
    expect(diags.at(-1)!.ephemeral).toBeFalsy();
    // On the RealServer's own row: its URN reached the provider (src/urn.ts).
    for (const d of diags) expect(d.urn).toMatch(/^urn:pulumi:e2e::[^:]+::pulumi-nodejs:dynamic\/ipvs:RealServer::app$/);

    expect(await ipvsadmSave(lab)).not.toContain(server.address);
  });

  it("on timeout: a warning naming the connections still open when the real server was removed anyway", async () => {
    await realServerWithLiveConnection(6);
    const up = await removeRealServer("timed-out");
    const res = await up.run;

    expect(res.stdout).toContain(`draining ${what()}: 1 active connection(s), up to 6 s`);
    const timedOut = `drain of ${what()} timed out after 6 s with 1 active connection(s) left; removing anyway`;
    const [, summary = ""] = res.stdout.split("\nDiagnostics:\n");
    expect(summary).toContain(`warning: ${timedOut}`);
    expect(diagnostics(up.eventLog).find((d) => d.message.includes("timed out"))).toMatchObject({ message: `${timedOut}\n`, severity: "warning" });
    expect(await ipvsadmSave(lab)).not.toContain(server.address);
  });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
