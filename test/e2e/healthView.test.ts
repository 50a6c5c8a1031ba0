// Issue 27, Pulumi's view of health-checked real servers, through the real pulumi CLI and `pulumi-ipvs status` against
// one lab director (test/e2e/fixtures/health-view: RealServers web-1, web-2 and a RealServerPool over the same
// backends, every one checked). The checker (`ipvs-helper health`) is started by hand, as the README says for a
// director without systemd (the lab has none). ipvsadm on the director is the oracle; every wait polls it there with a
// deadline derived from the check (fall × interval + timeout + one interval down, rise × interval + one interval up).
// - a server the checker depooled is health, not drift: refresh writes no change, status exits 0 and names its health;
// - an up that changes a depooled server's weight is recorded (refresh then reads the new one) and applied on recovery;
// - a hand edit of a healthy server's weight is still drift, in refresh and in status;
// - status says when the checker is not running (and the weights stay as they are).
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StatusReport } from "../../provider/status/compare";
import { startDirector, type LabDirector } from "../lab/director";
import { ipvsadm } from "../lab/ipvsadm";
import { addRealServers, addVip, type LabRealServer } from "../lab/realServers";
import { E2EStack, repoRoot, type EngineEvent } from "./harness";

const VIP = "192.0.2.10";
const VIP2 = "192.0.2.11";
const LOG = "/run/lab/health-view.log";
const PID = "/run/lab/health-view.pid";
const INTERVAL = 2;
const CHECK = { type: "http", intervalSeconds: INTERVAL, timeoutSeconds: 0.5, rise: 2, fall: 2, http: { path: "/", expectStatus: "200" } };
const DOWN_BOUND_MS = (CHECK.fall * INTERVAL + CHECK.timeoutSeconds + INTERVAL) * 1000;
const UP_BOUND_MS = (CHECK.rise * INTERVAL + INTERVAL) * 1000;
const OP_MS = 240_000;
const cli = path.join(repoRoot, "dist", "provider", "status", "cli.js");

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe("health, not drift: refresh, up and status of checked real servers through the CLI", () => {
  let d: LabDirector;
  let rs: LabRealServer[];
  let stack: E2EStack;
  let webWeights = [2, 3];
  let poolWeights = [4, 5, 6];

  const line = (vip: string, s: LabRealServer, w: number) => `-a -t ${vip}:80 -r ${s.address}:80 -m -w ${w}`;
  /** Every declared entry at its declared weight. */
  const declared = () => [
    ...rs.slice(0, 2).map((s, i) => line(VIP, s, webWeights[i]!)),
    ...rs.map((s, i) => line(VIP2, s, poolWeights[i]!)),
  ];
  const killHttpd = (s: LabRealServer) => `for p in $(/sbin/ip netns pids ${s.name}); do kill $p; done`;
  const startHttpd = (s: LabRealServer) => `[ -n "$(/sbin/ip netns pids ${s.name})" ] || /sbin/ip netns exec ${s.name} busybox httpd -p 80 -h /run/lab/${s.name}`;
  const has = (l: string) => `grep -qxF -- '${l}' /tmp/hv`;
  const startChecker = () =>
    d.exec(`set -e; h=$(ls -d /usr/local/lib/pulumi-ipvs/*/ipvs-helper | tail -n 1); mkdir -p /run/lab
setsid "$h" health </dev/null >>${LOG} 2>&1 & echo $! > ${PID}`);
  /** Stops the checker and waits (10 s at most) until its process is gone, and with it its lock. */
  const stopChecker = () =>
    d.exec(`[ -e ${PID} ] || exit 0; p=$(cat ${PID}); kill $p 2>/dev/null || true; i=0
while [ -e /proc/$p ]; do i=$((i+1)); [ $i -lt 100 ] || { echo "checker $p did not stop" >&2; exit 1; }; sleep 0.1; done; rm -f ${PID}`);

  /** Runs `action`, then polls ipvsadm on the director every 0.2 s until every line in `want` is there; fails past boundMs + 3 s. */
  async function until(action: string, want: string[], boundMs: number): Promise<void> {
    const limit = Math.ceil((boundMs + 3000) / 10); // centiseconds
    await d.exec(`set -e
start=$(cut -d' ' -f1 /proc/uptime | tr -d .)
${action}
while :; do
  ipvsadm -Sn > /tmp/hv
  now=$(cut -d' ' -f1 /proc/uptime | tr -d .)
  if ${want.map(has).join(" && ")}; then exit 0; fi
  [ $((now - start)) -lt ${limit} ] || { echo "not reached within ${boundMs + 3000} ms" >&2; cat /tmp/hv >&2; tail -n 20 ${LOG} >&2; exit 1; }
  sleep 0.2
done`);
  }
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
  const refreshed = (events: EngineEvent[]) =>
    events.flatMap((e) => {
      const m = (e.resOutputsEvent as { metadata?: { op: string; urn: string } } | undefined)?.metadata;
      return m && m.urn.includes("pulumi-nodejs:dynamic") && (m.op === "update" || m.op === "delete") ? [m.urn.slice(m.urn.lastIndexOf("::") + 2)] : [];
    });
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

  beforeAll(async () => {
    d = await startDirector();
    rs = await addRealServers(d, 3);
    await addVip(d, VIP);
    await addVip(d, VIP2);
    stack = await E2EStack.create({
      program: path.join(repoRoot, "test/e2e/fixtures/health-view"),
      config: {
        host: d.host,
        port: String(d.port),
        user: d.user,
        privateKey: { secret: readFileSync(d.privateKeyPath, "utf8") },
        hostKey: d.hostKey,
        vip: VIP,
        vip2: VIP2,
        backends: JSON.stringify(rs.map((s) => s.address)),
        check: JSON.stringify(CHECK),
        webWeights: JSON.stringify(webWeights),
        poolWeights: JSON.stringify(poolWeights),
      },
    });
    await stack.up();
    await startChecker();
  }, OP_MS);

  afterAll(async () => {
    if (d) await stopChecker().catch(() => undefined);
    await stack?.dispose();
    await d?.stop();
  }, OP_MS);

  it("a depooled real server is health, not drift: refresh changes nothing, status exits 0 and shows its health", async () => {
    await healed();
    // rs1 is web-1 and pool[rs1]: both entries quiesced by the checker.
    await until(killHttpd(rs[0]!), [line(VIP, rs[0]!, 0), line(VIP2, rs[0]!, 0)], DOWN_BOUND_MS);

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
    expect(gitops.stdout).toContain("No drift: every director's kernel matches the stack.");
    expect(gitops.stdout).toContain("Health (the checker's doing, not drift; `up` does not change it):");
    expect(gitops.stdout).toMatch(new RegExp(`  web-1 \\(${rs[0]!.address}:80 of tcp/${VIP}:80 on .*\\): unhealthy since .*; depooled`));
  }, OP_MS);

  it("an up that changes a depooled server's weight is recorded, refresh reads it, and the checker applies it on recovery", async () => {
    await until(killHttpd(rs[0]!), [line(VIP, rs[0]!, 0), line(VIP2, rs[0]!, 0)], DOWN_BOUND_MS);
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
    expect((await d.exec(`cat ${LOG}`)).stdout).toMatch(new RegExp(`→ ${rs[0]!.address.replace(/\./g, "\\.")}:80 up: .*restored, weight 0 → 7`));
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
    await until(killHttpd(rs[2]!), [line(VIP2, rs[2]!, 0)], DOWN_BOUND_MS);
    const before = (await d.exec("ipvsadm -Sn")).stdout;
    await stopChecker();
    // Stopping changes nothing: rs3 stays quiesced.
    expect((await d.exec("ipvsadm -Sn")).stdout).toBe(before);
    const { run, doc } = await statusJson();
    expect(run.code, run.stderr).toBe(0);
    expect(doc.directors[0]!.checker).toEqual({ running: false });
    expect(doc.health[0]).toMatch(/: the health checker is not running: no real server is depooled or restored, the weights stay as they are$/);
    const text = await status();
    expect(text.stdout).toContain("Health checker: NOT RUNNING");
    // Started again, it carries on from its state file and restores rs3 once its httpd answers.
    await startChecker();
    await until(startHttpd(rs[2]!), declared(), UP_BOUND_MS);
    expect((await statusJson()).doc.directors[0]!.checker).toEqual({ running: true });
  }, OP_MS);
});
