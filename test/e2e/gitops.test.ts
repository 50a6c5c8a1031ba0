// examples/gitops as CI runs it (`tsx gitops.ts <mode>`, the Automation API driving the project's pulumi CLI) on
// examples/quickstart against one lab director, in one stack lifecycle: preview lists the kernel changes and opens no
// SSH connection (sshd's log and the kernel's TCP counters say so), up applies (ipvsadm shows it), drift is quiet when
// the kernel matches and fails naming the entry and the field after an out-of-band ipvsadm edit, without recording it.
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDirector, type LabDirector } from "../lab/director";
import { ipvsadm, ipvsadmSave } from "../lab/ipvsadm";
import { addRealServers, addVip, type LabRealServer } from "../lab/realServers";
import { E2EStack, repoRoot } from "./harness";

const VIP = "192.0.2.10";
const STACK = "e2e";
const RS_TYPE = "pulumi-nodejs:dynamic/ipvs:RealServer";

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
      program: path.join(repoRoot, "examples", "quickstart"),
      config: {
        host: d.host, port: String(d.port), user: d.user, privateKey: { secret: readFileSync(d.privateKeyPath, "utf8") }, hostKey: d.hostKey,
        vip: VIP, backends: JSON.stringify(servers.map((s) => s.address)), scheduler: "rr", weight: "1",
      },
    });
  });

  afterAll(async () => {
    await stack?.dispose();
    await d?.stop();
  });

  it("preview (pull request) lists the creates and touches no director", async () => {
    const before = await sshCounters();
    const run = await gitops("preview");
    expect(run.code, run.stderr).toBe(0);
    // A new service's directors are secret inputs: the preview cannot name them.
    expect(run.stdout).toContain("Directors not known before up (a new service's directors are secret inputs):");
    expect(run.stdout).toMatch(new RegExp(`\\+\\s+create\\s+VirtualService web \\(tcp/${VIP}:80\\)`));
    for (const [i, s] of servers.entries())
      expect(run.stdout).toMatch(new RegExp(`\\+\\s+create\\s+RealServer app-${i + 1} \\(${s.address}:80 of tcp/${VIP}:80\\)`));
    expect(run.stdout).toContain("4 to create, 0 to update, 0 to replace, 0 to delete.");
    expect(await sshCounters()).toEqual(before);
    expect((await ipvsadmSave(d)).trim()).toBe("");
  });

  it("up (main) applies; a later preview names the changed field and the new real server per director, still without SSH", async () => {
    const up = await gitops("up");
    expect(up.code, up.stderr).toBe(0);
    const save = await ipvsadmSave(d);
    expect(save).toContain(`-A -t ${VIP}:80 -s rr`);
    for (const s of servers) expect(save).toContain(`-a -t ${VIP}:80 -r ${s.address}:80 -m -w 1`);

    await stack.setConfig("weight", "4");
    const backends = JSON.stringify(servers.map((s) => s.address));
    await stack.setConfig("backends", JSON.stringify([...servers.map((s) => s.address), "10.10.0.99"]));
    const before = await sshCounters();
    const run = await gitops("preview");
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain(`Director ${d.host}:${d.port}:`);
    for (const [i, s] of servers.entries())
      expect(run.stdout).toMatch(new RegExp(`~\\s+update\\s+RealServer app-${i + 1} \\(${s.address}:80 of tcp/${VIP}:80\\): weight 1 → 4`));
    // A real server added to an existing service: on that service's directors.
    expect(run.stdout).toMatch(new RegExp(`\\+\\s+create\\s+RealServer app-4 \\(10\\.10\\.0\\.99:80 of tcp/${VIP}:80\\)\n`));
    expect(run.stdout).not.toContain("Directors not known");
    expect(run.stdout).not.toMatch(/VirtualService web/);
    expect(run.stdout).toContain("1 to create, 3 to update, 0 to replace, 0 to delete.");
    expect(await sshCounters()).toEqual(before);
    expect(await ipvsadmSave(d)).toBe(save);
    await stack.setConfig("weight", "1");
    await stack.setConfig("backends", backends);
  });

  it("drift (schedule): quiet when the kernel matches; an ipvsadm edit fails it naming entry and field, and is not recorded", async () => {
    const clean = await gitops("drift");
    expect(clean.code, clean.stderr).toBe(0);
    expect(clean.stdout).toContain("No drift");

    await ipvsadm(d, `-e -t ${VIP}:80 -r ${servers[0]!.address}:80 -m -w 9`);
    const line = `RealServer app-1 (${servers[0]!.address}:80 of tcp/${VIP}:80 on ${d.host}:${d.port}): weight 1 → 9`;
    const drift = await gitops("drift");
    expect(drift.code, drift.stderr).toBe(1);
    expect(drift.stdout).toContain(line);
    expect(drift.stdout).not.toMatch(/app-2|app-3|VirtualService/);
    // It only previews the refresh: state still says weight 1, so the next scheduled run reports the drift again.
    const { deployment } = await stack.exportState();
    expect(deployment.resources!.filter((r) => r.type === RS_TYPE).map((r) => r.outputs!.weight)).toEqual([1, 1, 1]);
    const again = await gitops("drift");
    expect(again.code).toBe(1);
    expect(again.stdout).toContain(line);
  });
});
