// `pulumi-ipvs status` (the built bin, dist/provider/status/cli.js) in the project directory of a stack that the real
// pulumi CLI up'ed from examples/quickstart plus a RealServerPool and DirectorSettings (fixtures/pool-settings),
// against one lab director with real HTTP traffic, in one stack lifecycle: in sync it exits 0 with the kernel's
// counters, every pool member and setting listed; after out-of-band ipvsadm / sysctl edits it exits 1 naming the real
// server, the pool member or the setting and the field, and still does after a `pulumi refresh` wrote the kernel's
// values into state (declared is what the program declared; --refreshed shows the refreshed view); a real server
// deleted by hand is "missing in kernel"; without a pulumi CLI on PATH it says so in one line, and --pulumi points it at
// one; with the director gone it exits 2 naming it, in bounded time. No run prints the key.
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StatusReport } from "../../provider/status/compare";
import { startDirector, type LabDirector } from "../lab/director";
import { ipvsadm, waitForStats } from "../lab/ipvsadm";
import { addRealServers, addVip, httpRequests, type LabRealServer } from "../lab/realServers";
import { E2EStack, repoRoot } from "./harness";

const VIP = "192.0.2.10";
const FOREIGN = "198.51.100.7:443";
const STACK = "e2e";
const cli = path.join(repoRoot, "dist", "provider", "status", "cli.js");
/** The fixture's pool with its defaults: each backend on these ports, this weight. */
const POOL_PORTS = [80, 81];
const POOL_WEIGHT = 2;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

describe("pulumi-ipvs status against a lab director", () => {
  let d: LabDirector;
  let stopped = false;
  let servers: LabRealServer[];
  let stack: E2EStack;
  let keyText: string;

  const statusWith = (env: NodeJS.ProcessEnv, args: string[]): Promise<Run> => {
    const start = Date.now();
    return new Promise((resolve) => {
      const child = execFile(process.execPath, [cli, "status", ...args], { cwd: stack.projectDir, env, timeout: 180_000 }, (_err, stdout, stderr) =>
        resolve({ code: child.exitCode ?? -1, stdout, stderr, ms: Date.now() - start }),
      );
    });
  };
  const status = (...args: string[]) => statusWith(stack.pulumiEnv(), args);
  const json = (run: Run) => JSON.parse(run.stdout) as StatusReport;
  const expectNoKey = (run: Run) => {
    for (const line of keyText.split("\n").filter((l) => l && !l.startsWith("-----"))) expect(run.stdout + run.stderr).not.toContain(line);
  };
  const logins = async () => Number((await d.exec("grep -c 'Accepted publickey' /var/log/sshd.log || true")).stdout.trim());

  beforeAll(async () => {
    d = await startDirector();
    servers = await addRealServers(d, 3);
    await addVip(d, VIP);
    await ipvsadm(d, `-A -t ${FOREIGN} -s wlc`);
    keyText = readFileSync(d.privateKeyPath, "utf8");
    stack = await E2EStack.create({
      program: path.join(repoRoot, "test", "e2e", "fixtures", "pool-settings"),
      config: {
        host: d.host, port: String(d.port), user: d.user, privateKey: { secret: keyText }, hostKey: d.hostKey,
        vip: VIP, backends: JSON.stringify(servers.map((s) => s.address)), scheduler: "rr", weight: "1",
      },
    });
    await stack.up();
  });

  afterAll(async () => {
    if (!stopped) await stack?.dispose();
    else await stack?.dispose().catch(() => undefined);
    if (!stopped) await d?.stop();
  });

  it("in sync: exit 0, every entry, pool member and setting ok, the kernel's counters after real traffic, one SSH login for the whole stack", async () => {
    await httpRequests(d, VIP, 80, 6);
    // Totals are folded every 2 s: wait until the kernel shows the six connections, so the dump below has them too.
    await waitForStats(d, (st) => st.find((s) => s.service === `TCP ${VIP}:80`)?.conns === 6);

    const before = await logins();
    const run = await status("--json");
    expect(run.code, run.stderr).toBe(0);
    expect(await logins()).toBe(before + 1);
    const doc = json(run);
    expect(doc).toMatchObject({ stack: STACK, status: "ok", problems: [] });
    expect(doc.directors).toHaveLength(1);
    const [dir] = doc.directors;
    expect(dir).toMatchObject({ director: `${d.host}:${d.port}`, user: "ops", otherServices: [`tcp/${FOREIGN}`] });
    expect(dir!.error).toBeUndefined();
    expect(dir!.services.map((s) => [s.service, s.resource, s.status])).toEqual([
      [`tcp/${VIP}:80`, "web", "ok"],
      [`tcp/${VIP}:8080`, "pooled", "ok"],
    ]);
    expect(dir!.services[1]!.realServers.map((r) => [r.resource, r.pool, r.status, r.kernel?.weight])).toEqual(
      servers.flatMap((s) => POOL_PORTS.map((port) => [`web-pool[${s.address}:${port}]`, "web-pool", "ok", POOL_WEIGHT])),
    );
    expect(dir!.settings).toEqual({
      resource: "settings",
      status: "ok",
      fields: [
        { field: "timeouts.tcp", status: "ok", declared: 600, kernel: 600 },
        { field: "sysctls.expireNodestConn", status: "ok", declared: true, kernel: true },
      ],
    });
    const svc = dir!.services[0]!;
    expect(svc).toMatchObject({ service: `tcp/${VIP}:80`, resource: "web", status: "ok", kernel: { scheduler: "rr" } });
    expect(svc.realServers.map((r) => [r.resource, r.realServer, r.status, r.kernel?.weight])).toEqual(
      servers.map((s, i) => [`app-${i + 1}`, `${s.address}:80`, "ok", 1]),
    );
    for (const r of svc.realServers) {
      for (const v of [r.activeConns, r.inactiveConns, ...Object.values(r.stats!)]) expect(typeof v).toBe("number");
      expect(Object.keys(r.stats!)).toEqual(expect.arrayContaining(["conns", "cps", "inPps", "outPps", "inBps", "outBps"]));
    }
    // Counters only grow: the six requests are in them (rates depend on timing and are not asserted).
    expect(svc.realServers.reduce((k, r) => k + r.stats!.conns, 0)).toBeGreaterThanOrEqual(6);
    expect(svc.stats!.conns).toBeGreaterThanOrEqual(6);
    expectNoKey(run);

    const text = await status();
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`^Stack ${STACK}: everything matches`));
    expect(text.stdout).toMatch(/-> 10\.10\.0\.11:80\s+app-1\s+nat\s+1\s/);
    expect(text.stdout).toMatch(/-> 10\.10\.0\.11:80\s+web-pool\[10\.10\.0\.11:80\]\s+nat\s+2\s.*ok$/m);
    expect(text.stdout).toContain("  DirectorSettings settings: ok");
    expect(text.stdout).toMatch(/timeouts\.tcp\s+600\s+600\s+ok/);
    expectNoKey(text);
  });

  it("out-of-band edits: exit 1, naming the real server, the pool member, the setting and the field; a foreign real server is marked", async () => {
    await ipvsadm(d, `-e -t ${VIP}:80 -r ${servers[0]!.address}:80 -m -w 9`);
    await ipvsadm(d, `-a -t ${VIP}:80 -r 10.10.0.99:80 -m -w 1`);
    await ipvsadm(d, `-e -t ${VIP}:8080 -r ${servers[1]!.address}:80 -m -w 7`);
    await d.exec("sysctl -q -w net.ipv4.vs.expire_nodest_conn=0 && ipvsadm --set 700 0 0");
    const at = `${d.host}:${d.port}`;

    const text = await status();
    expect(text.code, text.stderr).toBe(1);
    expect(text.stdout).toMatch(new RegExp(`^Stack ${STACK}: drift`));
    expect(text.stdout).toContain(`RealServer app-1 (${servers[0]!.address}:80 of tcp/${VIP}:80 on ${d.host}:${d.port}): weight: declared 1, kernel 9`);
    expect(text.stdout).toMatch(/-> 10\.10\.0\.99:80\s+-\s+nat\s+1\s.*not managed by this stack/);
    expect(text.stdout).toContain(
      `RealServerPool web-pool[${servers[1]!.address}:80] (${servers[1]!.address}:80 of tcp/${VIP}:8080 on ${at}): weight: declared ${POOL_WEIGHT}, kernel 7`,
    );
    expect(text.stdout).toContain(`DirectorSettings settings (on ${at}): timeouts.tcp: declared 600, kernel 700; sysctls.expireNodestConn: declared true, kernel false`);
    expectNoKey(text);

    const run = await status("--json", "--stack", STACK);
    expect(run.code).toBe(1);
    const svc = json(run).directors[0]!.services[0]!;
    expect(svc.realServers.find((r) => r.resource === "app-1")).toMatchObject({ status: "differs", differences: [{ field: "weight", declared: 1, kernel: 9 }] });
    expect(svc.realServers.find((r) => r.realServer === "10.10.0.99:80")).toMatchObject({ status: "unmanaged" });
    expect(svc.realServers.filter((r) => r.status === "ok").map((r) => r.resource)).toEqual(["app-2", "app-3"]);
    const [, pooled] = json(run).directors[0]!.services;
    expect(pooled!.realServers.filter((r) => r.status !== "ok")).toMatchObject([
      { resource: `web-pool[${servers[1]!.address}:80]`, status: "differs", differences: [{ field: "weight", declared: POOL_WEIGHT, kernel: 7 }] },
    ]);
    expect(json(run).directors[0]!.settings).toMatchObject({
      status: "differs",
      fields: [
        { field: "timeouts.tcp", status: "differs", declared: 600, kernel: 700 },
        { field: "sysctls.expireNodestConn", status: "differs", declared: true, kernel: false },
      ],
    });
  });

  it("after a refresh: still declared vs kernel (exit 1), --refreshed matches; a real server deleted by hand is missing in kernel", async () => {
    // The previous test's hand edits stay: app-1 weight 9, a pool member weight 7, timeouts.tcp 700, expire_nodest_conn 0.
    await stack.refresh();
    const at = `${d.host}:${d.port}`;
    const member = `web-pool[${servers[1]!.address}:80]`;

    const text = await status();
    expect(text.code, text.stderr).toBe(1);
    expect(text.stdout).toContain(`RealServer app-1 (${servers[0]!.address}:80 of tcp/${VIP}:80 on ${at}): weight: declared 1, kernel 9`);
    expect(text.stdout).toContain(`RealServerPool ${member} (${servers[1]!.address}:80 of tcp/${VIP}:8080 on ${at}): weight: declared ${POOL_WEIGHT}, kernel 7`);
    expect(text.stdout).toContain(`DirectorSettings settings (on ${at}): timeouts.tcp: declared 600, kernel 700; sysctls.expireNodestConn: declared true, kernel false`);
    expectNoKey(text);

    // What refresh recorded is what the kernel has: nothing drifts in that view.
    const refreshed = await status("--refreshed");
    expect(refreshed.code, refreshed.stdout + refreshed.stderr).toBe(0);
    expect(refreshed.stdout).toMatch(new RegExp(`^Stack ${STACK}: everything matches`));
    expect(refreshed.stdout).toMatch(/-> 10\.10\.0\.11:80\s+app-1\s+nat\s+9\s.*ok$/m);

    // Deleted by hand: a RealServer and a pool member. Before a refresh both are missing; after it the pool still
    // declares its member (a refresh removes a RealServer the kernel no longer has from state: the next up recreates it).
    const gone = `${servers[2]!.address}:81`;
    await ipvsadm(d, `-d -t ${VIP}:80 -r ${servers[1]!.address}:80`);
    await ipvsadm(d, `-d -t ${VIP}:8080 -r ${gone}`);
    const before = await status();
    expect(before.code, before.stderr).toBe(1);
    expect(before.stdout).toContain(`RealServer app-2 (${servers[1]!.address}:80 of tcp/${VIP}:80 on ${at}): missing in kernel`);
    expect(before.stdout).toContain(`RealServerPool web-pool[${gone}] (${gone} of tcp/${VIP}:8080 on ${at}): missing in kernel`);
    await stack.refresh();
    const after = await status();
    expect(after.code, after.stderr).toBe(1);
    expect(after.stdout).toContain(`RealServerPool web-pool[${gone}] (${gone} of tcp/${VIP}:8080 on ${at}): missing in kernel`);
    expect(after.stdout).toMatch(new RegExp(`-> ${gone.replace(/\./g, "\\.")}\\s+web-pool\\[.*missing in kernel$`, "m"));
    const doc = json(await status("--json", "--refreshed"));
    expect(doc.directors[0]!.services[1]!.realServers.map((r) => r.resource)).not.toContain(`web-pool[${gone}]`);
  });

  it("no pulumi CLI on PATH: one line naming what is missing, --pulumi and the variables; --pulumi finds it", async () => {
    const env = stack.pulumiEnv();
    const pulumiCli = path.join(repoRoot, ".pulumi-cli", "bin", "pulumi");
    const withoutPulumi = { ...env, PATH: (env.PATH ?? "").split(path.delimiter).filter((dir) => !existsSync(path.join(dir, "pulumi"))).join(path.delimiter) };
    const none = await statusWith(withoutPulumi, []);
    expect(none.code).toBe(2);
    expect(none.stdout).toBe("");
    expect(none.stderr.trimEnd().split("\n")).toEqual([
      "pulumi-ipvs status: no pulumi CLI on PATH (status reads the stack's state with it): install it (https://www.pulumi.com/docs/install/) or pass --pulumi <path to the pulumi binary>; status honours PULUMI_BACKEND_URL, PULUMI_ACCESS_TOKEN, PULUMI_CONFIG_PASSPHRASE(_FILE), PULUMI_HOME as pulumi does",
    ]);
    const wrong = await statusWith(withoutPulumi, ["--pulumi", "/nonexistent/pulumi"]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain("--pulumi /nonexistent/pulumi: no executable pulumi CLI there");
    const given = await statusWith(withoutPulumi, ["--pulumi", pulumiCli]);
    expect(given.code, given.stderr).toBe(1);
    expect(given.stdout).toMatch(new RegExp(`^Stack ${STACK}: drift`));
  });

  it("a stack that does not exist, then a director that is gone: exit 2 with the message, never a hang", async () => {
    const none = await status("--stack", "nope");
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/nope/);

    await d.stop();
    stopped = true;
    const run = await status("--json");
    expect(run.code).toBe(2);
    const dir = json(run).directors[0]!;
    expect(dir.director).toBe(`${d.host}:${d.port}`);
    expect(dir.error).toMatch(new RegExp(`${d.host}:${d.port}`));
    expect(dir.services[0]!.status).toBe("unknown");
    expect(dir.settings).toMatchObject({ resource: "settings", status: "unknown" });
    // Bounded by the session's retry budget (1.5 × connectTimeoutSeconds 20 s), plus the pulumi CLI's own start.
    expect(run.ms).toBeLessThan(90_000);
    expectNoKey(run);
    // The director is gone with its table: forget the resources so dispose() does not try to destroy them there.
    await stack.cli(["state", "delete", "--all", "--yes", "--stack", STACK]);
  });
});
