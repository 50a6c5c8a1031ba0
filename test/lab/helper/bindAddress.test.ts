// Issue 28 item 1 on a real director: bindAddress puts the VIP on the director (no hand-added address anywhere in
// this file), counted across services and stacks, found addresses left alone, keepalived's VRRP addresses refused,
// drift read back and healed, and the boot unit restores bound addresses after a reboot, along with the settings
// of a real server's host (RealServerHost) on the same machine.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDirector, type LabDirector } from "../director";
import { ipvsadm } from "../ipvsadm";
import { addRealServers, httpRequests, type LabRealServer } from "../realServers";
import { apply, applyOk, destOp, HELPER, installHelper, svcOp, tcp } from "./helperLab";

const A = "acme/lb/prod";
const B = "acme/web/prod";
const VIP = "192.0.2.10";
const IP = "/sbin/ip";

describe("bindAddress on a real director (issue 28)", () => {
  let d: LabDirector;
  let rs: LabRealServer[];

  beforeAll(async () => {
    d = await startDirector({ persistentDisk: true });
    await installHelper(d);
    rs = await addRealServers(d, 2);
  });

  afterAll(async () => {
    await d?.stop();
  });

  const addrs = async (dev: string) =>
    (await d.exec(`${IP} -o addr show dev ${dev} 2>/dev/null | awk '{print $4}' | grep -v '^fe80' || true`)).stdout.trim().split("\n").filter(Boolean);
  const linkExists = async (dev: string) => (await d.exec(`${IP} link show ${dev}`, { check: false })).code === 0;
  const natService = (vip: string, port: number, owner: string, bindAddress?: unknown) => [
    svcOp(tcp(vip, port), { scheduler: "rr" }, { owner, ...(bindAddress !== undefined ? { bindAddress } : {}) }),
    ...rs.map((s) => destOp(tcp(vip, port), { address: s.address, port: 80, forwarding: "nat" }, { owner })),
  ];
  const getService = async (vip: string, port: number) =>
    (await applyOk(d, [{ op: "getService", service: tcp(vip, port), withDests: false }]))[0]!.service;

  it("NAT through a VIP: no answer without bindAddress, answers with it; two services of two stacks share it until the last goes", async () => {
    await applyOk(d, natService(VIP, 80, A));
    expect(await httpRequests(d, VIP, 80, 2, { allowFailures: true, timeoutSeconds: 2 })).toEqual(["", ""]);
    expect(await linkExists("ipvs0")).toBe(false);

    const [bound] = await applyOk(d, natService(VIP, 80, A, true));
    expect(bound!.service.bindAddress).toEqual({ interface: "ipvs0", dummy: true, added: true });
    expect(await addrs("ipvs0")).toEqual([`${VIP}/32`]);
    expect((await httpRequests(d, VIP, 80, 4)).sort()).toEqual(["rs1", "rs1", "rs2", "rs2"]);
    expect(await getService(VIP, 80)).toMatchObject({ bindAddress: { interface: "ipvs0", dummy: true, added: true, present: true } });

    // Another stack binds the same VIP for another port; another interface for it is refused.
    await applyOk(d, natService(VIP, 8080, B, true));
    const [other] = await apply(d, [svcOp(tcp(VIP, 443), {}, { owner: B, bindAddress: { interface: "labrs0" } })]);
    expect(other).toMatchObject({ ok: false, error: { code: "BAD_REQUEST", message: expect.stringContaining("binds it on interface ipvs0") } });
    expect((await d.exec(`${HELPER} owners --json`)).stdout).toContain('"bindAddress":{"interface":"ipvs0","dummy":true,"added":true}');

    // The first service goes: the address stays for the second, which still answers.
    await applyOk(d, [{ op: "deleteService", service: tcp(VIP, 80), owner: A }]);
    expect(await addrs("ipvs0")).toEqual([`${VIP}/32`]);
    expect(await httpRequests(d, VIP, 8080, 1)).toHaveLength(1);

    // Removed by hand: read back as not present (drift); the next ensure puts it back.
    await d.exec(`${IP} addr del ${VIP}/32 dev ipvs0`);
    expect(await getService(VIP, 8080)).toMatchObject({ bindAddress: { present: false } });
    await applyOk(d, [svcOp(tcp(VIP, 8080), { scheduler: "rr" }, { owner: B, bindAddress: true })]);
    expect(await addrs("ipvs0")).toEqual([`${VIP}/32`]);

    // The last one goes: the address and ipvs0 with it; the table and the ledger are empty.
    await applyOk(d, [{ op: "deleteService", service: tcp(VIP, 8080), owner: B }]);
    expect(await linkExists("ipvs0")).toBe(false);
    expect(await ipvsadm(d, "-Sn")).toBe("");
    expect((await d.exec("ls /var/lib/pulumi-ipvs", { check: false })).code).not.toBe(0);
  });

  it("an address already there is used and left alone; on a named interface the LAN reaches the VIP", async () => {
    // The client's LAN is the director's labclient interface (10.9.0.1/24): a VIP there is answered by ARP.
    await httpRequests(d, "10.9.0.1", 1, 1, { allowFailures: true, timeoutSeconds: 1 }); // sets up the client namespace
    const lanVip = "10.9.0.100";
    await applyOk(d, natService(lanVip, 80, A, { interface: "labclient" }));
    expect(await addrs("labclient")).toContain(`${lanVip}/32`);
    expect((await httpRequests(d, lanVip, 80, 2)).sort()).toEqual(["rs1", "rs2"]);
    await applyOk(d, [{ op: "deleteService", service: tcp(lanVip, 80), owner: A }]);
    expect(await addrs("labclient")).not.toContain(`${lanVip}/32`);

    // IPv6 on the LAN: /128 without duplicate address detection (answers at once), announced by a neighbour advertisement.
    const lanVip6 = "fd00:9::100";
    const rs6 = [svcOp(tcp(lanVip6, 80), { scheduler: "rr" }, { owner: A, bindAddress: { interface: "labclient" } }),
      ...rs.map((s) => destOp(tcp(lanVip6, 80), { address: s.address6, port: 80, forwarding: "nat" }, { owner: A }))];
    await applyOk(d, rs6);
    expect(await addrs("labclient")).toContain(`${lanVip6}/128`);
    expect((await httpRequests(d, lanVip6, 80, 2)).sort()).toEqual(["rs1", "rs2"]);
    expect((await d.exec(`${HELPER} owners`)).stdout).toContain(`-A -t [${lanVip6}]:80 -s rr (address bound on labclient)`);
    await applyOk(d, [{ op: "deleteService", service: tcp(lanVip6, 80), owner: A }]);
    expect(await addrs("labclient")).not.toContain(`${lanVip6}/128`);

    // Found there (put by someone else): recorded as not added, kept after the delete.
    await d.exec(`${IP} addr add 10.9.0.101/32 dev labclient`);
    // ipvs0 cannot take it while it is on labclient.
    const [elsewhere] = await apply(d, [svcOp(tcp("10.9.0.101", 81), {}, { owner: B, bindAddress: true })]);
    expect(elsewhere).toMatchObject({ ok: false, error: { code: "BAD_REQUEST", message: expect.stringContaining("the address is already on interface labclient") } });
    const [found] = await applyOk(d, natService("10.9.0.101", 80, A, { interface: "labclient" }));
    expect(found!.service.bindAddress).toEqual({ interface: "labclient" });
    expect((await httpRequests(d, "10.9.0.101", 80, 2)).sort()).toEqual(["rs1", "rs2"]);
    await applyOk(d, [{ op: "deleteService", service: tcp("10.9.0.101", 80), owner: A }]);
    expect(await addrs("labclient")).toContain("10.9.0.101/32");
    await d.exec(`${IP} addr del 10.9.0.101/32 dev labclient`);
  });

  it("a VIP a running keepalived declares in a vrrp_instance is refused naming it", async () => {
    await d.exec(`set -e; mkdir -p /etc/keepalived /usr/local/sbin
printf 'vrrp_instance VI_LAB {\\n  interface eth0\\n  virtual_router_id 51\\n  virtual_ipaddress {\\n    192.0.2.77/32 dev eth0\\n  }\\n}\\n' > /etc/keepalived/keepalived.conf
printf '#!/bin/sh\\nwhile :; do sleep 1; done\\n' > /usr/local/sbin/keepalived; chmod 755 /usr/local/sbin/keepalived
setsid /usr/local/sbin/keepalived </dev/null >/dev/null 2>&1 &`);
    try {
      const [r] = await apply(d, [svcOp(tcp("192.0.2.77", 80), {}, { owner: A, bindAddress: true })]);
      expect(r).toMatchObject({ ok: false, error: { code: "MANAGED_ELSEWHERE" } });
      expect(r!.error!.message).toContain("virtual_ipaddress of vrrp_instance VI_LAB in /etc/keepalived/keepalived.conf");
      expect(await ipvsadm(d, "-Sn")).toBe("");
      expect(await linkExists("ipvs0")).toBe(false);
    } finally {
      // By comm: a pattern on command lines would match this shell's own.
      await d.exec(`for p in /proc/[0-9]*; do [ "$(cat $p/comm 2>/dev/null)" = keepalived ] && kill -KILL \${p#/proc/}; done; true`);
      await d.exec("rm -rf /etc/keepalived /usr/local/sbin/keepalived");
    }
  });

  // The director is also a real server's host here (a sorry server on the director, say): one machine, one ledger.
  const SORRY = "urn:pulumi:prod::lb::ipvs:index:RealServerHost::sorry";
  const TUNNELED = "urn:pulumi:prod::lb::ipvs:index:RealServerHost::tunneled";
  const DR_VIP = "192.0.2.60";
  const FOUND_VIP = "192.0.2.61";
  const TUNNEL_VIP = "192.0.2.62";
  /**
   * What RealServerHost touches on this host: the VIPs on lo and tunl0, tunl0 up, the ARP sysctls, tunl0's and all's
   * rp_filter, whether ipip is loaded. Only dumps: naming tunl0 to iproute2 (`dev tunl0`) would load ipip itself.
   */
  const hostView = async () =>
    (
      await d.exec(
        `${IP} -o -4 addr show | awk '($2 == "lo" || $2 == "tunl0") && $4 != "127.0.0.1/8" {print $2 "=" $4}' | sort; ` +
          `${IP} -o link show | awk '$2 ~ /^tunl0@/ && $3 ~ /[<,]UP[,>]/ {print "tunl0-UP"}'; ` +
          `for k in all/arp_ignore all/arp_announce all/rp_filter tunl0/rp_filter; do echo "$k=$(sysctl -n net.ipv4.conf.$(echo $k | tr / .) 2>/dev/null || echo -)"; done; ` +
          `lsmod | awk '$1 == "ipip" {f = 1} END {print f ? "ipip" : "no-ipip"}'`,
      )
    ).stdout.trim().split(/\s+/).join(" ");
  const hostOp = (op: string, holder: string, host?: object) => ({ op, owner: A, holder, ...(host ? { host } : {}) });
  // A sorry page on the director itself, on every address (the real server's service).
  const serveSorry = () =>
    d.exec(`mkdir -p /run/lab/sorry && echo sorry > /run/lab/sorry/index.html && busybox httpd -p 8060 -h /run/lab/sorry`);

  it("boot restores bound addresses before the entries, and real server host settings (VIPs, sysctls, ipip), after a reboot", async () => {
    await applyOk(d, natService(VIP, 80, A, true));
    // The client reaches the director by its default route, so a packet to a VIP arrives at the director's MAC
    // unchanged, as a DR director forwards it: without the VIP on lo the host does not take it.
    await serveSorry();
    expect(await httpRequests(d, DR_VIP, 8060, 1, { allowFailures: true, timeoutSeconds: 2 })).toEqual([""]);
    const before = await hostView();
    expect(before).toMatch(/^all\/arp_ignore=0 all\/arp_announce=0 all\/rp_filter=\d tunl0\/rp_filter=- no-ipip$/);
    // FOUND_VIP is the user's (on lo before any stack); the director keeps no hand-added address over a reboot.
    await d.exec(`${IP} addr add ${FOUND_VIP}/32 dev lo`);
    await applyOk(d, [
      hostOp("ensureHost", SORRY, { forwarding: "dr", vips: [DR_VIP, FOUND_VIP] }),
      hostOp("ensureHost", TUNNELED, { forwarding: "tunnel", tunnel: { type: "ipip" }, vips: [TUNNEL_VIP] }),
    ]);
    const prepared = await hostView();
    expect(prepared).toMatch(
      new RegExp(`^lo=${DR_VIP}/32 lo=${FOUND_VIP}/32 tunl0=${TUNNEL_VIP}/32 tunl0-UP all/arp_ignore=1 all/arp_announce=2 all/rp_filter=[02] tunl0/rp_filter=0 ipip$`),
    );
    expect((await httpRequests(d, DR_VIP, 8060, 1))).toEqual(["sorry"]);

    await d.reboot();
    expect(await addrs("ipvs0")).toEqual([`${VIP}/32`]);
    expect(await ipvsadm(d, "-Sn")).toContain(`-A -t ${VIP}:80 -s rr`);
    const bootLog = (await d.exec("cat /var/log/boot-units.log")).stdout;
    expect(bootLog).toContain("pulumi-ipvs.service: exit 0");
    expect(bootLog).not.toContain("failed");
    // The host is prepared again before anyone asks: the same view as before the reboot, the found VIP included.
    expect(await hostView()).toBe(prepared);
    // The real servers' namespaces did not survive the reboot: new ones at the same addresses answer through the VIP.
    rs = await addRealServers(d, 2);
    expect((await httpRequests(d, VIP, 80, 2)).sort()).toEqual(["rs1", "rs2"]);
    // DR traffic reaches the sorry page again; so does ipip traffic: the client encapsulates to the director, which
    // decapsulates on tunl0 and answers directly (the client's own reverse-path check is lab routing, switched off).
    await serveSorry();
    expect(await httpRequests(d, DR_VIP, 8060, 1)).toEqual(["sorry"]);
    await d.exec(`set -e; ${IP} -n labclient tunnel add labipip mode ipip local 10.9.0.2 remote 10.9.0.1
${IP} -n labclient link set labipip up; ${IP} -n labclient route add ${TUNNEL_VIP}/32 dev labipip
${IP} netns exec labclient sh -c 'for f in /proc/sys/net/ipv4/conf/*/rp_filter; do echo 0 > $f; done'`);
    try {
      expect(await httpRequests(d, TUNNEL_VIP, 8060, 1)).toEqual(["sorry"]);
    } finally {
      await d.exec(`${IP} -n labclient link del labipip`); // it holds the ipip module, which the last delete unloads
      await d.killByCmdline("'busybox httpd -p 8060 '*");
    }

    // The host records go first: the boot unit stays for the bound service; the found VIP stays on lo, the rest is
    // as before. The service goes last, and the boot unit with it.
    await applyOk(d, [hostOp("deleteHost", SORRY), hostOp("deleteHost", TUNNELED)]);
    expect(await hostView()).toBe(before.replace(/^/, `lo=${FOUND_VIP}/32 `));
    await d.exec("test -L /etc/systemd/system/multi-user.target.wants/pulumi-ipvs.service");
    await d.exec(`${IP} addr del ${FOUND_VIP}/32 dev lo`);
    await applyOk(d, [{ op: "deleteService", service: tcp(VIP, 80), owner: A }]);
    expect(await linkExists("ipvs0")).toBe(false);
    expect((await d.exec("ls /etc/systemd/system/pulumi-ipvs.service /var/lib/pulumi-ipvs", { check: false })).code).not.toBe(0);
  });
});
