// FTP through a NAT VIP on a real kernel (issue 28): vsftpd in a real server namespace, tnftp in the client namespace,
// the service built by ipvs-helper. Without ip_vs_ftp the control connection logs in but every transfer fails (passive:
// the PASV answer names the real server's private address; active: the real server's data connection comes from its
// own address, which the client cannot reach). The director settings' ftp item loads the module, and both transfer
// modes work; its ports change only while no connection entry holds the module.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDirector, type LabDirector } from "../director";
import { FTP_CONTENT, ftpModulePorts, ftpModuleUsers, ftpTransfer, startFtpServers } from "../ftp";
import { addRealServers, addVip, type LabRealServer } from "../realServers";
import { apply, applyOk, destOp, HELPER, installHelper, svcOp, tcp } from "./helperLab";

const VIP = "192.0.2.10";
const OWNER = "acme/lab/ftp";
const ensureFtp = (ports: number[]) => ({ op: "ensureSettings", owner: OWNER, settings: { sysctls: {}, daemons: [], ftp: { ports } } });

describe("FTP through a NAT VIP with ip_vs_ftp", () => {
  let d: LabDirector;
  let rs: LabRealServer;

  const fetch = (mode: "passive" | "active") => ftpTransfer(d, VIP, mode);
  const ftpModule = () => ftpModulePorts(d);

  beforeAll(async () => {
    d = await startDirector();
    await installHelper(d);
    [rs] = await addRealServers(d, 1);
    await addVip(d, VIP);
    await startFtpServers(d, [rs!]);
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
      expect(r.out).toContain(FTP_CONTENT);
    }
    // The data connections went through IPVS as VIP:20 (active) and VIP:3000x (passive), to the real server.
    const conns = await d.exec("ipvsadm -Lnc");
    expect(conns.stdout).toMatch(new RegExp(`${VIP}:20 +${rs.address}:20`));
    expect(conns.stdout).toMatch(new RegExp(`${VIP}:300\\d\\d +${rs.address}:300\\d\\d`));
  });

  it("a ports change while connection entries hold the module is refused, naming the field and what to do", async () => {
    // The transfers above left their control connections in the table (TIME_WAIT, 2 minutes), each holding the module.
    expect(await ftpModuleUsers(d)).toBeGreaterThan(0);
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
