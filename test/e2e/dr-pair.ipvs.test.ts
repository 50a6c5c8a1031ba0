// examples/dr-pair through the real pulumi CLI against TWO lab directors: one up puts the same DR service and real
// servers on both. Each real server is a host of its own for RealServerHost: an sshd in its namespace (reached with
// the director as jump host) with a private state directory, so each has its own ledger. Real HTTP through the VIP
// fails while the hosts are not prepared and works once RealServerHost prepares them; destroy empties both directors
// and puts every real server host back as it was (no VIP on lo, the ARP sysctls at their former values).
// `pulumi-ipvs status` lists every real server host in sync after up, and a VIP removed from one by hand as that
// host's drift (exit 1) until up heals it.
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StatusReport } from "../../provider/status/compare";
import { startDirector, type LabDirector } from "../lab/director";
import { ipvsadmSave } from "../lab/ipvsadm";
import { addRealServers, addVip, httpRequests, serveSsh, type LabRealServer } from "../lab/realServers";
import { E2EStack, repoRoot } from "./harness";

const VIP = "192.0.2.20";
const IP = "/sbin/ip";
const ARP = ["arp_ignore", "arp_announce"];

/** What RealServerHost touches in a real server's namespace: the addresses on lo and the ARP sysctls. */
async function hostView(d: LabDirector, s: LabRealServer): Promise<{ lo: string[]; arp: string }> {
  const { stdout } = await d.exec(
    `${IP} -n ${s.name} -o addr show dev lo | awk '{print $4}' | sort | tr '\\n' ' '; echo; ${ARP.map((k) => `${IP} netns exec ${s.name} cat /proc/sys/net/ipv4/conf/all/${k}`).join("; ")}`,
  );
  const [lo = "", ...arp] = stdout.trim().split("\n");
  return { lo: lo.trim().split(/\s+/).filter(Boolean), arp: arp.join(" ") };
}

/** A real server host as RealServerHost leaves it: its former addresses and the VIP on lo, ARP suppressed. */
const prepared = (was: { lo: string[] }) => ({ lo: [...was.lo, `${VIP}/32`].sort(), arp: "1 2" });

const STATUS_CLI = path.join(repoRoot, "dist", "provider", "status", "cli.js");

/** `pulumi-ipvs status` (the built bin) in the stack's project directory, as an operator runs it. */
function status(stack: E2EStack, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [STATUS_CLI, "status", ...args], { cwd: stack.projectDir, env: stack.pulumiEnv(), timeout: 180_000 }, (_e, stdout, stderr) =>
      resolve({ code: child.exitCode ?? -1, stdout, stderr }),
    );
  });
}

/** examples/gitops's scheduled drift job (`tsx gitops.ts drift`) on the stack, as CI runs it (no step summary file). */
function gitopsDrift(stack: E2EStack): Promise<{ code: number; stdout: string; stderr: string }> {
  const { GITHUB_STEP_SUMMARY: _summary, ...env } = stack.pulumiEnv();
  return new Promise((resolve) => {
    const child = execFile(
      path.join(repoRoot, "node_modules", ".bin", "tsx"),
      [path.join(repoRoot, "examples", "gitops", "gitops.ts"), "drift", "--stack", stack.stackName, "--cwd", stack.projectDir],
      { env, timeout: 300_000, maxBuffer: 64 * 1024 * 1024 },
      (_e, stdout, stderr) => resolve({ code: child.exitCode ?? -1, stdout, stderr }),
    );
  });
}

/** The ARP sysctls every dr host's report lists, as declared and as read. */
const ARP_OK = [
  { name: "net.ipv4.conf.all.arp_announce", status: "ok", declared: 2, kernel: 2 },
  { name: "net.ipv4.conf.all.arp_ignore", status: "ok", declared: 1, kernel: 1 },
];

describe("examples/dr-pair: one DR service on two lab directors, real servers prepared by RealServerHost", () => {
  let a: LabDirector;
  let b: LabDirector;
  let servers: Map<LabDirector, LabRealServer[]>;
  let before: Map<string, { lo: string[]; arp: string }>;
  let stack: E2EStack;

  beforeAll(async () => {
    [a, b] = await Promise.all([startDirector(), startDirector()]);
    servers = new Map();
    before = new Map();
    for (const d of [a, b]) {
      const rs = await addRealServers(d, 2);
      servers.set(d, rs);
      await serveSsh(d, rs);
      // The VIP's owner on the directors (keepalived, BGP…) is outside the example; replies leave the real servers
      // with the VIP as source through the director, which owns the VIP too: lab routing, not real-server preparation.
      await addVip(d, VIP);
      await d.exec(`for f in /proc/sys/net/ipv4/conf/*/accept_local; do echo 1 > $f; done
for f in /proc/sys/net/ipv4/conf/*/rp_filter; do echo 0 > $f; done`);
      for (const s of rs) before.set(`${d.name}/${s.name}`, await hostView(d, s));
    }
    const backends = ["10.10.0.11", "10.10.0.12"];
    stack = await E2EStack.create({
      program: path.join(repoRoot, "examples", "dr-pair"),
      config: {
        directorA: `${a.host}:${a.port}`,
        directorB: `${b.host}:${b.port}`,
        user: a.user,
        privateKey: { secret: readFileSync(a.privateKeyPath, "utf8") },
        hostKeyA: a.hostKey,
        hostKeyB: b.hostKey,
        vip: VIP,
        backends: JSON.stringify(backends),
        // Each lab director has its own copies of the real servers, behind it: each reached through it.
        realServerHosts: JSON.stringify(["A", "B"].flatMap((via) => backends.map((address) => ({ address, via })))),
        // The namespaces' sshd is the director VM's, with its host key.
        realServerHostKey: a.hostKey,
        prepareRealServers: "false",
      },
    });
  });

  afterAll(async () => {
    await stack?.dispose();
    await Promise.all([a?.stop(), b?.stop()]);
  });

  it("without RealServerHost the DR service carries no traffic: the real servers drop packets for a VIP they do not have", async () => {
    await stack.up();
    for (const d of [a, b]) {
      expect(await ipvsadmSave(d)).toContain(`-a -t ${VIP}:80 -r 10.10.0.11:80 -g -w 100`);
      expect(await httpRequests(d, VIP, 80, 2, { allowFailures: true, timeoutSeconds: 2 })).toEqual(["", ""]);
    }
  });

  it("up with RealServerHost prepares every real server host, and each director serves the VIP", async () => {
    await stack.setConfig("prepareRealServers", "true");
    await stack.up();
    for (const d of [a, b]) {
      const save = await ipvsadmSave(d);
      expect(save).toContain(`-A -t ${VIP}:80 -s wlc -p 300 -M 255.255.255.0`);
      expect(save).toContain(`-a -t ${VIP}:80 -r 10.10.0.11:80 -g -w 100`);
      expect(save).toContain(`-a -t ${VIP}:80 -r 10.10.0.12:80 -g -w 100`);
      for (const s of servers.get(d)!) expect(await hostView(d, s)).toEqual(prepared(before.get(`${d.name}/${s.name}`)!));
      // Persistent per client /24: every request of the one client lands on the same real server.
      const answers = await httpRequests(d, VIP, 80, 4);
      expect(answers.every((x) => x === answers[0])).toBe(true);
      expect(["rs1", "rs2"]).toContain(answers[0]);
    }
    // status: both directors and all four hosts read, each host's VIP on lo and its ARP sysctls as declared.
    const run = await status(stack, "--json");
    expect(run.code, run.stderr).toBe(0);
    const report = JSON.parse(run.stdout) as StatusReport;
    expect(report.status).toBe("ok");
    const jump = (d: LabDirector) => `${d.user}@${d.host}:${d.port}`;
    expect(report.hosts).toEqual(
      [a, a, b, b].map((d, i) => ({
        resource: `web-host-${i + 1}`, host: `10.10.0.1${(i % 2) + 1}:22`, user: a.user, via: [jump(d)], forwarding: "dr", status: "ok",
        vips: [{ address: VIP, device: "lo", status: "ok" }], sysctls: ARP_OK,
      })),
    );
    expect(run.stdout).not.toContain(readFileSync(a.privateKeyPath, "utf8").split("\n")[1]!);
    const outs = await stack.outputs();
    expect(outs.service).toBe(`tcp/${VIP}:80@${[a, b].map((d) => `${d.host}:${d.port}`).sort().join(",")}`);
    expect(outs.preparedVips).toEqual([[VIP], [VIP], [VIP], [VIP]]);
  });

  it("a VIP removed from a real server by hand is drift: refresh shows it, up puts it back", async () => {
    const [rs1] = servers.get(a)!;
    await a.exec(`${IP} -n ${rs1!.name} addr del ${VIP}/32 dev lo`);
    // status sees it before any refresh: that host's drift, exit 1; the other hosts and the directors are in sync.
    const text = await status(stack);
    expect(text.code, text.stderr).toBe(1);
    expect(text.stdout).toContain(`Real server host web-host-1 (${a.user}@10.10.0.11:22 via ${a.user}@${a.host}:${a.port}, dr): drift`);
    // The drift section, the report's last, names that host alone.
    expect(text.stdout.slice(text.stdout.indexOf("Drift:"))).toBe(`Drift:\n  RealServerHost web-host-1 (${a.user}@10.10.0.11:22 via ${a.user}@${a.host}:${a.port}): vip ${VIP} missing on lo\n`);
    const report = JSON.parse((await status(stack, "--json")).stdout) as StatusReport;
    expect(report.status).toBe("drift");
    expect(report.hosts.map((h) => h.status)).toEqual(["differs", "ok", "ok", "ok"]);
    expect(report.hosts[0]).toMatchObject({ vips: [{ address: VIP, device: "lo", status: "missing" }], sysctls: ARP_OK });
    expect(report.directors.every((d) => d.services.every((s) => s.status === "ok" && s.realServers.every((r) => r.status === "ok")))).toBe(true);
    // The GitOps drift job counts it as drift too: exit 1, that host alone named.
    const job = await gitopsDrift(stack);
    expect(job.code, job.stdout + job.stderr).toBe(1);
    expect(job.stdout.split("\n").filter((l) => l.startsWith("  "))).toEqual([`  RealServerHost web-host-1 (10.10.0.11:22): vip ${VIP} missing`]);
    await stack.refresh();
    const host1 = (await stack.exportState()).deployment.resources?.find((r) => r.urn.endsWith("::web-host-1"));
    expect(host1?.outputs?.vips).toEqual([]);
    await stack.up();
    expect(await hostView(a, rs1!)).toEqual(prepared(before.get(`${a.name}/${rs1!.name}`)!));
    expect((await status(stack)).code).toBe(0);
    // Healed: the drift job's "no drift" speaks for the hosts too, since the stack has some.
    const clean = await gitopsDrift(stack);
    expect(clean.code, clean.stdout + clean.stderr).toBe(0);
    expect(clean.stdout).toContain("No drift: every director's kernel matches the stack. So does every real server host.\n");
  });

  it("destroy empties both directors and puts every real server host back as it was", async () => {
    await stack.destroy();
    for (const d of [a, b]) {
      expect((await ipvsadmSave(d)).trim()).toBe("");
      for (const s of servers.get(d)!) expect(await hostView(d, s)).toEqual(before.get(`${d.name}/${s.name}`));
    }
    // What was put back is what a fresh namespace has: no VIP, the kernel's ARP defaults.
    for (const v of before.values()) expect(v).toMatchObject({ arp: "0 0", lo: expect.not.arrayContaining([`${VIP}/32`]) });
  });
});
