// The smaller examples run for real (pulumi up → ipvsadm shows exactly what they declare → destroy leaves nothing) on
// one lab director: examples/fwmark, examples/ipv6-udp-dns, examples/director-settings and examples/health-checks.
// fwmark's and ipv6-udp-dns's traffic needs a firewall mark rule or IPv6 DNS servers, which the lab does not have (the
// quickstart and dr-pair tests cover traffic); director-settings gets FTP servers (vsftpd) and a client (tnftp) that
// reaches them only through the VIP, and `pulumi-ipvs status`; health-checks gets real web servers and resolvers
// (dnsmasq), asked through the VIP and checked by the checker.
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StatusReport } from "../../provider/status/compare";
import { startDirector, type LabDirector } from "../lab/director";
import { FTP_CONTENT, ftpModulePorts, ftpModuleUsers, ftpTransfer, startFtpServers } from "../lab/ftp";
import { ipvsadm, ipvsadmList, ipvsadmSave } from "../lab/ipvsadm";
import { addRealServers, addVip, httpRequests, inClient } from "../lab/realServers";
import { E2EStack, labDirectorConfig, repoRoot } from "./harness";

const statusCli = path.join(repoRoot, "dist", "provider", "status", "cli.js");

/** `pulumi-ipvs status` (the built bin) in the stack's project directory, as a user runs it there. */
function statusOf(stack: E2EStack, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [statusCli, "status", ...args], { cwd: stack.projectDir, env: stack.pulumiEnv(), timeout: 180_000 }, (_err, stdout, stderr) =>
      resolve({ code: child.exitCode ?? -1, stdout, stderr }),
    );
  });
}

/** The output of a CLI run that must fail (E2EStack rejects with the run's stdout and stderr in the message). */
async function failedRun(run: Promise<unknown>): Promise<string> {
  const err = await run.then(
    () => undefined,
    (e: Error) => e,
  );
  if (!err) throw new Error("the operation succeeded; expected it to fail");
  return err.message;
}

describe("examples/fwmark, ipv6-udp-dns, director-settings and health-checks against a lab director", () => {
  let d: LabDirector;
  const connection = () => labDirectorConfig(d);

  beforeAll(async () => {
    d = await startDirector();
  });
  afterAll(async () => {
    await d?.stop();
  });

  it("fwmark: one persistent mark service, NAT real servers keeping the packet's port, thresholds", async () => {
    const stack = await E2EStack.create({ program: path.join(repoRoot, "examples", "fwmark"), config: { ...connection(), mark: "7" } });
    try {
      await stack.up();
      const save = await ipvsadmSave(d);
      expect(save).toContain("-A -f 7 -s wlc -p 1800");
      // ipvsadm -S leaves thresholds out; -L --thresholds shows them.
      const thresholds = await ipvsadmList(d, "--thresholds");
      for (const a of ["10.10.0.11", "10.10.0.12", "10.10.0.13"]) {
        expect(save).toContain(`-a -f 7 -r ${a}:0 -m -w 10`);
        expect(thresholds).toMatch(new RegExp(`-> ${a.replace(/\./g, "\\.")}:0\\s+500\\s+400\\s`));
      }
      expect((await stack.outputs()).service).toBe(`fwmark/ipv4/7@${d.host}:${d.port}`);
      await stack.destroy();
      expect((await ipvsadmSave(d)).trim()).toBe("");
    } finally {
      await stack.dispose();
    }
  });

  it("ipv6-udp-dns: a UDP service and its TCP twin on one IPv6 VIP", async () => {
    const stack = await E2EStack.create({
      program: path.join(repoRoot, "examples", "ipv6-udp-dns"),
      // Written uncompressed on purpose: state and the kernel agree on the compressed form.
      config: { ...connection(), vip: "2001:DB8:53:0::53", resolvers: JSON.stringify(["fd00:10:0::11", "fd00:10:0::12"]) },
    });
    try {
      await stack.up();
      const save = await ipvsadmSave(d);
      expect(save).toContain("-A -u [2001:db8:53::53]:53 -s rr\n");
      expect(save).toContain("-A -t [2001:db8:53::53]:53 -s lc");
      for (const p of ["-u", "-t"])
        for (const r of ["fd00:10::11", "fd00:10::12"]) expect(save).toContain(`-a ${p} [2001:db8:53::53]:53 -r [${r}]:53 -m -w 1`);
      // A second up is a no-op: the spelling of the VIP is no change.
      const again = await stack.up();
      expect(again.stdout).toMatch(/7 unchanged/);
      await stack.destroy();
      expect((await ipvsadmSave(d)).trim()).toBe("");
    } finally {
      await stack.dispose();
    }
  });
  it("director-settings: timeouts, sysctls, forwarding, a sync daemon and ip_vs_ftp, compared by status, put back by destroy; FTP through the VIP fails without the module and works with it; a bad FTP port is refused at preview", async () => {
    const vip = "192.0.2.30";
    const sysctls = "net.ipv4.vs.conn_reuse_mode net.ipv4.vs.expire_nodest_conn net.ipv4.vs.expire_quiescent_template net.ipv4.ip_forward";
    await d.exec("modprobe ip_vs && sysctl -q -w net.ipv4.ip_forward=0");
    const before = { sysctls: (await d.exec(`sysctl ${sysctls}`)).stdout, timeouts: await ipvsadm(d, "-L --timeout") };
    expect(await ftpModulePorts(d)).toBe("none");
    const ftpServers = await addRealServers(d, 2);
    await addVip(d, vip);
    const servers = await startFtpServers(d, ftpServers);
    const stack = await E2EStack.create({
      program: path.join(repoRoot, "examples", "director-settings"),
      config: { ...connection(), vip, ftpServers: JSON.stringify(ftpServers.map((s) => s.address)) },
    });
    const status = (...args: string[]) => statusOf(stack, args);
    const ftpPortsField = (run: { stdout: string }) =>
      (JSON.parse(run.stdout) as StatusReport).directors[0]!.settings!.fields.find((f) => f.field === "ftp.ports");
    const transfers = async () => ({ passive: await ftpTransfer(d, vip, "passive"), active: await ftpTransfer(d, vip, "active") });
    const logins = async () => Number((await d.exec("grep -c 'Accepted publickey' /var/log/sshd.log || true")).stdout.trim());
    try {
      await stack.up();
      expect(await ipvsadm(d, "-L --timeout")).toContain("Timeout (tcp tcpfin udp): 900 120 300");
      expect(await ipvsadm(d, "-L --daemon")).toMatch(/^master sync daemon \(mcast=eth0, syncid=1, /);
      expect((await d.exec(`sysctl -n ${sysctls}`)).stdout.split("\n").slice(0, 4)).toEqual(["1", "1", "1", "1"]);
      const save = await ipvsadmSave(d);
      expect(save).toContain(`-a -t ${vip}:80 -r 10.10.0.11:80 -m -w 1`);
      for (const s of ftpServers) expect(save).toContain(`-a -t ${vip}:21 -r ${s.address}:21 -m -w 1`);
      expect(await ftpModulePorts(d)).toBe("21");
      let run = await status("--json");
      expect(run.code, run.stdout + run.stderr).toBe(0);
      expect(ftpPortsField(run)).toEqual({ field: "ftp.ports", status: "ok", declared: [21], kernel: [21] });

      // Without ip_vs_ftp (removed by hand; no FTP connection holds it yet), status names it, and a client logs in
      // through the VIP but both transfer modes fail on their data connection.
      await d.exec("rmmod ip_vs_ftp");
      run = await status();
      expect(run.code, run.stdout + run.stderr).toBe(1);
      expect(run.stdout).toContain(`DirectorSettings director (on ${d.host}:${d.port}): ftp.ports: declared 21, kernel none`);
      const without = await transfers();
      for (const [mode, r] of Object.entries(without)) {
        expect(r.ok, `${mode}: ${r.out}`).toBe(false);
        expect(r.out, mode).not.toContain("Login failed");
      }
      // refresh reads the module's absence back, and up loads it again: both modes work, through IPVS (the data
      // connections are entries VIP:20 and VIP:3000x to the real server that holds the control connection).
      await stack.refresh();
      await stack.up();
      expect(await ftpModulePorts(d)).toBe("21");
      const withFtp = await transfers();
      for (const [mode, r] of Object.entries(withFtp)) {
        expect(r.ok, `${mode}: ${r.out}`).toBe(true);
        expect(r.out, mode).toContain(FTP_CONTENT);
      }
      const conns = await ipvsadm(d, "-Lnc");
      const backend = `10\\.10\\.0\\.\\d+`;
      expect(conns).toMatch(new RegExp(`${vip.replaceAll(".", "\\.")}:20 +${backend}:20`));
      expect(conns).toMatch(new RegExp(`${vip.replaceAll(".", "\\.")}:300\\d\\d +${backend}:300\\d\\d`));
      run = await status("--json");
      expect(run.code, run.stdout + run.stderr).toBe(0);
      expect(ftpPortsField(run)).toMatchObject({ status: "ok", kernel: [21] });

      // A port ip_vs_ftp cannot take is refused at preview, naming the field and the rule, before any director is
      // reached (no SSH login), and the module stays as it is.
      const loginsBefore = await logins();
      await stack.setConfig("ftpPorts", "[21, 70000]");
      const bad = await failedRun(stack.preview());
      expect(bad).toMatch(/DirectorSettings resource 'director' has a problem: ftp\.ports\[1\]: .*must be an integer 1\.\.65535/);
      expect(await logins()).toBe(loginsBefore);
      expect(await ftpModulePorts(d)).toBe("21");
      await stack.setConfig("ftpPorts", "[21]");

      // The transfers' control connection entries hold ip_vs_ftp until they expire (TIME_WAIT, 2 minutes), and the
      // module is unloaded only then (see test/lab/helper/ftp.test.ts for the refusal meanwhile): wait, then destroy.
      await expect.poll(() => ftpModuleUsers(d), { timeout: 180_000, interval: 2_000 }).toBe(0);
      await stack.destroy();
      expect((await ipvsadmSave(d)).trim()).toBe("");
      expect((await d.exec(`sysctl ${sysctls}`)).stdout).toBe(before.sysctls);
      expect(await ipvsadm(d, "-L --timeout")).toBe(before.timeouts);
      expect((await ipvsadm(d, "-L --daemon")).trim()).toBe("");
      expect(await ftpModulePorts(d)).toBe("none");
    } finally {
      await stack.dispose();
      await servers.stop();
    }
  });
  it("health-checks: the checker quiesces a web server whose /healthz fails and brings it back; the resolvers (dnsmasq) answer through the VIP and pass their dns checks", async () => {
    const vip = "192.0.2.40";
    const IP = "/sbin/ip";
    const LOG = "/run/lab/examples-health.log";
    // rs1..rs3 web (each with a /healthz), rs4 and rs5 resolvers, rs6 the sorry server.
    const rs = await addRealServers(d, 6);
    const [web, resolvers, sorry] = [rs.slice(0, 3), rs.slice(3, 5), rs[5]!];
    await addVip(d, vip);
    await d.exec(
      [
        // NAT replies are forwarded: the lab's default, which the director-settings case above leaves at 0.
        "sysctl -q -w net.ipv4.ip_forward=1",
        ...web.map((s) => `printf ok > /run/lab/${s.name}/healthz`),
        ...resolvers.map(
          (s) =>
            `setsid ${IP} netns exec ${s.name} dnsmasq --keep-in-foreground --port=53 --listen-address=${s.address} --bind-interfaces ` +
            `--no-resolv --no-hosts --address=/www.example.org/192.0.2.80 --user=root --pid-file=/run/lab/${s.name}.dns.pid </dev/null >/dev/null 2>&1 &`,
        ),
      ].join("\n"),
    );
    const stack = await E2EStack.create({
      program: path.join(repoRoot, "examples", "health-checks"),
      config: {
        ...connection(),
        vip,
        web: JSON.stringify(web.map((s) => s.address)),
        resolvers: JSON.stringify(resolvers.map((s) => s.address)),
        sorry: sorry.address,
      },
    });
    const save = () => ipvsadmSave(d);
    const webLine = (a: string, w: number) => `-a -t ${vip}:80 -r ${a}:80 -m -w ${w}`;
    try {
      await stack.up();
      expect(await save()).toContain(webLine(web[1]!.address, 10));
      for (const r of resolvers) expect(await save()).toContain(`-a -u ${vip}:53 -r ${r.address}:53 -m -w 1`);
      expect(await save()).toContain(`-a -u ${vip}:53 -r 10.10.0.23:53 -m -w 0`);
      expect((await stack.outputs()).resolverChecks).toEqual({
        [`${resolvers[0]!.address}:53`]: "dns",
        [`${resolvers[1]!.address}:53`]: "dns",
        "10.10.0.23:53": "none",
      });
      // No systemd in the lab: the checker is started as the README says for a director without it.
      await d.exec(`set -e; h=$(ls -d /usr/local/lib/pulumi-ipvs/*/ipvs-helper | tail -n 1)
setsid "$h" health </dev/null >>${LOG} 2>&1 & echo $! > /run/lab/examples-health.pid`);

      // /healthz fails (404), though the server still answers "/": the check, not the port, takes it out.
      await d.exec(`rm /run/lab/${web[1]!.name}/healthz`);
      await expect.poll(save, { timeout: 60_000, interval: 500 }).toContain(webLine(web[1]!.address, 0));
      expect(new Set(await httpRequests(d, vip, 80, 12))).toEqual(new Set([web[0]!.name, web[2]!.name]));
      expect((await d.exec(`cat ${LOG}`)).stdout).toContain(`tcp/${vip}:80 → ${web[1]!.address}:80 down: `);

      // The resolvers answer a real question through the VIP, twice. busybox nslookup retries for ever on its own, so
      // `timeout` bounds each query.
      const answers = await inClient(d, `for i in 1 2; do timeout 10 nslookup -type=A www.example.org ${vip} || exit 1; done`, { timeoutMs: 60_000 });
      expect(answers.stdout.match(/Address: 192\.0\.2\.80/g)).toHaveLength(2);

      await d.exec(`printf ok > /run/lab/${web[1]!.name}/healthz`);
      await expect.poll(save, { timeout: 60_000, interval: 500 }).toContain(webLine(web[1]!.address, 10));
      // The resolvers answered every dns check meanwhile (more than fall of them): none went down, both still pooled
      // (minHealthy "50%" would have kept only one of two pooled).
      expect((await d.exec(`cat ${LOG}`)).stdout).not.toContain(`udp/${vip}:53 → `);
      for (const r of resolvers) expect(await save()).toContain(`-a -u ${vip}:53 -r ${r.address}:53 -m -w 1`);
      await stack.destroy();
      expect((await save()).trim()).toBe("");
    } finally {
      await d.exec("[ -e /run/lab/examples-health.pid ] && kill $(cat /run/lab/examples-health.pid) || true", { check: false });
      await stack.dispose();
    }
  });
});
