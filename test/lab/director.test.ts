// The lab director keeps the promises other tests rely on: pinned host key, the three login users and their sudo,
// every IPVS scheduler, binary-safe copies that can run, long-lived connections through a VIP, and attach by name;
// with a persistent disk, a crash-like reboot that keeps what a real director keeps and runs its enabled units.
import { randomBytes, createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { attachDirector, startDirector, type LabDirector } from "./director";
import { ipvsadm, ipvsadmSave } from "./ipvsadm";
import { addRealServers, addVip, openLongConnection } from "./realServers";
import { sshRun, type SshTarget } from "./ssh";

// Debian 12's kernel (6.1) predates ip_vs_twos (6.2), so it is not among them.
const SCHEDULERS = ["rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh"];

describe("lab director", () => {
  let d: LabDirector;
  let tmp: string;
  const as = (user: string): SshTarget => ({
    host: d.host,
    port: d.port,
    user,
    privateKeyPath: d.privateKeyPath,
    knownHostsPath: path.join(tmp, "known_hosts"),
  });

  beforeAll(async () => {
    d = await startDirector();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "lab-director-test-"));
    // Only the advertised host key is trusted: a wrong hostKey makes every login below fail.
    fs.writeFileSync(path.join(tmp, "known_hosts"), `[${d.host}]:${d.port} ${d.hostKey}\n`);
  });

  afterAll(async () => {
    await d?.stop();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("lets the sudo user become root without a password", async () => {
    expect(d.user).toBe("ops");
    const r = await sshRun(as(d.sudoUser), "id -un; sudo -n id -un");
    expect(r).toMatchObject({ code: 0, stdout: "ops\nroot\n" });
  });

  it("refuses sudo without a password for needpw, saying a password is required", async () => {
    const r = await sshRun(as("needpw"), "id -un; sudo -n true");
    expect(r.stdout).toBe("needpw\n");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("a password is required");
  });

  it("runs commands as root and reports failures with their stderr", async () => {
    expect((await d.exec("id -u")).stdout).toBe("0\n");
    expect(await d.exec("echo oops >&2; exit 7", { check: false })).toMatchObject({ code: 7, stderr: "oops\n" });
    await expect(d.exec("echo broken >&2; exit 3")).rejects.toThrow(/exited 3: broken/);
    expect((await d.exec("cat", { stdin: "piped\n" })).stdout).toBe("piped\n");
  });

  it("has IP forwarding on and every IPVS scheduler available", async () => {
    expect((await d.exec("sysctl -n net.ipv4.ip_forward")).stdout.trim()).toBe("1");
    for (const [i, s] of SCHEDULERS.entries()) await ipvsadm(d, `-A -t 192.0.2.${100 + i}:80 -s ${s}`);
    await d.exec("modprobe ip_vs_pe_sip");
    const loaded = (await d.exec("lsmod")).stdout;
    for (const s of SCHEDULERS) expect(loaded).toMatch(new RegExp(`^ip_vs_${s} `, "m"));
    expect(loaded).toMatch(/^ip_vs_pe_sip /m);
    await ipvsadm(d, "-C");
  });

  it("copies files byte for byte with their mode, and runs what it copied", async () => {
    const blob = path.join(tmp, "blob");
    const data = randomBytes(1 << 20);
    fs.writeFileSync(blob, data);
    await d.copyTo(blob, "/usr/local/bin/blob", 0o600);
    const sum = createHash("sha256").update(data).digest("hex");
    expect((await d.exec("sha256sum /usr/local/bin/blob; stat -c %a /usr/local/bin/blob")).stdout).toBe(
      `${sum}  /usr/local/bin/blob\n600\n`,
    );
    const script = path.join(tmp, "hello");
    fs.writeFileSync(script, "#!/bin/sh\necho hello from $(uname -r)\n");
    await d.copyTo(script, "/tmp/hello", 0o755);
    expect((await d.exec("/tmp/hello")).stdout).toMatch(/^hello from \d+\.\d+\.\d+-\d+-amd64\n$/);
  });

  it("holds a long connection through a VIP until it is closed", async () => {
    const [rs] = await addRealServers(d, 1, { port: 8080 });
    await addVip(d, "192.0.2.50");
    await ipvsadm(d, "-A -t 192.0.2.50:80 -s rr");
    await ipvsadm(d, `-a -t 192.0.2.50:80 -r ${rs!.address}:8080 -m`);
    const established = async () =>
      (await ipvsadm(d, "-Lnc")).split("\n").filter((l) => / ESTABLISHED .* 192\.0\.2\.50:80 /.test(l)).length;
    const conn = await openLongConnection(d, "192.0.2.50", 80);
    expect(await established()).toBe(1);
    await conn.close();
    expect(await established()).toBe(0);
  });

  it("is reachable by name from another process's point of view", async () => {
    const again = await attachDirector(d.name);
    expect({ port: again.port, hostKey: again.hostKey }).toEqual({ port: d.port, hostKey: d.hostKey });
    expect((await again.exec("hostname")).stdout).toBe("director\n");
    expect(d.consoleTail()).toContain("LAB-READY");
  });

  it("does not pretend to run systemd without a persistent disk", async () => {
    expect(d.persistentDisk).toBe(false);
    expect(await d.exec("test -e /run/systemd/system", { check: false })).toMatchObject({ code: 1 });
  });
});

describe("lab director with a persistent disk", () => {
  let d: LabDirector;

  beforeAll(async () => {
    d = await startDirector({ persistentDisk: true });
  });

  afterAll(async () => {
    await d?.stop();
  });

  it("keeps /var/lib, /usr/local and enabled units across a crash-like reboot, running their ExecStart before it is ready", async () => {
    expect(d.persistentDisk).toBe(true);
    // The helper judges every path component: root-owned and not group/other-writable, or it refuses.
    expect((await d.exec("stat -c '%U:%G %a %n' /var/lib /etc/systemd/system /usr/local /run/systemd/system")).stdout).toBe(
      "root:root 755 /var/lib\nroot:root 755 /etc/systemd/system\nroot:root 755 /usr/local\nroot:root 755 /run/systemd/system\n",
    );
    // Written without fsync right before the SIGKILL: the disk is mounted sync, so nothing may be lost.
    const write = (file: string, content: string, mode = "644") =>
      d.exec(`mkdir -p "$(dirname ${file})" && cat > ${file} && chmod ${mode} ${file}`, { stdin: content });
    const unit = (execStart: string) => `[Unit]\nDescription=lab probe\n[Service]\nType=oneshot\nExecStart=${execStart}\n`;
    await write("/var/lib/pulumi-ipvs/probe", "ledger\n", "600");
    // The marker holds the boot id, so it proves the unit ran in the boot after the reboot.
    await write("/usr/local/lib/pulumi-ipvs/probe", "#!/bin/sh\ncat /proc/sys/kernel/random/boot_id > /run/lab-probe.ran\nipvsadm -A -t 192.0.2.1:80\n", "755");
    await write("/etc/systemd/system/lab-probe.service", unit("/usr/local/lib/pulumi-ipvs/probe"));
    // Sorted before lab-probe: a failing unit must not keep the next one (or the boot) from running.
    await write("/etc/systemd/system/lab-fail.service", unit("/bin/false"));
    // A daemon (Type=simple), sorted first: started detached after the one-shot units, and the boot does not wait for it.
    await write("/etc/systemd/system/lab-a-daemon.service",
      "[Unit]\nAfter=lab-probe.service\n[Service]\nType=simple\nExecStart=/bin/sh -c 'cat /proc/sys/kernel/random/boot_id > /run/lab-daemon.ran; exec sleep 3600'\n");
    // Installed but not enabled: not run.
    await write("/etc/systemd/system/lab-disabled.service", unit("/bin/touch /run/lab-disabled.ran"));
    await d.exec(
      "mkdir -p /etc/systemd/system/multi-user.target.wants && cd /etc/systemd/system/multi-user.target.wants && " +
        "ln -s ../lab-probe.service ../lab-fail.service ../lab-a-daemon.service . && ipvsadm -A -t 192.0.2.2:80",
    );
    const bootIdBefore = (await d.exec("cat /proc/sys/kernel/random/boot_id")).stdout;

    await d.reboot();

    const bootId = (await d.exec("cat /proc/sys/kernel/random/boot_id")).stdout;
    expect(bootId).not.toBe(bootIdBefore);
    expect((await d.exec("cat /var/lib/pulumi-ipvs/probe")).stdout).toBe("ledger\n");
    expect((await d.exec("cat /etc/systemd/system/lab-probe.service")).stdout).toBe(unit("/usr/local/lib/pulumi-ipvs/probe"));
    expect((await d.exec("cat /run/lab-probe.ran")).stdout).toBe(bootId);
    expect(await d.exec("test -e /run/lab-disabled.ran", { check: false })).toMatchObject({ code: 1 });
    // Only the unit's entry: the hand-made 192.0.2.2 died with the kernel.
    expect(await ipvsadmSave(d)).toBe("-A -t 192.0.2.1:80 -s wlc\n");
    const daemonPid = (await d.exec("cat /run/boot-units/lab-a-daemon.service.pid")).stdout.trim();
    expect((await d.exec("cat /var/log/boot-units.log")).stdout).toBe(
      "boot-units: lab-fail.service: /bin/false\nboot-units: lab-fail.service: exit 1\n" +
        "boot-units: lab-probe.service: /usr/local/lib/pulumi-ipvs/probe\nboot-units: lab-probe.service: exit 0\n" +
        `boot-units: lab-a-daemon.service: /bin/sh -c 'cat /proc/sys/kernel/random/boot_id > /run/lab-daemon.ran; exec sleep 3600' (started, pid ${daemonPid})\n`,
    );
    // It runs (its shell may still be about to exec sleep: waited for, 10 s at most), in this boot.
    await d.exec(`i=0; until [ "$(tr '\\0' ' ' < /proc/${daemonPid}/cmdline)" = "sleep 3600 " ]; do i=$((i+1)); [ $i -lt 100 ] || exit 1; sleep 0.1; done`);
    expect((await d.exec("cat /run/lab-daemon.ran")).stdout).toBe(bootId);
    const bootConsole = d.consoleTail(200);
    expect(bootConsole.indexOf("boot-units: lab-probe.service: exit 0")).toBeGreaterThan(-1);
    expect(bootConsole.indexOf("boot-units: lab-probe.service: exit 0")).toBeLessThan(bootConsole.indexOf("LAB-READY"));
    expect(await d.exec("test -d /run/systemd/system", { check: false })).toMatchObject({ code: 0 });
  });
});
