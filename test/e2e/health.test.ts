// Issue 27 through the real pulumi CLI, on one lab director (booting one takes minutes): the checker
// (`ipvs-helper health`, started by hand as the README says for a director without systemd: the lab has none) depools
// dead real servers, and Pulumi's view of them. ipvsadm on the director is the oracle; every wait polls it there with a
// deadline derived from the check (healthLab.ts). The two parts run one after the other, each with its own stack and
// checker log; the first destroys its stack and stops its checker before the second begins.
//
// Checks: a program declares health checks (test/e2e/fixtures/health), `up` sends them to the director's ledger, and
// the checker depools dead real servers between two `up`s; the VIP is asked over real HTTP.
//
// Health, not drift: RealServers web-1, web-2 and a RealServerPool over the same backends, every one checked
// (test/e2e/fixtures/health-view), seen through refresh, up and `pulumi-ipvs status`:
// - a server the checker depooled is health, not drift: refresh writes no change, status exits 0 and names its health;
// - an up that changes a depooled server's weight is recorded (refresh then reads the new one) and applied on recovery;
// - a hand edit of a healthy server's weight is still drift, in refresh and in status;
// - status says when the checker is not running (and the weights stay as they are).
import { execFile } from "node:child_process";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StatusReport } from "../../provider/status/compare";
import { startDirector, type LabDirector } from "../lab/director";
import { ipvsadm } from "../lab/ipvsadm";
import { addRealServers, addVip, httpRequests, startHttpd, stopHttpd, type LabRealServer } from "../lab/realServers";
import { repoRoot, type E2EStack, type EngineEvent } from "./harness";
import { CHECK, checkedStack, DOWN_BOUND_MS, has, INTERVAL, LabChecker, lacks, line as vipLine, OP_MS, quiesced, UP_BOUND_MS } from "./healthLab";

const VIP = "192.0.2.10";
const VIP2 = "192.0.2.11";
const cli = path.join(repoRoot, "dist", "provider", "status", "cli.js");

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** The package's resources in engine events of kind `kind`, by name, with the step the engine took for each. */
const steps = (events: EngineEvent[], kind: "resourcePreEvent" | "resOutputsEvent") =>
  events.flatMap((e) => {
    const m = (e[kind] as { metadata?: { op: string; urn: string } } | undefined)?.metadata;
    return m && m.urn.includes("pulumi-nodejs:dynamic") ? [[m.urn.slice(m.urn.lastIndexOf("::") + 2), m.op] as const] : [];
  });

let d: LabDirector;
/** rs1..rs4; the second part uses the first three. */
let servers: LabRealServer[];

beforeAll(async () => {
  d = await startDirector();
  servers = await addRealServers(d, 4);
  await addVip(d, VIP);
  await addVip(d, VIP2);
}, OP_MS);

afterAll(async () => {
  await d?.stop();
}, OP_MS);

describe("health checks through the pulumi CLI against a lab director", () => {
  let rs: LabRealServer[];
  let stack: E2EStack;
  let checker: LabChecker;
  /** The declared weights (the fixture's): 2, 3, 4. */
  const weight = (i: number) => i + 2;
  const line = (s: LabRealServer, w: number) => vipLine(VIP, s, w);
  const members = () => rs.slice(0, 3);

  /** Every member's httpd running and its real server at its declared weight, no other dest (no sorry server). */
  const healed = () =>
    checker.timeUntil(members().map(startHttpd).join("\n"), [...members().map((s, i) => has(line(s, weight(i)))), lacks(`-r ${rs[3]!.address}:80`)], UP_BOUND_MS);
  const log = () => checker.logText();
  const table = async () => (await d.exec("ipvsadm -Sn")).stdout;
  const configure = async (values: Record<string, unknown>) => {
    for (const [k, v] of Object.entries(values)) await stack.setConfig(k, JSON.stringify(v ?? null));
  };

  let end: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    rs = servers; // rs4 is no member: the sorry server
    const config = { vip: VIP, backends: JSON.stringify(rs.slice(0, 3).map((s) => s.address)), check: JSON.stringify(CHECK) };
    ({ stack, checker, end } = await checkedStack(d, "health", config));
  }, OP_MS);

  // The checker gone before the next part starts its own (only one may hold the lock).
  afterAll(() => end?.(), OP_MS);

  it("the declared check is the service's and each real server's; a killed httpd's server is quiesced in time and the VIP answers every request; restarted, it is back at its declared weight", async () => {
    expect((await stack.outputs()).healthCheck).toEqual({ ...CHECK, onFailure: "quiesce", http: { ...CHECK.http, method: "GET" } });
    expect((await stack.outputs()).minHealthy).toBe("50%");
    await healed();
    const took = await checker.timeUntil(stopHttpd(rs[0]!), [has(line(rs[0]!, 0))], DOWN_BOUND_MS);
    console.log(`health e2e: kill → weight 0 in ${took} ms (bound ${DOWN_BOUND_MS} ms)`);
    expect(took).toBeLessThanOrEqual(DOWN_BOUND_MS);
    const answers = await httpRequests(d, VIP, 80, 30);
    expect(answers).toHaveLength(30);
    expect(new Set(answers)).toEqual(new Set(["rs2", "rs3"]));
    const t = await table();
    expect(t).toContain(line(rs[1]!, 3));
    expect(t).toContain(line(rs[2]!, 4));
    expect(await log()).toContain(`tcp/${VIP}:80 → ${rs[0]!.address}:80 down: connection refused (2 of 2 failed); quiesced, weight 2 → 0`);

    const back = await checker.timeUntil(startHttpd(rs[0]!), [has(line(rs[0]!, 2))], UP_BOUND_MS);
    console.log(`health e2e: restart → declared weight 2 in ${back} ms (bound ${UP_BOUND_MS} ms)`);
    expect(back).toBeLessThanOrEqual(UP_BOUND_MS);
    const all = await httpRequests(d, VIP, 80, 30);
    expect(all).toHaveLength(30);
    expect(new Set(all)).toEqual(new Set(["rs1", "rs2", "rs3"]));
  }, OP_MS);

  it('a changed check is an update in place (no replace, the table untouched); onFailure "remove" deletes the dead server and re-adds it', async () => {
    await healed();
    const before = await table();
    await configure({ check: { ...CHECK, onFailure: "remove" } });
    const up = await stack.up();
    const ops = steps(up.events, "resourcePreEvent");
    expect(ops.filter(([, op]) => op !== "same" && op !== "update")).toEqual([]);
    expect(ops.filter(([, op]) => op === "update").map(([name]) => name).sort()).toEqual(["web", "web-1", "web-2", "web-3"]);
    expect(await table()).toBe(before);

    const took = await checker.timeUntil(stopHttpd(rs[1]!), [lacks(`-r ${rs[1]!.address}:80`), has(line(rs[0]!, 2)), has(line(rs[2]!, 4))], DOWN_BOUND_MS);
    expect(took).toBeLessThanOrEqual(DOWN_BOUND_MS);
    expect(await log()).toContain(`tcp/${VIP}:80 → ${rs[1]!.address}:80 down: connection refused (2 of 2 failed); removed (weight was 3)`);
    const answers = await httpRequests(d, VIP, 80, 30);
    expect(new Set(answers)).toEqual(new Set(["rs1", "rs3"]));
    const back = await checker.timeUntil(startHttpd(rs[1]!), [has(line(rs[1]!, 3))], UP_BOUND_MS);
    expect(back).toBeLessThanOrEqual(UP_BOUND_MS);
    expect(new Set(await httpRequests(d, VIP, 80, 30))).toEqual(new Set(["rs1", "rs2", "rs3"]));
  }, OP_MS);

  it("minHealthy keeps servers pooled when every one is down, and names them", async () => {
    await healed();
    await configure({ check: CHECK, minHealthy: 1 });
    await stack.up();
    // Two of three go (which two depends on which probe fails first); one is kept at its declared weight.
    await checker.timeUntil(members().map(stopHttpd).join("\n"), [quiesced(VIP, 2)], DOWN_BOUND_MS);
    await expect.poll(log, { timeout: DOWN_BOUND_MS + 3000, interval: 500 }).toMatch(new RegExp(`tcp/${VIP.replace(/\./g, "\\.")}:80: kept pooled by minHealthy \\(1 of 3 must stay\\): `));
    // It stays kept while it is down: another interval and a half later, still exactly two out.
    await new Promise((r) => setTimeout(r, 1.5 * INTERVAL * 1000));
    const t = await table();
    expect(members().filter((s, i) => t.includes(line(s, weight(i))))).toHaveLength(1);
    expect(members().filter((s) => t.includes(line(s, 0)))).toHaveLength(2);
  }, OP_MS);

  it("the sorry server is added while no real server is healthy and goes as soon as one is", async () => {
    await healed();
    await configure({ minHealthy: 0, sorryServer: { address: rs[3]!.address } });
    await stack.up();
    const sorry = line(rs[3]!, 1);
    await checker.timeUntil(members().map(stopHttpd).join("\n"), [quiesced(VIP, 3), has(sorry)], DOWN_BOUND_MS);
    expect(await log()).toContain(`tcp/${VIP}:80: no real server is healthy; sorry server ${rs[3]!.address}:80 added (weight 1)`);
    const answers = await httpRequests(d, VIP, 80, 30);
    expect(new Set(answers)).toEqual(new Set(["rs4"]));

    await checker.timeUntil(startHttpd(rs[0]!), [has(line(rs[0]!, 2)), lacks(`-r ${rs[3]!.address}:80`)], UP_BOUND_MS);
    expect(new Set(await httpRequests(d, VIP, 80, 30))).toEqual(new Set(["rs1"]));
    await healed();
  }, OP_MS);

  it("every bad input is refused at preview, naming the field and the rule, and the director is untouched", async () => {
    await healed();
    const before = await table();
    const refused = async (values: Record<string, unknown>, expected: string[]) => {
      await configure(values);
      const err = await stack.preview().then(() => undefined, (e: Error) => e);
      expect(err, `preview of ${JSON.stringify(values)} succeeded`).toBeDefined();
      for (const e of expected) expect(err!.message).toContain(e);
    };
    // The engine stops at the first resource whose check fails: each case is one resource's problems.
    await refused(
      {
        check: { type: "http", port: 0, rise: 0, fall: 101, intervalSeconds: 0, http: { path: "health", expectStatus: "99", method: "POST" } },
        minHealthy: "150%",
        sorryServer: { address: rs[3]!.address, forwarding: "local" },
      },
      [
        "healthCheck.port must be an integer 1..65535",
        "healthCheck.rise must be an integer 1..100",
        "healthCheck.fall must be an integer 1..100",
        "healthCheck.intervalSeconds must be a number of seconds 1..3600",
        'healthCheck.http.path "health" must start with "/"',
        'healthCheck.http.expectStatus must be status codes and ranges of 100..599 separated by commas, such as "200,301-302" ("99" is not one)',
        'healthCheck.http.method must be one of "GET", "HEAD"',
        'minHealthy must be a whole number of real servers 0..65535 or a percentage "0%".."100%"',
        'sorryServer.forwarding must be one of "nat", "dr", "tunnel"',
      ],
    );
    await refused(
      { check: { type: "tcp", intervalSeconds: 2, timeoutSeconds: 2, http: {} }, minHealthy: null, sorryServer: { address: "2001:db8::99" } },
      [
        "healthCheck.timeoutSeconds (2) must be less than intervalSeconds (2)",
        'healthCheck.http options are only used with type "http" or "https", not "tcp"',
        "sorryServer.address 2001:db8::99 is ipv6 but the service is ipv4",
      ],
    );
    await refused({ check: CHECK, sorryServer: null, ownChecks: [{ type: "dns" }] }, [
      'healthCheck.dns (with dns.name, the name to ask for) is required for type "dns"',
    ]);
    await refused({ ownChecks: [null, { type: "none", fall: 1 }] }, ['healthCheck.type "none" switches the inherited check off and takes no other fields (fall given)']);
    await refused({ ownChecks: [{ type: "icmp" }] }, ['healthCheck.type must be one of "tcp", "http", "https", "dns", "none"']);
    await refused({ ownChecks: [{ type: "dns", dns: { name: "example.org.", transport: "tls" } }] }, ['healthCheck.dns.transport must be one of "udp", "tcp"']);
    expect(await table()).toBe(before);
    // Put right, the same stack previews cleanly again.
    await configure({ ownChecks: null });
    await stack.preview();
  }, 3 * OP_MS); // seven previews
});

describe("health, not drift: refresh, up and status of checked real servers through the CLI", () => {
  let rs: LabRealServer[];
  let stack: E2EStack;
  let checker: LabChecker;
  let webWeights = [2, 3];
  let poolWeights = [4, 5, 6];

  const line = vipLine;
  /** Every declared entry at its declared weight. */
  const declared = () => [
    ...rs.slice(0, 2).map((s, i) => line(VIP, s, webWeights[i]!)),
    ...rs.map((s, i) => line(VIP2, s, poolWeights[i]!)),
  ];
  /** Runs `action`, then waits until every line in `want` is in the table (see LabChecker.timeUntil). */
  const until = async (action: string, want: string[], boundMs: number) => {
    await checker.timeUntil(action, want.map(has), boundMs);
  };
  const healed = () => until(rs.map(startHttpd).join("\n"), declared(), UP_BOUND_MS);

  const status = (...args: string[]): Promise<Run> =>
    new Promise((resolve) => {
      const child = execFile(process.execPath, [cli, "status", ...args], { cwd: stack.projectDir, env: stack.pulumiEnv(), timeout: 180_000 }, (_err, stdout, stderr) =>
        resolve({ code: child.exitCode ?? -1, stdout, stderr }),
      );
    });
  const statusJson = async (): Promise<{ run: Run; doc: StatusReport }> => {
    const run = await status("--json");
    return { run, doc: JSON.parse(run.stdout) as StatusReport };
  };
  /** What a refresh changed in state: the package's resources whose outputs it updated or deleted, by name. */
  const refreshed = (events: EngineEvent[]) => steps(events, "resOutputsEvent").flatMap(([name, op]) => (op === "update" || op === "delete" ? [name] : []));
  /** The weights state holds (the outputs a refresh writes): web-1, web-2, and the pool's members in backend order. */
  const stateWeights = async () => {
    const { deployment } = await stack.exportState();
    const outputs = (name: string) => (deployment.resources ?? []).find((r) => r.urn.endsWith(`::${name}`))?.outputs as Record<string, unknown>;
    const members = outputs("pool").members as Record<string, { weight: number }>;
    return { web: [outputs("web-1").weight, outputs("web-2").weight], pool: rs.map((s) => members[`${s.address}:80`]?.weight) };
  };
  const configureWeights = async (web: number[], pool: number[]) => {
    [webWeights, poolWeights] = [web, pool];
    await stack.setConfig("webWeights", JSON.stringify(web));
    await stack.setConfig("poolWeights", JSON.stringify(pool));
  };

  let end: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    rs = servers.slice(0, 3);
    const config = {
      vip: VIP,
      vip2: VIP2,
      backends: JSON.stringify(rs.map((s) => s.address)),
      check: JSON.stringify(CHECK),
      webWeights: JSON.stringify(webWeights),
      poolWeights: JSON.stringify(poolWeights),
    };
    ({ stack, checker, end } = await checkedStack(d, "health-view", config));
  }, OP_MS);

  afterAll(() => end?.(), OP_MS);

  it("a depooled real server is health, not drift: refresh changes nothing, status exits 0 and shows its health", async () => {
    await healed();
    // rs1 is web-1 and pool[rs1]: both entries quiesced by the checker.
    await until(stopHttpd(rs[0]!), [line(VIP, rs[0]!, 0), line(VIP2, rs[0]!, 0)], DOWN_BOUND_MS);

    const refresh = await stack.refresh();
    expect(refreshed(refresh.events)).toEqual([]);
    expect(await stateWeights()).toEqual({ web: webWeights, pool: poolWeights });

    const { run, doc } = await statusJson();
    expect(run.code, run.stderr).toBe(0);
    expect(doc.status).toBe("ok");
    const dir = doc.directors[0]!;
    expect(dir.checker).toEqual({ running: true });
    const web1 = dir.services.find((s) => s.resource === "web")!.realServers.find((r) => r.resource === "web-1")!;
    expect(web1).toMatchObject({ status: "ok", kernel: { weight: 0 }, health: { state: "unhealthy", depooled: true, declaredWeight: webWeights[0], check: "http" } });
    const member = dir.services.find((s) => s.resource === "pooled")!.realServers.find((r) => r.resource === `pool[${rs[0]!.address}:80]`)!;
    expect(member).toMatchObject({ status: "ok", kernel: { weight: 0 }, health: { state: "unhealthy", depooled: true, declaredWeight: poolWeights[0] } });
    const web2 = dir.services.find((s) => s.resource === "web")!.realServers.find((r) => r.resource === "web-2")!;
    expect(web2.health).toMatchObject({ state: "healthy", depooled: false, last: "ok" });
    expect(doc.health).toEqual([
      expect.stringMatching(new RegExp(`^web-1 \\(${rs[0]!.address}:80 of tcp/${VIP}:80 on .*\\): unhealthy since \\S+: .*; depooled \\(weight 0, declared ${webWeights[0]}, restored on recovery\\)$`)),
      expect.stringMatching(new RegExp(`^pool\\[${rs[0]!.address}:80\\] \\(${rs[0]!.address}:80 of tcp/${VIP2}:80 on .*\\): unhealthy since \\S+: .*; depooled \\(weight 0, declared ${poolWeights[0]}`)),
    ]);
    const text = await status();
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain("everything matches");
    expect(text.stdout).toContain("Health checker: running");
    expect(text.stdout).toContain("Health (the checker's doing, not drift):");
    expect(text.stdout).not.toContain("Drift:");

    // The GitOps drift job (examples/gitops) says the same: no drift, and the health apart.
    const gitops = await new Promise<Run>((resolve) => {
      const { GITHUB_STEP_SUMMARY: _summary, ...env } = stack.pulumiEnv();
      const child = execFile(
        path.join(repoRoot, "node_modules", ".bin", "tsx"),
        [path.join(repoRoot, "examples", "gitops", "gitops.ts"), "drift", "--stack", "e2e", "--cwd", stack.projectDir],
        { env, timeout: 300_000, maxBuffer: 64 * 1024 * 1024 },
        (_err, stdout, stderr) => resolve({ code: child.exitCode ?? -1, stdout, stderr }),
      );
    });
    expect(gitops.code, gitops.stderr).toBe(0);
    expect(gitops.stdout).toContain("No drift: every director's kernel matches the stack.\n");
    expect(gitops.stdout).toContain("Health (the checker's doing, not drift; `up` does not change it):");
    expect(gitops.stdout).toMatch(new RegExp(`  web-1 \\(${rs[0]!.address}:80 of tcp/${VIP}:80 on .*\\): unhealthy since .*; depooled`));
  }, OP_MS);

  it("an up that changes a depooled server's weight is recorded, refresh reads it, and the checker applies it on recovery", async () => {
    await until(stopHttpd(rs[0]!), [line(VIP, rs[0]!, 0), line(VIP2, rs[0]!, 0)], DOWN_BOUND_MS);
    await configureWeights([7, webWeights[1]!], [8, ...poolWeights.slice(1)]);
    const up = await stack.up();
    expect(up.code).toBe(0);
    // Still held out: the kernel keeps 0 while it is down.
    const t = (await d.exec("ipvsadm -Sn")).stdout;
    expect(t).toContain(line(VIP, rs[0]!, 0));
    expect(t).toContain(line(VIP2, rs[0]!, 0));
    // Recorded: refresh reads the new declared weights and changes nothing.
    expect(refreshed((await stack.refresh()).events)).toEqual([]);
    expect(await stateWeights()).toEqual({ web: [7, webWeights[1]], pool: [8, ...poolWeights.slice(1)] });
    const { doc } = await statusJson();
    expect(doc.status).toBe("ok");
    // Back up: at the weights the up recorded, not the ones it had when it went down.
    await until(startHttpd(rs[0]!), [line(VIP, rs[0]!, 7), line(VIP2, rs[0]!, 8)], UP_BOUND_MS);
    expect(await checker.logText()).toMatch(new RegExp(`→ ${rs[0]!.address.replace(/\./g, "\\.")}:80 up: .*restored, weight 0 → 7`));
  }, OP_MS);

  it("a hand edit of a healthy server's weight is still drift: status exits 1 naming it, refresh records it, up heals it", async () => {
    await healed();
    await ipvsadm(d, `-e -t ${VIP}:80 -r ${rs[1]!.address}:80 -m -w 9`);
    const { run, doc } = await statusJson();
    expect(run.code).toBe(1);
    expect(doc.status).toBe("drift");
    const web2 = doc.directors[0]!.services.find((s) => s.resource === "web")!.realServers.find((r) => r.resource === "web-2")!;
    expect(web2).toMatchObject({ status: "differs", differences: [{ field: "weight", declared: webWeights[1], kernel: 9 }], health: { state: "healthy" } });
    expect(doc.health).toEqual([]);
    // The checker leaves a healthy server it did not depool alone: the edit stays until up.
    expect(refreshed((await stack.refresh()).events)).toEqual(["web-2"]);
    expect((await stateWeights()).web).toEqual([webWeights[0], 9]);
    await stack.up();
    await until("", declared(), UP_BOUND_MS);
  }, OP_MS);

  it("status says when the checker is not running; the weights stay as they are (fail static)", async () => {
    await healed();
    await until(stopHttpd(rs[2]!), [line(VIP2, rs[2]!, 0)], DOWN_BOUND_MS);
    const before = (await d.exec("ipvsadm -Sn")).stdout;
    await checker.stop();
    // Stopping changes nothing: rs3 stays quiesced.
    expect((await d.exec("ipvsadm -Sn")).stdout).toBe(before);
    const { run, doc } = await statusJson();
    expect(run.code, run.stderr).toBe(0);
    expect(doc.directors[0]!.checker).toEqual({ running: false });
    expect(doc.health[0]).toMatch(/: the health checker is not running: no real server is depooled or restored, the weights stay as they are$/);
    const text = await status();
    expect(text.stdout).toContain("Health checker: NOT RUNNING");
    // Started again, it carries on from its state file and restores rs3 once its httpd answers.
    await checker.start();
    await until(startHttpd(rs[2]!), declared(), UP_BOUND_MS);
    expect((await statusJson()).doc.directors[0]!.checker).toEqual({ running: true });
  }, OP_MS);
});
