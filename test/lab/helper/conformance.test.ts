// Conformance of ipvs-helper with the real ipvsadm in a real kernel: for every feature, the table built by ipvsadm
// commands and the table built by the equivalent helper operations read back identically through ipvsadm itself
// (-Sn, and the listings that show what -Sn leaves out: thresholds, tunnel info, timeouts, daemons).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDirector, type LabDirector } from "../director";
import { ipvsadm } from "../ipvsadm";
import { applyOk, destOp, fwmark, helperSave, installHelper, ipvsadmAll, sctp, svcOp, tcp, udp } from "./helperLab";

interface Case {
  name: string;
  ipvsadm: string[];
  ops: object[];
  /** ipvsadm listings compared besides -Sn. */
  views?: string[];
}

const SCHEDULERS = ["rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh"];
const V6 = "2001:db8::10";

const cases: Case[] = [
  {
    name: "TCP IPv4 service with NAT, DR-on-fwmark and weight-0 real servers",
    ipvsadm: ["-A -t 192.0.2.10:80 -s rr", "-a -t 192.0.2.10:80 -r 10.10.0.11:8080 -m -w 3", "-a -t 192.0.2.10:80 -r 10.10.0.12:8080 -m -w 0"],
    ops: [svcOp(tcp("192.0.2.10", 80), { scheduler: "rr" }), destOp(tcp("192.0.2.10", 80), { address: "10.10.0.11", port: 8080, forwarding: "nat", weight: 3 }),
      destOp(tcp("192.0.2.10", 80), { address: "10.10.0.12", port: 8080, forwarding: "nat", weight: 0 })],
  },
  {
    name: "UDP IPv6 service with IPv6 real servers (nat and dr)",
    ipvsadm: [`-A -u [${V6}]:53 -s wrr`, `-a -u [${V6}]:53 -r [fd00:10::11]:5353 -m -w 2`, `-a -u [${V6}]:53 -r [fd00:10::12]:53 -g -w 5`],
    ops: [svcOp(udp(V6, 53), { scheduler: "wrr" }), destOp(udp(V6, 53), { address: "fd00:10::11", port: 5353, forwarding: "nat", weight: 2 }),
      destOp(udp(V6, 53), { address: "fd00:10::12", port: 53, forwarding: "dr", weight: 5 })],
  },
  {
    name: "SCTP IPv4 and IPv6 services",
    ipvsadm: ["-A --sctp-service 192.0.2.11:3868 -s lc", "-a --sctp-service 192.0.2.11:3868 -r 10.10.0.11 -g", `-A --sctp-service [${V6}]:3868 -s sed`],
    ops: [svcOp(sctp("192.0.2.11", 3868), { scheduler: "lc" }), destOp(sctp("192.0.2.11", 3868), { address: "10.10.0.11", port: 3868 }),
      svcOp(sctp(V6, 3868), { scheduler: "sed" })],
  },
  {
    name: "firewall-mark services, IPv4 and IPv6, with portless DR real servers",
    ipvsadm: ["-A -f 1 -s wlc", "-a -f 1 -r 10.10.0.11:0 -g -w 1", "-A -f 2 -6 -s nq", "-a -f 2 -6 -r [fd00:10::11]:0 -g -w 4"],
    ops: [svcOp(fwmark(1)), destOp(fwmark(1), { address: "10.10.0.11", port: 0 }), svcOp(fwmark(2, "ipv6"), { scheduler: "nq" }),
      destOp(fwmark(2, "ipv6"), { address: "fd00:10::11", port: 0, weight: 4 })],
  },
  {
    name: "every scheduler ipvsadm knows",
    ipvsadm: SCHEDULERS.map((s, i) => `-A -t 192.0.2.20:${1000 + i} -s ${s}`),
    ops: SCHEDULERS.map((s, i) => svcOp(tcp("192.0.2.20", 1000 + i), { scheduler: s })),
  },
  {
    name: "every scheduler flag",
    ipvsadm: ["-A -t 192.0.2.21:1 -s sh -b sh-fallback,sh-port", "-A -t 192.0.2.21:2 -s sh -b sh-port", "-A -t 192.0.2.21:3 -s mh -b mh-fallback,mh-port",
      "-A -t 192.0.2.21:4 -s mh -b mh-fallback", "-A -t 192.0.2.21:5 -s rr -b flag-1,flag-2,flag-3", "-A -t 192.0.2.21:6 -s wlc -b flag-2", "-A -t 192.0.2.21:7 -s sh -b flag-3"],
    ops: [svcOp(tcp("192.0.2.21", 1), { scheduler: "sh", schedulerFlags: ["sh-fallback", "sh-port"] }), svcOp(tcp("192.0.2.21", 2), { scheduler: "sh", schedulerFlags: ["sh-port"] }),
      svcOp(tcp("192.0.2.21", 3), { scheduler: "mh", schedulerFlags: ["mh-fallback", "mh-port"] }), svcOp(tcp("192.0.2.21", 4), { scheduler: "mh", schedulerFlags: ["mh-fallback"] }),
      svcOp(tcp("192.0.2.21", 5), { scheduler: "rr", schedulerFlags: ["flag-1", "flag-2", "flag-3"] }), svcOp(tcp("192.0.2.21", 6), { scheduler: "wlc", schedulerFlags: ["flag-2"] }),
      svcOp(tcp("192.0.2.21", 7), { scheduler: "sh", schedulerFlags: ["flag-3"] })],
  },
  {
    name: "persistence with timeout, IPv4 netmask, IPv6 prefix, port 0, and the sip engine",
    ipvsadm: ["-A -t 192.0.2.30:443 -s wlc -p 600 -M 255.255.255.0", "-A -t 192.0.2.30:0 -s rr -p", `-A -t [${V6}]:443 -s rr -p 60 -M 64`,
      "-A -u 192.0.2.30:5060 -s rr -p 120 --pe sip", "-A -f 9 -s wlc -p 30 -M 255.255.0.0"],
    ops: [svcOp(tcp("192.0.2.30", 443), { persistence: { timeout: 600, netmask: "255.255.255.0" } }), svcOp(tcp("192.0.2.30", 0), { scheduler: "rr", persistence: {} }),
      svcOp(tcp(V6, 443), { scheduler: "rr", persistence: { timeout: 60, netmask: "64" } }),
      svcOp(udp("192.0.2.30", 5060), { scheduler: "rr", persistence: { timeout: 120 }, persistenceEngine: "sip" }),
      svcOp(fwmark(9), { persistence: { timeout: 30, netmask: "255.255.0.0" } })],
  },
  {
    name: "one-packet scheduling on UDP and fwmark services",
    ipvsadm: ["-A -u 192.0.2.31:53 -s rr -o", "-A -f 10 -s rr -o", `-A -u [${V6}]:123 -s sh -o -b sh-port`],
    ops: [svcOp(udp("192.0.2.31", 53), { scheduler: "rr", onePacket: true }), svcOp(fwmark(10), { scheduler: "rr", onePacket: true }),
      svcOp(udp(V6, 123), { scheduler: "sh", onePacket: true, schedulerFlags: ["sh-port"] })],
  },
  {
    name: "upper and lower connection thresholds",
    ipvsadm: ["-A -t 192.0.2.32:80 -s wlc", "-a -t 192.0.2.32:80 -r 10.10.0.11:80 -m -x 1000 -y 100", "-a -t 192.0.2.32:80 -r 10.10.0.12:80 -m -x 5",
      "-a -t 192.0.2.32:80 -r 10.10.0.13:80 -m -x 2147483647 -y 2147483647"],
    ops: [svcOp(tcp("192.0.2.32", 80)), destOp(tcp("192.0.2.32", 80), { address: "10.10.0.11", port: 80, forwarding: "nat", upperThreshold: 1000, lowerThreshold: 100 }),
      destOp(tcp("192.0.2.32", 80), { address: "10.10.0.12", port: 80, forwarding: "nat", upperThreshold: 5 }),
      destOp(tcp("192.0.2.32", 80), { address: "10.10.0.13", port: 80, forwarding: "nat", upperThreshold: 2147483647, lowerThreshold: 2147483647 })],
    views: ["-Ln --thresholds"],
  },
  {
    name: "tunnels: ipip, gue with port and each checksum mode, gre with and without checksum",
    ipvsadm: ["-A -t 192.0.2.40:80 -s rr", "-a -t 192.0.2.40:80 -r 10.20.0.1 -i", "-a -t 192.0.2.40:80 -r 10.20.0.2 -i --tun-type gue --tun-port 6080",
      "-a -t 192.0.2.40:80 -r 10.20.0.3 -i --tun-type gue --tun-port 6081 --tun-csum", "-a -t 192.0.2.40:80 -r 10.20.0.4 -i --tun-type gue --tun-port 65535 --tun-remcsum",
      "-a -t 192.0.2.40:80 -r 10.20.0.5 -i --tun-type gre", "-a -t 192.0.2.40:80 -r 10.20.0.6 -i --tun-type gre --tun-csum -w 7"],
    ops: [svcOp(tcp("192.0.2.40", 80), { scheduler: "rr" }),
      destOp(tcp("192.0.2.40", 80), { address: "10.20.0.1", forwarding: "tunnel" }),
      destOp(tcp("192.0.2.40", 80), { address: "10.20.0.2", forwarding: "tunnel", tunnel: { type: "gue", port: 6080 } }),
      destOp(tcp("192.0.2.40", 80), { address: "10.20.0.3", forwarding: "tunnel", tunnel: { type: "gue", port: 6081, checksum: "csum" } }),
      destOp(tcp("192.0.2.40", 80), { address: "10.20.0.4", forwarding: "tunnel", tunnel: { type: "gue", port: 65535, checksum: "remcsum" } }),
      destOp(tcp("192.0.2.40", 80), { address: "10.20.0.5", forwarding: "tunnel", tunnel: { type: "gre", checksum: "nocsum" } }),
      destOp(tcp("192.0.2.40", 80), { address: "10.20.0.6", forwarding: "tunnel", weight: 7, tunnel: { type: "gre", checksum: "csum" } })],
    views: ["-Ln --tun-info"],
  },
  {
    name: "mixed-family tunnel real servers (IPv4 behind IPv6 and IPv6 behind IPv4)",
    ipvsadm: [`-A -t [${V6}]:80 -s rr`, `-a -t [${V6}]:80 -r 10.20.0.1 -i`, `-a -t [${V6}]:80 -r 10.20.0.2 -i --tun-type gue --tun-port 7000 --tun-csum`,
      "-A -f 11 -s rr", "-a -f 11 -r [fd00:20::1]:0 -i --tun-type gre", "-a -f 11 -r 10.20.0.1:0 -i"],
    ops: [svcOp(tcp(V6, 80), { scheduler: "rr" }), destOp(tcp(V6, 80), { address: "10.20.0.1", forwarding: "tunnel" }),
      destOp(tcp(V6, 80), { address: "10.20.0.2", forwarding: "tunnel", tunnel: { type: "gue", port: 7000, checksum: "csum" } }),
      svcOp(fwmark(11), { scheduler: "rr" }), destOp(fwmark(11), { address: "fd00:20::1", port: 0, forwarding: "tunnel", tunnel: { type: "gre" } }),
      destOp(fwmark(11), { address: "10.20.0.1", port: 0, forwarding: "tunnel" })],
    views: ["-Ln --tun-info"],
  },
  {
    name: "many services and real servers in ipvsadm's (wrapping) sort order",
    ipvsadm: ["-A -t 10.0.0.1:80", "-A -t 192.168.0.1:80", "-A -t 172.16.0.1:80", "-A -t 10.0.0.1:8", "-A -u 10.0.0.1:80", "-A -f 4294967295", "-A -f 3", `-A -t [${V6}]:1`, "-A -t [::1]:1",
      ...["10.1.0.1", "192.168.1.1", "10.1.0.2", "172.16.1.1"].map((a) => `-a -t 10.0.0.1:80 -r ${a}:80 -m`)],
    ops: [svcOp(tcp("10.0.0.1", 80)), svcOp(tcp("192.168.0.1", 80)), svcOp(tcp("172.16.0.1", 80)), svcOp(tcp("10.0.0.1", 8)), svcOp(udp("10.0.0.1", 80)),
      svcOp(fwmark(4294967295)), svcOp(fwmark(3)), svcOp(tcp(V6, 1)), svcOp(tcp("::1", 1)),
      ...["10.1.0.1", "192.168.1.1", "10.1.0.2", "172.16.1.1"].map((a) => destOp(tcp("10.0.0.1", 80), { address: a, port: 80, forwarding: "nat" }))],
  },
];

async function reset(d: LabDirector): Promise<void> {
  await d.exec("ipvsadm -C; ipvsadm --stop-daemon master 2>/dev/null; ipvsadm --stop-daemon backup 2>/dev/null; ipvsadm --set 900 120 300; true");
}

async function views(d: LabDirector, extra: string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = { "-Sn": await ipvsadm(d, "-Sn") };
  for (const v of extra) out[v] = await ipvsadm(d, v);
  return out;
}

describe("ipvs-helper builds the same table as ipvsadm", () => {
  let d: LabDirector;

  beforeAll(async () => {
    d = await startDirector();
    await installHelper(d);
  });

  afterAll(async () => {
    await d?.stop();
  });

  for (const c of cases) {
    it(c.name, async () => {
      await reset(d);
      await ipvsadmAll(d, c.ipvsadm);
      const byIpvsadm = await views(d, c.views ?? []);
      expect(byIpvsadm["-Sn"]!.split("\n").length).toBeGreaterThan(c.ipvsadm.filter((l) => l.startsWith("-A")).length);
      // The helper's own save reads ipvsadm's table exactly as ipvsadm prints it.
      expect(await helperSave(d)).toBe(byIpvsadm["-Sn"]);
      await reset(d);
      const results = await applyOk(d, c.ops);
      expect(results.every((r) => r.changed === true && r.created === true)).toBe(true);
      expect(await views(d, c.views ?? [])).toEqual(byIpvsadm);
      // Applying the same request again changes nothing.
      const again = await applyOk(d, c.ops);
      expect(again.map((r) => r.changed)).toEqual(c.ops.map(() => false));
      expect(await ipvsadm(d, "-Sn")).toBe(byIpvsadm["-Sn"]);
    });
  }

  it("connection timeouts, as ipvsadm --set shows them", async () => {
    await reset(d);
    await ipvsadm(d, "--set 100 20 50");
    const want = await ipvsadm(d, "-Ln --timeout");
    await reset(d);
    const [r] = await applyOk(d, [{ op: "setTimeouts", tcp: 100, tcpfin: 20, udp: 50 }]);
    expect(r!.changed).toBe(true);
    expect(r!.timeouts).toEqual({ tcp: 100, tcpfin: 20, udp: 50 });
    expect(await ipvsadm(d, "-Ln --timeout")).toBe(want);
    // Only the given timeout changes; the others stay.
    const [partial, same, read] = await applyOk(d, [{ op: "setTimeouts", udp: 77 }, { op: "setTimeouts", udp: 77 }, { op: "getTimeouts" }]);
    expect(partial!.changed).toBe(true);
    expect(same!.changed).toBe(false);
    expect(read!.timeouts).toEqual({ tcp: 100, tcpfin: 20, udp: 77 });
    expect(await ipvsadm(d, "-Ln --timeout")).toBe("Timeout (tcp tcpfin udp): 100 20 77\n");
    await reset(d);
  });

  it("sync daemons, master with IPv4 group and backup with IPv6 group, as ipvsadm --daemon shows them", async () => {
    await reset(d);
    await d.exec("/sbin/ip link add labsync0 type dummy 2>/dev/null; /sbin/ip link set labsync0 multicast on up");
    await ipvsadm(d, "--start-daemon master --mcast-interface labsync0 --syncid 5 --sync-maxlen 1000 --mcast-group 239.1.1.1 --mcast-port 8850 --mcast-ttl 2");
    await ipvsadm(d, "--start-daemon backup --mcast-interface labsync0 --syncid 6 --mcast-group ff02::81 --mcast-port 8851");
    const want = await ipvsadm(d, "-Ln --daemon");
    expect(want).toContain("master sync daemon");
    await reset(d);
    const master = { state: "master", interface: "labsync0", syncId: 5, maxLen: 1000, group: "239.1.1.1", port: 8850, ttl: 2 };
    const backup = { state: "backup", interface: "labsync0", syncId: 6, group: "ff02::81", port: 8851 };
    const results = await applyOk(d, [{ op: "ensureDaemon", daemon: master }, { op: "ensureDaemon", daemon: backup }]);
    expect(results.map((r) => r.changed)).toEqual([true, true]);
    expect(await ipvsadm(d, "-Ln --daemon")).toBe(want);
    const [again, list] = await applyOk(d, [{ op: "ensureDaemon", daemon: master }, { op: "getDaemons" }]);
    expect(again!.changed).toBe(false);
    expect(list!.daemons).toEqual(expect.arrayContaining([expect.objectContaining(master), expect.objectContaining(backup)]));
    // A changed setting restarts that daemon with the new one.
    const [changed] = await applyOk(d, [{ op: "ensureDaemon", daemon: { ...master, syncId: 7 } }]);
    expect(changed!.changed).toBe(true);
    expect(await ipvsadm(d, "-Ln --daemon")).toContain("syncid=7");
    const [stopped, stoppedAgain] = await applyOk(d, [{ op: "deleteDaemon", state: "master" }, { op: "deleteDaemon", state: "master" }]);
    expect([stopped!.changed, stoppedAgain!.changed]).toEqual([true, false]);
    expect(await ipvsadm(d, "-Ln --daemon")).not.toContain("master");
    await reset(d);
  });

  it("info reports what ipvsadm's header shows", async () => {
    const header = (await ipvsadm(d, "-Ln")).split("\n")[0]!;
    const [r] = await applyOk(d, [{ op: "info" }]);
    expect(header).toBe(`IP Virtual Server version ${r!.info.version} (size=${r!.info.connTableSize})`);
    const v = JSON.parse((await d.exec("ipvs-helper version")).stdout);
    expect(v).toEqual({ helper: expect.stringMatching(/^\d+\.\d+\.\d+/), protocol: 1, kernel: r!.info.version });
  });

  it("dump lists services and real servers in ipvsadm's order with settings and counters", async () => {
    await reset(d);
    await ipvsadmAll(d, cases[11]!.ipvsadm);
    await ipvsadmAll(d, ["-a -f 3 -r 10.20.0.1:0 -i --tun-type gue --tun-port 6080 --tun-remcsum -w 9 -x 10 -y 3", "-E -f 3 -s mh -b mh-port -p 40"]);
    const [r] = await applyOk(d, [{ op: "dump" }]);
    const keys = r!.services.map((s: { protocol?: string; address?: string; port?: number; fwmark?: number }) =>
      s.fwmark ? `-f ${s.fwmark | 0}` : `${s.protocol === "tcp" ? "-t" : "-u"} ${s.address!.includes(":") ? `[${s.address}]` : s.address}:${s.port}`);
    const order = (await ipvsadm(d, "-Sn")).split("\n").filter((l) => l.startsWith("-A")).map((l) => l.replace(/^-A (.*?) -s.*$/, "$1"));
    expect(keys).toEqual(order);
    const f3 = r!.services.find((s: { fwmark?: number }) => s.fwmark === 3);
    expect(f3).toMatchObject({ family: "ipv4", scheduler: "mh", schedulerFlags: ["mh-port"], persistence: { timeout: 40, netmask: "255.255.255.255" }, onePacket: false,
      persistenceEngine: "", stats: { conns: 0 } });
    expect(f3.dests).toEqual([{ address: "10.20.0.1", port: 0, forwarding: "tunnel", weight: 9, upperThreshold: 10, lowerThreshold: 3,
      tunnel: { type: "gue", port: 6080, checksum: "remcsum" }, activeConns: 0, inactiveConns: 0, persistentConns: 0, stats: expect.objectContaining({ conns: 0, inBytes: 0 }) }]);
  });

  it("flush empties the table and reports whether it changed anything", async () => {
    await reset(d);
    await ipvsadmAll(d, ["-A -t 192.0.2.50:80", "-a -t 192.0.2.50:80 -r 10.10.0.11 -g"]);
    const [first, second] = await applyOk(d, [{ op: "flush" }, { op: "flush" }]);
    expect([first!.changed, second!.changed]).toEqual([true, false]);
    expect(await ipvsadm(d, "-Sn")).toBe("");
  });
});
