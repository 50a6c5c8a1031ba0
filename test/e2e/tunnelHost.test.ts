// examples/tunnel, RealServerHost with tunnel forwarding (ipip, then gre), through the real pulumi CLI against a lab
// director: the VIP bound on the director (bindAddress), real servers reached by IP-in-IP, then by GRE. Real HTTP
// through the VIP fails while the real server hosts are not prepared and works once RealServerHost loads the module
// (ipip, ip_gre), brings its device (tunl0, gre0) up with the VIP and relaxes rp_filter there; dropping or destroying
// the preparation puts each host back (no address on the device, sysctls as found, the module unloaded again).
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDirector, type LabDirector } from "../lab/director";
import { ipvsadmSave } from "../lab/ipvsadm";
import { addRealServers, httpRequests, serveSsh, type LabRealServer } from "../lab/realServers";
import { E2EStack, repoRoot, labDirectorConfig } from "./harness";

const VIP = "192.0.2.30";
const IP = "/sbin/ip";
const SYSCTLS = ["arp_ignore", "arp_announce", "rp_filter"];
const DEVICES = ["tunl0", "gre0"];
const MODULES = ["ipip", "ip_gre"];

describe("RealServerHost tunnel (ipip, gre) through the pulumi CLI against a lab director", () => {
  let d: LabDirector;
  let servers: LabRealServer[];
  let stack: E2EStack;
  const before = new Map<string, string>();

  /**
   * What RealServerHost touches in a namespace: for tunl0 and gre0 their IPv4 addresses, UP, rp_filter ("-": no such
   * device); all's ARP and rp_filter sysctls; and which tunnel modules are loaded. Only dumps: naming a device to
   * iproute2 (`dev gre0`) would load its module itself (the kernel's netdev-gre0 alias).
   */
  const view = async (s: LabRealServer) =>
    (
      await d.exec(
        `for dev in ${DEVICES.join(" ")}; do echo "$dev:"; ${IP} -n ${s.name} -o -4 addr show | awk -v d=$dev '$2 == d {print $4}'; ` +
          `${IP} -n ${s.name} -o link show | awk -v d=$dev 'index($2, d "@") == 1 && $3 ~ /[<,]UP[,>]/ {print "UP"}'; ` +
          `${IP} netns exec ${s.name} cat /proc/sys/net/ipv4/conf/$dev/rp_filter 2>/dev/null || echo -; done; echo all:; ` +
          `for k in ${SYSCTLS.join(" ")}; do ${IP} netns exec ${s.name} cat /proc/sys/net/ipv4/conf/all/$k; done; ` +
          `for m in ${MODULES.join(" ")}; do [ -d /sys/module/$m ] && echo $m; done; true`,
      )
    ).stdout
      .trim()
      .split(/\s+/)
      .join(" ");

  beforeAll(async () => {
    d = await startDirector();
    servers = await addRealServers(d, 2);
    await serveSsh(d, servers);
    // Replies leave the real servers with the VIP as source through the director, which holds the VIP too: lab
    // routing, not real-server preparation. A strict all.rp_filter in the real servers shows it loosened and put back.
    await d.exec(`for f in /proc/sys/net/ipv4/conf/*/accept_local; do echo 1 > $f; done
for f in /proc/sys/net/ipv4/conf/*/rp_filter; do echo 0 > $f; done
${servers.map((s) => `${IP} netns exec ${s.name} sh -c 'echo 1 > /proc/sys/net/ipv4/conf/all/rp_filter'`).join("\n")}`);
    for (const s of servers) before.set(s.name, await view(s));
    stack = await E2EStack.create({
      program: path.join(repoRoot, "examples/tunnel"),
      config: {
        director: `${d.host}:${d.port}`,
        user: d.user,
        privateKey: labDirectorConfig(d).privateKey,
        hostKey: d.hostKey,
        // The real servers' sshd runs in their namespaces of the director VM, with the VM's host key.
        realServerHostKey: d.hostKey,
        viaDirector: "true",
        vip: VIP,
        backends: JSON.stringify(servers.map((s) => s.address)),
        prepareRealServers: "false",
      },
    });
  });

  afterAll(async () => {
    await stack?.dispose();
    await d?.stop();
  });

  it("without RealServerHost the ipip service carries no traffic; with it, both real servers answer", async () => {
    await stack.up();
    expect(await ipvsadmSave(d)).toContain(`-a -t ${VIP}:80 -r ${servers[0]!.address}:80 -i`);
    expect(await httpRequests(d, VIP, 80, 2, { allowFailures: true, timeoutSeconds: 2 })).toEqual(["", ""]);

    await stack.setConfig("prepareRealServers", "true");
    await stack.up();
    for (const s of servers) expect(await view(s)).toBe(`tunl0: ${VIP}/32 UP 0 gre0: - all: 1 2 2 ipip`);
    expect((await httpRequests(d, VIP, 80, 4)).sort()).toEqual(["rs1", "rs1", "rs2", "rs2"]);
  });

  it("switched to gre: the ipip preparation put back, no traffic without RealServerHost; with it, both answer", async () => {
    await stack.setConfig("tunnelType", "gre");
    await stack.setConfig("prepareRealServers", "false");
    await stack.up();
    expect(await ipvsadmSave(d)).toContain(`-a -t ${VIP}:80 -r ${servers[0]!.address}:80 -i -w 1 --tun-type gre --tun-nocsum`);
    for (const s of servers) expect(await view(s)).toBe(before.get(s.name));
    expect(await httpRequests(d, VIP, 80, 2, { allowFailures: true, timeoutSeconds: 2 })).toEqual(["", ""]);

    await stack.setConfig("prepareRealServers", "true");
    await stack.up();
    for (const s of servers) expect(await view(s)).toBe(`tunl0: - gre0: ${VIP}/32 UP 0 all: 1 2 2 ip_gre`);
    expect((await httpRequests(d, VIP, 80, 4)).sort()).toEqual(["rs1", "rs1", "rs2", "rs2"]);
  });

  it("destroy puts every real server host back: no VIP, sysctls as found, ip_gre unloaded again", async () => {
    await stack.destroy();
    expect((await ipvsadmSave(d)).trim()).toBe("");
    for (const s of servers) expect(await view(s)).toBe(before.get(s.name));
    expect(before.get(servers[0]!.name)).toBe("tunl0: - gre0: - all: 0 0 1");
  });
});
