// examples/gitops as CI runs it (`tsx gitops.ts <mode>`, the Automation API driving the project's pulumi CLI) on
// examples/quickstart plus a RealServerPool and a DirectorSettings (fixtures/pool-settings) against one lab director,
// in one stack lifecycle: preview lists the kernel changes (pool members and settings one by one) and opens no SSH
// connection (sshd's log and the kernel's TCP counters say so), up applies (ipvsadm shows it), drift is quiet when the
// kernel matches and fails naming the entry, pool member or setting and the field after out-of-band ipvsadm edits,
// without recording them.
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDirector, type LabDirector } from "../lab/director";
import { ipvsadm, ipvsadmSave } from "../lab/ipvsadm";
import { addRealServers, addVip, type LabRealServer } from "../lab/realServers";
import { E2EStack, repoRoot, labDirectorConfig } from "./harness";

const VIP = "192.0.2.10";
const STACK = "e2e";
const RS_TYPE = "pulumi-nodejs:dynamic/ipvs:RealServer";
/** The fixture's pool: each backend on these ports, weight 2 unless `poolWeight` says otherwise. */
const POOL_PORTS = [80, 81];

/** The report's lines, sorted: the engine reports steps in no fixed order. */
const lines = (stdout: string) => stdout.split("\n").filter((l) => l !== "").sort();

/** The stack's hermetic pulumi environment, without a CI step summary file (the tool would write to it). */
function pulumiEnv(stack: E2EStack): NodeJS.ProcessEnv {
  const { GITHUB_STEP_SUMMARY: _summary, ...env } = stack.pulumiEnv();
  return env;
}

describe("examples/gitops against a lab director", () => {
  let d: LabDirector;
  let servers: LabRealServer[];
  let stack: E2EStack;

  const gitops = (mode: string): Promise<{ code: number; stdout: string; stderr: string }> =>
    new Promise((resolve) => {
      const child = execFile(
        path.join(repoRoot, "node_modules", ".bin", "tsx"),
        [path.join(repoRoot, "examples", "gitops", "gitops.ts"), mode, "--stack", STACK, "--cwd", stack.projectDir],
        { env: pulumiEnv(stack), timeout: 300_000, maxBuffer: 64 * 1024 * 1024 },
        (_err, stdout, stderr) => resolve({ code: child.exitCode ?? -1, stdout, stderr }),
      );
    });
  /** SSH logins and accepted TCP connections on the director so far (the lab's own exec reuses one master). */
  const sshCounters = async () => {
    const { stdout } = await d.exec(
      `grep -c 'Accepted publickey' /var/log/sshd.log || true; awk '/^Tcp:/ {n++} n==2 && /^Tcp:/ {print $7; exit}' /proc/net/snmp`,
    );
    const [logins, passiveOpens] = stdout.trim().split("\n").map(Number);
    return { logins, passiveOpens };
  };

  beforeAll(async () => {
    d = await startDirector();
    servers = await addRealServers(d, 3);
    await addVip(d, VIP);
    stack = await E2EStack.create({
      program: path.join(repoRoot, "test", "e2e", "fixtures", "pool-settings"),
      config: {
        ...labDirectorConfig(d),
        vip: VIP, backends: JSON.stringify(servers.map((s) => s.address)), scheduler: "rr", weight: "1",
      },
    });
  });

  afterAll(async () => {
    await stack?.dispose();
    await d?.stop();
  });

  it("preview (pull request) lists the creates, a pool's first members and the settings, and touches no director", async () => {
    const before = await sshCounters();
    const run = await gitops("preview");
    expect(run.code, run.stderr).toBe(0);
    // A new service's directors are secret inputs: the preview cannot name them.
    expect(run.stdout).toContain("Directors not known before up (a new service's directors are secret inputs):");
    expect(run.stdout).toMatch(new RegExp(`\\+\\s+create\\s+VirtualService web \\(tcp/${VIP}:80\\)`));
    for (const [i, s] of servers.entries())
      expect(run.stdout).toMatch(new RegExp(`\\+\\s+create\\s+RealServer app-${i + 1} \\(${s.address}:80 of tcp/${VIP}:80\\)`));
    // A pool created as a whole: its first five members, then the one left counted.
    const members = run.stdout.match(new RegExp(`\\+\\s+create\\s+RealServerPool web-pool\\[[0-9.]+:8[01]\\] \\([0-9.]+:8[01] of tcp/${VIP}:8080\\)\n`, "g"));
    expect(members, run.stdout).toHaveLength(5);
    expect(run.stdout).toMatch(/\+\s+create\s+… and 1 more member\(s\) of RealServerPool web-pool\n/);
    expect(run.stdout).toMatch(/\+\s+create\s+DirectorSettings settings: timeouts\.tcp unmanaged → 600, sysctls\.expireNodestConn unmanaged → true\n/);
    // web, app-1..3, pooled, six members, settings.
    expect(run.stdout).toContain("12 to create, 0 to update, 0 to replace, 0 to delete.");
    expect(await sshCounters()).toEqual(before);
    expect((await ipvsadmSave(d)).trim()).toBe("");
  });

  it("up (main) applies; a later preview names each changed field, real server, pool member and setting per director, still without SSH", async () => {
    const up = await gitops("up");
    expect(up.code, up.stderr).toBe(0);
    const save = await ipvsadmSave(d);
    expect(save).toContain(`-A -t ${VIP}:80 -s rr`);
    for (const s of servers) expect(save).toContain(`-a -t ${VIP}:80 -r ${s.address}:80 -m -w 1`);

    await stack.setConfig("weight", "4");
    const backends = JSON.stringify(servers.map((s) => s.address));
    await stack.setConfig("backends", JSON.stringify([...servers.map((s) => s.address), "10.10.0.99"]));
    // The pool: the last backend leaves, a new one joins, the others' weight changes; and one timeout changes.
    const [kept, gone] = [servers.slice(0, 2).map((s) => s.address), servers[2]!.address];
    await stack.setConfig("poolBackends", JSON.stringify([...kept, "10.10.0.99"]));
    await stack.setConfig("poolWeight", "5");
    await stack.setConfig("tcpTimeout", "300");
    const before = await sshCounters();
    const run = await gitops("preview");
    expect(run.code, run.stderr).toBe(0);
    const member = (address: string, port: number) => `RealServerPool web-pool[${address}:${port}] (${address}:${port} of tcp/${VIP}:8080)`;
    // Every line, so nothing else (the unchanged services, the unchanged sysctl) is listed. A real server or member
    // added to an existing service is on that service's directors.
    expect(lines(run.stdout)).toEqual(
      [
        `Director ${d.host}:${d.port}:`,
        ...servers.map((s, i) => `  ~  update  RealServer app-${i + 1} (${s.address}:80 of tcp/${VIP}:80): weight 1 → 4`),
        `  +  create  RealServer app-4 (10.10.0.99:80 of tcp/${VIP}:80)`,
        ...kept.flatMap((a) => POOL_PORTS.map((port) => `  ~  update  ${member(a, port)}: weight 2 → 5`)),
        ...POOL_PORTS.map((port) => `  +  create  ${member("10.10.0.99", port)}`),
        ...POOL_PORTS.map((port) => `  -  delete  ${member(gone, port)}`),
        "  ~  update  DirectorSettings settings: timeouts.tcp 600 → 300",
        "3 to create, 8 to update, 0 to replace, 2 to delete.",
      ].sort(),
    );
    expect(await sshCounters()).toEqual(before);
    expect(await ipvsadmSave(d)).toBe(save);
    await stack.setConfig("weight", "1");
    await stack.setConfig("backends", backends);
    await stack.setConfig("poolBackends", backends);
    await stack.setConfig("poolWeight", "2");
    await stack.setConfig("tcpTimeout", "600");
  });

  it("drift (schedule): quiet when the kernel matches; ipvsadm edits fail it naming entry, pool member, setting and field, and are not recorded", async () => {
    const clean = await gitops("drift");
    expect(clean.code, clean.stderr).toBe(0);
    expect(clean.stdout).toContain("No drift");

    const at = `${d.host}:${d.port}`;
    const header = "Drift (the kernel differs from the stack; `up` puts the declared settings back):";
    const poolLine = `  RealServerPool web-pool[${servers[1]!.address}:81] (${servers[1]!.address}:81 of tcp/${VIP}:8080 on ${at}): weight 2 → 7`;
    const settingsLine = `  DirectorSettings settings (on ${at}): timeouts.tcp 600 → 700`;
    await ipvsadm(d, `-e -t ${VIP}:8080 -r ${servers[1]!.address}:81 -m -w 7`);
    // tcp 700 s; 0 leaves tcpfin and udp as they are.
    await ipvsadm(d, "--set 700 0 0");
    const drift = await gitops("drift");
    // A pool member and a setting alone fail it. Every line: the other members, the services and the unchanged sysctl
    // are in sync.
    expect(drift.code, drift.stdout + drift.stderr).toBe(1);
    expect(lines(drift.stdout)).toEqual([header, poolLine, settingsLine].sort());

    await ipvsadm(d, `-e -t ${VIP}:80 -r ${servers[0]!.address}:80 -m -w 9`);
    const again = await gitops("drift");
    expect(again.code).toBe(1);
    // The earlier run only previewed the refresh: the pool's and the settings' drift is still reported, with the new one.
    const rsLine = `  RealServer app-1 (${servers[0]!.address}:80 of tcp/${VIP}:80 on ${at}): weight 1 → 9`;
    expect(lines(again.stdout)).toEqual([header, poolLine, settingsLine, rsLine].sort());
    // State still says weight 1, so the next scheduled run reports the drift again.
    const { deployment } = await stack.exportState();
    expect(deployment.resources!.filter((r) => r.type === RS_TYPE).map((r) => r.outputs!.weight)).toEqual([1, 1, 1]);
  });

  it("state places every resource at the program line that declared it (sourcePosition), not at a line of pulumi-ipvs", async () => {
    // "<file>#<line>" of each line of the program's two files that declares a pulumi-ipvs resource.
    const declared = new Set<string>();
    for (const file of ["examples/quickstart/index.ts", "test/e2e/fixtures/pool-settings/index.ts"]) {
      readFileSync(path.join(repoRoot, file), "utf8")
        .split("\n")
        .forEach((l, i) => /new ipvs\.\w+\(/.test(l) && declared.add(`${file}#${i + 1}`));
    }
    const { deployment } = await stack.exportState();
    const ours = deployment.resources!.filter((r) => r.type.startsWith("pulumi-nodejs:dynamic/ipvs:"));
    expect(ours.map((r) => r.type.split(":").pop()).sort()).toEqual(
      ["DirectorSettings", "RealServer", "RealServer", "RealServer", "RealServerPool", "VirtualService", "VirtualService"],
    );
    for (const r of ours) {
      if (r.sourcePosition === undefined) {
        // The quickstart declares its real servers in an arrow function passed to map: Pulumi's SDK finds no
        // position in an anonymous frame (its pattern wants "at name (file:line:column)"), for any resource.
        expect(r.type, `${r.urn} has no sourcePosition`).toBe(RS_TYPE);
        continue;
      }
      const [, rel, line] = /^project:\/\/\/(.*)#(\d+),\d+$/.exec(r.sourcePosition) ?? [];
      const at = rel === undefined ? r.sourcePosition : `${path.relative(repoRoot, path.resolve(stack.projectDir, rel))}#${line}`;
      expect([...declared], `${r.urn} is at ${at}`).toContain(at);
    }
  });
});
