// FTP through a NAT VIP on a real kernel (issue 28): vsftpd in a real server namespace, tnftp in the client namespace,
// the service built by ipvs-helper. Without ip_vs_ftp the control connection logs in but every transfer fails (passive:
// the PASV answer names the real server's private address; active: the real server's data connection comes from its
// own address, which the client cannot reach). The director settings' ftp item loads the module, and both transfer
// modes work; its ports change only while no connection entry holds the module.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDirector, type LabDirector } from "../director";
import { addRealServers, addVip, inClient, type LabRealServer } from "../realServers";
import { apply, applyOk, destOp, HELPER, installHelper, svcOp, tcp } from "./helperLab";

const VIP = "192.0.2.10";
const OWNER = "acme/lab/ftp";
const ROOT = "/run/lab/ftp";
const ensureFtp = (ports: number[]) => ({ op: "ensureSettings", owner: OWNER, settings: { sysctls: {}, daemons: [], ftp: { ports } } });

// Anonymous, read-only, passive data ports 30000..30010; connect_timeout bounds an active data connection that cannot
// be made. vsftpd's anonymous user needs a home: the lab image has no "ftp" user, so one is added with ROOT as home.
const VSFTPD_CONF = `listen=YES
background=YES
anonymous_enable=YES
no_anon_password=YES
anon_root=${ROOT}
local_enable=NO
write_enable=NO
secure_chroot_dir=/run/vsftpd/empty
nopriv_user=nobody
seccomp_sandbox=NO
pasv_min_port=30000
pasv_max_port=30010
connect_from_port_20=YES
connect_timeout=5
data_connection_timeout=5`;

describe("FTP through a NAT VIP with ip_vs_ftp", () => {
  let d: LabDirector;
  let rs: LabRealServer;

  /** One transfer through the VIP: "passive" (tnftp -p) or "active" (tnftp -A); the file's content, or "" on failure. */
  async function fetch(mode: "passive" | "active"): Promise<{ ok: boolean; out: string }> {
    const flag = mode === "passive" ? "-p" : "-A";
    const r = await inClient(d, `rm -f /tmp/ftp.out; timeout 20 tnftp ${flag} -V -o /tmp/ftp.out ftp://${VIP}:21/file.txt 2>&1; echo "rc=$?"; cat /tmp/ftp.out 2>/dev/null`, { check: false, timeoutMs: 40_000 });
    return { ok: r.stdout.includes("rc=0\n"), out: r.stdout };
  }
  const ftpModule = async () => (await d.exec("cat /sys/module/ip_vs_ftp/parameters/ports 2>/dev/null || echo none")).stdout.trim();

  beforeAll(async () => {
    d = await startDirector();
    await installHelper(d);
    [rs] = await addRealServers(d, 1);
    await addVip(d, VIP);
    await d.exec(`set -e
mkdir -p ${ROOT} /run/vsftpd/empty
printf hello-ftp > ${ROOT}/file.txt
grep -q '^ftp:' /etc/passwd || echo 'ftp:x:64000:64000:ftp:${ROOT}:/usr/sbin/nologin' >> /etc/passwd
cat > /run/lab/vsftpd.conf <<'CONF'
${VSFTPD_CONF}
CONF
ip netns exec ${rs!.name} vsftpd /run/lab/vsftpd.conf
i=0; until ip netns exec ${rs!.name} netstat -ltn | grep -q ':21 '; do i=$((i+1)); [ $i -lt 100 ] || exit 1; sleep 0.1; done`);
    // As on the internet, the client knows only the VIP: the real servers' network is private behind the NAT director.
    await inClient(d, "ip route add blackhole 10.10.0.0/24");
    await applyOk(d, [svcOp(tcp(VIP, 21), { scheduler: "rr" }), destOp(tcp(VIP, 21), { address: rs!.address, port: 21, forwarding: "nat" })]);
  }, 300_000);

  afterAll(async () => {
    await d?.stop();
  });

  it("without ip_vs_ftp the client logs in, but passive and active transfers fail", async () => {
    expect(await ftpModule()).toBe("none");
    const passive = await fetch("passive");
    const active = await fetch("active");
    expect(passive.ok, passive.out).toBe(false);
    expect(active.ok, active.out).toBe(false);
    for (const r of [passive, active]) expect(r.out).not.toContain("Login failed");
    // Passive: the data port the server opened is not a service of the VIP.
    expect(passive.out).toMatch(new RegExp(`Can't connect to .${VIP.replaceAll(".", "\\.")}:300\\d\\d'`));
  });

  it("ftp loads ip_vs_ftp with its ports, reloads it for other ports while unused, boot loads it again, deleteSettings unloads it", async () => {
    let [r] = await applyOk(d, [ensureFtp([2121])]);
    expect(r!.changed).toBe(true);
    expect(r!.settings.ftp).toEqual({ ports: [2121] });
    expect(await ftpModule()).toBe("2121");
    [r] = await applyOk(d, [ensureFtp([21, 2121])]);
    expect(r!.changed).toBe(true);
    expect(await ftpModule()).toBe("21,2121");
    [r] = await applyOk(d, [{ op: "getSettings", sysctls: [] }]);
    expect(r!.settings.ftp).toEqual({ ports: [21, 2121] });
    expect(r!.owner).toBe(OWNER);
    // After a reboot the module is not loaded: boot loads it again from the ledger's record.
    await d.exec("rmmod ip_vs_ftp");
    expect((await d.exec(`${HELPER} boot`)).stdout).toContain(`set ip_vs_ftp ports 21,2121 (stack ${OWNER})`);
    expect(await ftpModule()).toBe("21,2121");
    [r] = await applyOk(d, [{ op: "deleteSettings", owner: OWNER }]);
    expect(r!.changed).toBe(true);
    expect(await ftpModule()).toBe("none");
    [r] = await applyOk(d, [{ op: "getSettings", sysctls: [] }]);
    expect(r!.settings).not.toHaveProperty("ftp");
  });

  it("with ftp { ports: [21] } passive and active transfers through the VIP work", async () => {
    await applyOk(d, [ensureFtp([21])]);
    expect(await ftpModule()).toBe("21");
    for (const mode of ["passive", "active"] as const) {
      const r = await fetch(mode);
      expect(r.ok, `${mode}: ${r.out}`).toBe(true);
      expect(r.out).toContain("hello-ftp");
    }
    // The data connections went through IPVS as VIP:20 (active) and VIP:3000x (passive), to the real server.
    const conns = await d.exec("ipvsadm -Lnc");
    expect(conns.stdout).toMatch(new RegExp(`${VIP}:20 +${rs.address}:20`));
    expect(conns.stdout).toMatch(new RegExp(`${VIP}:300\\d\\d +${rs.address}:300\\d\\d`));
  });

  it("a ports change while connection entries hold the module is refused, naming the field and what to do", async () => {
    // The transfers above left their control connections in the table (TIME_WAIT, 2 minutes), each holding the module.
    expect(Number((await d.exec("cat /sys/module/ip_vs_ftp/refcnt")).stdout)).toBeGreaterThan(0);
    const [r] = await apply(d, [ensureFtp([21, 2121])]);
    expect(r!.ok).toBe(false);
    expect(r!.error!.code).toBe("INVALID");
    expect(r!.error!.message).toMatch(/^ftp\.ports changed: going from ip_vs_ftp ports 21 to ip_vs_ftp ports 21,2121 needs ip_vs_ftp unloaded, and \d+ connection\(s\) use it now/);
    expect(r!.error!.message).toContain("Retry once those connections have ended, or keep ftp.ports as it was.");
    expect(await ftpModule()).toBe("21");
    // Still served, and still recorded as the stack's ports 21.
    expect((await fetch("passive")).ok).toBe(true);
    const [g] = await applyOk(d, [{ op: "getSettings", sysctls: [] }]);
    expect(g!.settings.ftp).toEqual({ ports: [21] });
  });
});
