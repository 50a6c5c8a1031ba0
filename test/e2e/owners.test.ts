// Issue #9 through the real pulumi CLI on one lab director with a persistent disk, in one lifecycle: stack A owns a
// service, its real servers and the director's settings; stack B can neither adopt A's service nor declare settings
// there, but adds a real server of its own to A's service; a hand-made entry stays untouched throughout; a real reboot
// (kill -9, boot on the same disk) brings back every owned entry and setting before any pulumi command, with real HTTP
// through the VIP and no drift for refresh; A's destroy refuses to take B's real server down; destroying both puts
// the settings back to the values found at create and leaves nothing behind but the helper binary.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDirector, type LabDirector } from "../lab/director";
import { ipvsadm, ipvsadmSave } from "../lab/ipvsadm";
import { addRealServers, addVip, httpRequests, type LabRealServer } from "../lab/realServers";
import { E2EStack, repoRoot, type OperationResult } from "./harness";

const VIP = "192.0.2.20";
const FOREIGN = "198.51.100.7:443";
const OWNER_A = "organization/owners-a/e2e";
const OWNER_B = "organization/owners-b/e2e";
const program = path.join(repoRoot, "test", "e2e", "fixtures", "owners");
const SYSCTLS = ["net.ipv4.vs.conn_reuse_mode", "net.ipv4.vs.expire_nodest_conn", "net.ipv4.ip_forward"];

const SETTINGS = {
  timeouts: { tcp: 900, tcpFin: 110, udp: 290 },
  sysctls: { connReuseMode: 0, expireNodestConn: true },
  ipForward: { ipv4: true },
  syncDaemons: [{ state: "master", interface: "eth0", syncId: 7 }],
};

/** The resource changes an operation's summary counted, e.g. { same: 5, update: 1 }. */
function changes(res: OperationResult): Record<string, number> {
  const summary = res.events.find((e) => e.summaryEvent)?.summaryEvent as { resourceChanges?: Record<string, number> } | undefined;
  return summary?.resourceChanges ?? {};
}

/**
 * `systemd-analyze verify` of the unit the helper installed, on this host (the lab has no systemd). Its ExecStart names
 * the installed helper on the director; the same bytes are here (the install is sha256-checked), so the path is
 * pointed at them. verify exits 0 even for directives it ignores, so any output fails too.
 */
function verifyUnit(text: string): void {
  const dir = mkdtempSync(path.join(tmpdir(), "pulumi-ipvs-unit-"));
  try {
    const file = path.join(dir, "pulumi-ipvs.service");
    const helper = path.join(repoRoot, "provider", "helper", "bin", "ipvs-helper-linux-amd64");
    writeFileSync(file, text.replace(/^ExecStart=\S+/m, `ExecStart=${helper}`));
    const res = spawnSync("systemd-analyze", ["verify", file], { encoding: "utf8", timeout: 60_000 });
    expect({ status: res.status, output: (res.stdout + res.stderr).trim() }).toEqual({ status: 0, output: "" });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** What a failed CLI run printed (the harness rejects with stdout and stderr in the message). */
async function failure(run: Promise<unknown>): Promise<string> {
  try {
    await run;
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error("the pulumi run was expected to fail, and succeeded");
}

describe("two stacks, director settings and a reboot on one lab director", () => {
  let d: LabDirector;
  let servers: LabRealServer[];
  let a: E2EStack;
  let b: E2EStack;
  let original: { sysctls: string; timeouts: string };

  const sysctls = async () => (await d.exec(`sysctl ${SYSCTLS.join(" ")}`)).stdout;
  const timeouts = () => ipvsadm(d, "-L --timeout");
  const daemons = () => ipvsadm(d, "-L --daemon");
  /** The table without the hand-made entry (a reboot empties the kernel; only owned entries come back), sorted:
   * the restore adds real servers in ledger order, and the kernel lists them in the order they were added. */
  const ownedSave = async () => (await ipvsadmSave(d)).split("\n").filter((l) => l && !l.includes(FOREIGN)).sort().join("\n");
  const addForeign = async () => {
    await ipvsadm(d, `-A -t ${FOREIGN} -s wlc`);
    await ipvsadm(d, `-a -t ${FOREIGN} -r 10.10.0.99:443 -m -w 3`);
  };
  const foreignLines = async () => (await ipvsadmSave(d)).split("\n").filter((l) => l.includes(FOREIGN));
  const logins = async () => Number((await d.exec("grep -c 'Accepted publickey' /var/log/sshd.log || true")).stdout.trim());
  const lab = async () => {
    servers = await addRealServers(d, 4);
    await addVip(d, VIP);
  };

  beforeAll(async () => {
    d = await startDirector({ persistentDisk: true });
    await lab();
    await addForeign();
    // NAT needs forwarding: off before A's create, so A's ipForward is what makes traffic flow, and destroy puts it back.
    await d.exec("sysctl -q -w net.ipv4.ip_forward=0 && modprobe ip_vs");
    original = { sysctls: await sysctls(), timeouts: await timeouts() };
    const director = JSON.stringify({
      host: d.host, port: d.port, user: d.user, privateKey: readFileSync(d.privateKeyPath, "utf8"), hostKey: d.hostKey,
    });
    a = await E2EStack.create({
      program, project: "owners-a",
      config: { director, role: "owner", vip: VIP, backends: JSON.stringify(servers.slice(0, 3).map((s) => s.address)), settings: JSON.stringify(SETTINGS) },
    });
    b = await E2EStack.create({
      program, project: "owners-b",
      config: { director, role: "intruder", vip: VIP, settings: JSON.stringify({ timeouts: { tcp: 100 } }) },
    });
  });

  afterAll(async () => {
    await b?.dispose().catch(() => undefined);
    await a?.dispose().catch(() => undefined);
    await d?.stop();
  });

  it("A: service, real servers and settings applied; read back with ipvsadm and sysctl; real HTTP", async () => {
    await a.up();
    const save = await ipvsadmSave(d);
    expect(save).toContain(`-A -t ${VIP}:80 -s rr`);
    for (const s of servers.slice(0, 3)) expect(save).toContain(`-a -t ${VIP}:80 -r ${s.address}:80 -m -w 1`);
    expect(await timeouts()).toContain("Timeout (tcp tcpfin udp): 900 110 290");
    expect(await daemons()).toMatch(/^master sync daemon \(mcast=eth0, syncid=7, /);
    expect(await sysctls()).toBe("net.ipv4.vs.conn_reuse_mode = 0\nnet.ipv4.vs.expire_nodest_conn = 1\nnet.ipv4.ip_forward = 1\n");
    expect(new Set(await httpRequests(d, VIP, 80, 6))).toEqual(new Set(["rs1", "rs2", "rs3"]));
    const owners = (await d.exec("/usr/local/lib/pulumi-ipvs/*/ipvs-helper owners")).stdout;
    expect(owners).toContain(OWNER_A);
    expect(await foreignLines()).toHaveLength(2);
  });

  it("A: settings drift is shown by refresh and healed by up; a change updates in place", async () => {
    await d.exec("sysctl -q -w net.ipv4.vs.conn_reuse_mode=2 && ipvsadm --set 60 0 0");
    const refreshed = await a.refresh();
    expect(changes(refreshed)).toMatchObject({ update: 1 });
    const healed = await a.up();
    expect(changes(healed)).toMatchObject({ update: 1 });
    expect(await sysctls()).toContain("net.ipv4.vs.conn_reuse_mode = 0");
    expect(await timeouts()).toContain("Timeout (tcp tcpfin udp): 900 110 290");

    await a.setConfig("settings", JSON.stringify({ ...SETTINGS, timeouts: { ...SETTINGS.timeouts, tcp: 901 } }));
    const updated = await a.up();
    expect(changes(updated)).toMatchObject({ update: 1 });
    expect(changes(updated).replace ?? 0).toBe(0);
    expect(await timeouts()).toContain("Timeout (tcp tcpfin udp): 901 110 290");
  });

  it("B: adopting A's service and declaring settings are refused naming A, and change nothing", async () => {
    const before = { save: await ipvsadmSave(d), timeouts: await timeouts() };
    const out = await failure(b.up());
    expect(out).toContain(OWNER_A);
    expect(out).toMatch(/takeover/);
    expect(await ipvsadmSave(d)).toBe(before.save);
    expect(await timeouts()).toBe(before.timeouts);
    const { deployment } = await b.exportState();
    expect((deployment.resources ?? []).filter((r) => r.type.includes("/ipvs:"))).toEqual([]);
  });

  it("B: adds a real server of its own to A's service", async () => {
    await b.setConfig("role", "neighbour");
    await b.cli(["config", "rm", "--stack", "e2e", "settings"]);
    await b.setConfig("guest", servers[3]!.address);
    await b.up();
    expect(await ipvsadmSave(d)).toContain(`-a -t ${VIP}:80 -r ${servers[3]!.address}:80 -m -w 1`);
    expect((await d.exec("/usr/local/lib/pulumi-ipvs/*/ipvs-helper owners")).stdout).toContain(OWNER_B);
  });

  it("a reboot restores every owned entry and setting before any pulumi command; refresh sees no drift", async () => {
    const before = { save: await ownedSave(), timeouts: await timeouts(), daemons: await daemons(), sysctls: await sysctls() };
    const unit = (await d.exec("cat /etc/systemd/system/pulumi-ipvs.service")).stdout;
    expect(unit).toMatch(/^ExecStart=\/usr\/local\/lib\/pulumi-ipvs\/[^/\s]+\/ipvs-helper boot$/m);
    expect((await d.exec("readlink /etc/systemd/system/multi-user.target.wants/pulumi-ipvs.service")).stdout.trim()).toBe(
      "/etc/systemd/system/pulumi-ipvs.service",
    );
    verifyUnit(unit);
    await d.reboot();
    expect(await ownedSave()).toBe(before.save);
    expect(await timeouts()).toBe(before.timeouts);
    expect(await daemons()).toBe(before.daemons);
    expect(await sysctls()).toBe(before.sysctls);
    // The hand-made entry was not owned: the reboot lost it, as it would without pulumi-ipvs.
    expect(await foreignLines()).toEqual([]);

    // The real servers are network namespaces inside the VM: they come back with the lab, not with the director.
    await lab();
    expect(new Set(await httpRequests(d, VIP, 80, 8))).toEqual(new Set(["rs1", "rs2", "rs3", "rs4"]));
    await addForeign();

    const sessions = await logins();
    await a.preview();
    await b.preview();
    expect(await logins()).toBe(sessions);
    for (const s of [a, b]) {
      const refreshed = await s.refresh();
      expect(changes(refreshed).update ?? 0).toBe(0);
      expect(changes(refreshed).delete ?? 0).toBe(0);
    }
  });

  it("A's destroy refuses to take B's real server down with its service, naming it", async () => {
    const out = await failure(a.destroy());
    expect(out).toContain(servers[3]!.address);
    expect(out).toContain(OWNER_B);
    expect(out).toMatch(/deleteForeignRealServers/);
    const save = await ipvsadmSave(d);
    expect(save).toContain(`-A -t ${VIP}:80 -s rr`);
    expect(save).toContain(`-r ${servers[3]!.address}:80`);
    expect(await foreignLines()).toHaveLength(2);
  });

  it("destroying both puts the settings back and leaves nothing behind but the helper binary", async () => {
    await b.destroy();
    await a.destroy();
    expect(await ownedSave()).toBe("");
    expect(await foreignLines()).toHaveLength(2);
    expect(await sysctls()).toBe(original.sysctls);
    expect(await timeouts()).toBe(original.timeouts);
    expect(await daemons()).toBe("");
    const left = (await d.exec("ls -d /var/lib/pulumi-ipvs /etc/systemd/system/pulumi-ipvs.service /etc/systemd/system/multi-user.target.wants/pulumi-ipvs.service 2>&1 || true")).stdout;
    expect(left).not.toMatch(/^\/(var|etc)\//m);
    expect((await d.exec("ls /usr/local/lib/pulumi-ipvs/*/ipvs-helper")).stdout.trim()).not.toBe("");
  });
});
