// The VirtualService and RealServer providers against one real lab director, called as the engine calls them
// (check → create/diff/update/read/delete), every result read back with the real ipvsadm inside the VM.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { SCHEDULERS } from "../../provider/schema";
import { closeAllSessions } from "../../provider/session";
import { startDirector, type LabDirector } from "../lab/director";
import { ipvsadm, ipvsadmSave, waitForStats, type IpvsServiceStats } from "../lab/ipvsadm";
import { addRealServers, addVip, httpRequests, type LabRealServer } from "../lab/realServers";
import {
  create,
  createFails,
  destroy,
  diff,
  labDirector,
  lines,
  read,
  serviceRef,
  update,
  type Managed,
  type Props,
} from "./providerEngine";

let lab: LabDirector;
let directors: Props[];

beforeAll(async () => {
  lab = await startDirector();
  directors = [labDirector(lab)];
});

afterAll(async () => {
  closeAllSessions();
  await lab?.stop();
});

const withoutProvider = ({ __provider: _p, ...rest }: Props) => rest;

/** read() of an entry nobody touched reports it with exactly the settings in state. */
async function expectReadsBackAsState(r: Managed): Promise<void> {
  const got = await read(r);
  expect(got.id).toBe(r.id);
  expect(got.props).toEqual(withoutProvider(r.state));
}

/** The rule lines of the kernel table, sorted (each dest line names its service, so order carries no meaning). */
async function table(): Promise<string[]> {
  return lines(await ipvsadmSave(lab)).sort();
}

/** The -Sn lines of one service (`-t 192.0.2.40:80`) and its dests, in ipvsadm's order. */
async function serviceLines(spec: string): Promise<string[]> {
  return lines(await ipvsadmSave(lab)).filter((l) => l.startsWith(`-A ${spec} `) || l.startsWith(`-a ${spec} `));
}

/** `ipvsadm -Ln --thresholds --exact` dest lines ("-> addr Uthreshold Lthreshold ActiveConn InActConn") as "address upper lower". */
async function thresholds(): Promise<string[]> {
  const out = await ipvsadm(lab, "-Ln --thresholds --exact");
  return out
    .split("\n")
    .map((l) => /^\s*->\s+(\S+)\s+(\d+)\s+(\d+)\s+\d+\s+\d+\s*$/.exec(l))
    .flatMap((m) => (m ? [`${m[1]} ${m[2]} ${m[3]}`] : []));
}

async function deleteAll(rs: Managed[]): Promise<void> {
  for (const r of [...rs].reverse()) await destroy(r);
}

describe("every API field, read back by ipvsadm", () => {
  // Each test starts from an empty table, whatever the one before left behind.
  afterEach(async () => {
    await ipvsadm(lab, "-C");
  });

  it("services: tcp/udp/sctp, IPv6 VIP, fwmark v4/v6, scheduler flags, persistence (v4 mask, v6 prefix, sip), onePacket", async () => {
    const before = await table();
    const created = [
      await create("VirtualService", { directors, address: "192.0.2.20", port: 80, scheduler: "rr" }),
      await create("VirtualService", { directors, protocol: "udp", address: "192.0.2.21", port: 53, onePacket: true, scheduler: "lc" }),
      await create("VirtualService", {
        directors, protocol: "udp", address: "192.0.2.21", port: 5060,
        persistence: { timeout: 120, netmask: "255.255.255.0", engine: "sip" },
      }),
      await create("VirtualService", { directors, protocol: "sctp", address: "192.0.2.22", port: 3868 }),
      await create("VirtualService", {
        directors, address: "2001:DB8:0::10", port: 443, scheduler: "sh", schedulerFlags: ["sh-port", "sh-fallback"],
        persistence: { timeout: 600, netmask: 64 },
      }),
      await create("VirtualService", { directors, fwmark: 5, scheduler: "mh", schedulerFlags: ["mh-fallback", "mh-port"] }),
      await create("VirtualService", {
        directors, fwmark: 7, family: "ipv6", scheduler: "rr", schedulerFlags: ["flag-3"], persistence: { netmask: "48" },
      }),
      await create("VirtualService", { directors, address: "192.0.2.23", port: 0, persistence: {} }),
      // flag-1 on sh is sh-fallback: the same kernel bit, shown by its sh name.
      await create("VirtualService", { directors, address: "192.0.2.24", port: 80, scheduler: "sh", schedulerFlags: ["flag-1"] }),
    ];
    expect(created.map((c) => c.id)).toEqual([
      `tcp/192.0.2.20:80@127.0.0.1:${lab.port}`,
      `udp/192.0.2.21:53@127.0.0.1:${lab.port}`,
      `udp/192.0.2.21:5060@127.0.0.1:${lab.port}`,
      `sctp/192.0.2.22:3868@127.0.0.1:${lab.port}`,
      `tcp/[2001:db8::10]:443@127.0.0.1:${lab.port}`,
      `fwmark/ipv4/5@127.0.0.1:${lab.port}`,
      `fwmark/ipv6/7@127.0.0.1:${lab.port}`,
      `tcp/192.0.2.23:0@127.0.0.1:${lab.port}`,
      `tcp/192.0.2.24:80@127.0.0.1:${lab.port}`,
    ]);
    expect(before).toEqual([]);
    expect(await table()).toEqual(
      [
        "-A -t 192.0.2.20:80 -s rr",
        "-A -u 192.0.2.21:53 -s lc -o",
        "-A -u 192.0.2.21:5060 -s wlc -p 120 -M 255.255.255.0 --pe sip",
        "-A --sctp-service 192.0.2.22:3868 -s wlc",
        "-A -t [2001:db8::10]:443 -s sh -p 600 -M 64 -b sh-fallback,sh-port",
        "-A -f 5 -s mh -b mh-fallback,mh-port",
        "-A -f 7 -6 -s rr -p 360 -M 48 -b flag-3",
        "-A -t 192.0.2.23:0 -s wlc -p 360",
        "-A -t 192.0.2.24:80 -s sh -b sh-fallback",
      ].sort(),
    );
    // The exact listing agrees (ipvsadm -Ln --exact names persistence and flags in words).
    const listing = await ipvsadm(lab, "-Ln --exact");
    expect(listing).toContain("UDP  192.0.2.21:53 lc ops");
    expect(listing).toContain("FWM  7 IPv6 rr (flag-3) persistent 360 mask 48");
    for (const c of created) await expectReadsBackAsState(c);
    await deleteAll(created);
    expect(await table()).toEqual([]);
  });

  it("every scheduler (twos where the kernel has it, else a clear refusal that changes nothing)", async () => {
    // twos arrived in Linux 6.2; the lab kernel may predate it.
    const kernelHasTwos = (await lab.exec("find /lib/modules -name 'ip_vs_twos.ko*' | grep -q . && echo yes || echo no")).stdout.trim() === "yes";
    const available = SCHEDULERS.filter((s) => s !== "twos" || kernelHasTwos);
    const created: Managed[] = [];
    for (const [i, scheduler] of available.entries())
      created.push(await create("VirtualService", { directors, address: "198.51.100.1", port: 2000 + i, scheduler }));
    const expected = available.map((s, i) => `-A -t 198.51.100.1:${2000 + i} -s ${s}`).sort();
    expect(await table()).toEqual(expected);
    if (!kernelHasTwos) {
      const err = await createFails("VirtualService", { directors, address: "198.51.100.1", port: 2100, scheduler: "twos" });
      expect(err.message).toContain(`127.0.0.1:${lab.port}`);
      expect(err.message).toMatch(/scheduler twos needs Linux 6\.2 or newer/);
      expect(await table()).toEqual(expected);
    }
    for (const c of created) await expectReadsBackAsState(c);
    await deleteAll(created);
    expect(await table()).toEqual([]);
  });

  it("real servers: nat/dr/tunnel (ipip, gue port + csum, gre), mixed-family tunnel, weight, thresholds, port defaults", async () => {
    const tcp = await create("VirtualService", { directors, address: "192.0.2.30", port: 80, scheduler: "wrr" });
    const udp = await create("VirtualService", { directors, protocol: "udp", address: "192.0.2.31", port: 53 });
    const fw = await create("VirtualService", { directors, fwmark: 9, scheduler: "rr" });
    const v6 = await create("VirtualService", { directors, address: "2001:db8::30", port: 8443 });
    const rs = (svc: Managed, args: Props) => create("RealServer", { service: serviceRef(svc), ...args });
    const dests = [
      await rs(tcp, { address: "10.10.0.11" }), // nat, port = service port, weight 1
      await rs(tcp, { address: "10.10.0.12", port: 8080, weight: 0 }),
      await rs(tcp, { address: "10.10.0.13", forwarding: "dr", weight: 5 }),
      await rs(tcp, { address: "10.10.0.14", forwarding: "tunnel", upperThreshold: 100, lowerThreshold: 10 }),
      await rs(tcp, { address: "10.10.0.15", forwarding: "tunnel", tunnel: { type: "gue", port: 6080, checksum: "csum" } }),
      await rs(tcp, { address: "10.10.0.16", forwarding: "tunnel", tunnel: { type: "gue", port: 6081, checksum: "remcsum" } }),
      await rs(tcp, { address: "10.10.0.17", forwarding: "tunnel", tunnel: { type: "gre", checksum: "csum" }, weight: 65535 }),
      await rs(tcp, { address: "2001:db8::17", forwarding: "tunnel", tunnel: { type: "ipip" } }), // IPv6 dest, IPv4 service
      await rs(udp, { address: "10.10.0.18", upperThreshold: 2147483647 }),
      await rs(fw, { address: "10.10.0.19" }), // fwmark: port 0
      await rs(fw, { address: "10.10.0.20", port: 8080, forwarding: "nat" }),
      await rs(v6, { address: "2001:db8::31", forwarding: "tunnel", tunnel: { type: "gre" } }),
      await rs(v6, { address: "10.10.0.21", forwarding: "tunnel" }), // IPv4 dest, IPv6 service
    ];
    expect(dests.map((d) => d.state.port)).toEqual([80, 8080, 80, 80, 80, 80, 80, 80, 53, 0, 8080, 8443, 8443]);
    expect(dests[0]!.id).toBe(`tcp/192.0.2.30:80/10.10.0.11:80@127.0.0.1:${lab.port}`);
    expect(dests[9]!.id).toBe(`fwmark/ipv4/9/10.10.0.19:0@127.0.0.1:${lab.port}`);
    expect(await table()).toEqual(
      [
        "-A -t 192.0.2.30:80 -s wrr",
        "-a -t 192.0.2.30:80 -r 10.10.0.11:80 -m -w 1",
        "-a -t 192.0.2.30:80 -r 10.10.0.12:8080 -m -w 0",
        "-a -t 192.0.2.30:80 -r 10.10.0.13:80 -g -w 5",
        "-a -t 192.0.2.30:80 -r 10.10.0.14:80 -i -w 1 --tun-type ipip",
        "-a -t 192.0.2.30:80 -r 10.10.0.15:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-csum",
        "-a -t 192.0.2.30:80 -r 10.10.0.16:80 -i -w 1 --tun-type gue --tun-port 6081 --tun-remcsum",
        "-a -t 192.0.2.30:80 -r 10.10.0.17:80 -i -w 65535 --tun-type gre --tun-csum",
        "-a -t 192.0.2.30:80 -r [2001:db8::17]:80 -i -w 1 --tun-type ipip",
        "-A -u 192.0.2.31:53 -s wlc",
        "-a -u 192.0.2.31:53 -r 10.10.0.18:53 -m -w 1",
        "-A -f 9 -s rr",
        "-a -f 9 -r 10.10.0.19:0 -m -w 1",
        "-a -f 9 -r 10.10.0.20:8080 -m -w 1",
        "-A -t [2001:db8::30]:8443 -s wlc",
        "-a -t [2001:db8::30]:8443 -r [2001:db8::31]:8443 -i -w 1 --tun-type gre --tun-nocsum",
        "-a -t [2001:db8::30]:8443 -r 10.10.0.21:8443 -i -w 1 --tun-type ipip",
      ].sort(),
    );
    // -Sn does not carry thresholds; the threshold listing does.
    expect(await thresholds()).toEqual(
      expect.arrayContaining(["10.10.0.14:80 100 10", "10.10.0.11:80 0 0", "10.10.0.18:53 2147483647 0"]),
    );
    for (const d of dests) await expectReadsBackAsState(d);

    // Forwarding and tunnel settings change in place too (ipvsadm -e), and back.
    const first = dests[0]!;
    const firstArgs = { service: serviceRef(tcp), address: "10.10.0.11" };
    let moved = await update(first, { ...firstArgs, forwarding: "tunnel", tunnel: { type: "gue", port: 6090 }, upperThreshold: 7 });
    expect(await table()).toContain("-a -t 192.0.2.30:80 -r 10.10.0.11:80 -i -w 1 --tun-type gue --tun-port 6090 --tun-nocsum");
    expect(await thresholds()).toContain("10.10.0.11:80 7 0");
    await expectReadsBackAsState(moved);
    moved = await update(moved, firstArgs);
    expect(await table()).toContain("-a -t 192.0.2.30:80 -r 10.10.0.11:80 -m -w 1");
    expect(await thresholds()).toContain("10.10.0.11:80 0 0");
    await expectReadsBackAsState(moved);
    await deleteAll(dests);
    expect(await table()).toEqual(["-A -f 9 -s rr", "-A -t 192.0.2.30:80 -s wrr", "-A -t [2001:db8::30]:8443 -s wlc", "-A -u 192.0.2.31:53 -s wlc"].sort());
    await deleteAll([tcp, udp, fw, v6]);
    expect(await table()).toEqual([]);
  });
});

describe("lifecycle on one director, with real traffic", () => {
  const VIP = "192.0.2.40";
  let servers: LabRealServer[];
  let vsArgs: Props;
  let vs: Managed;
  let rss: Managed[];
  const rsArgs = (s: LabRealServer, extra: Props = {}): Props => ({ service: serviceRef(vs), address: s.address, ...extra });
  /**
   * The service's `ipvsadm -Ln --stats --exact` counters once its connection count reaches `conns`. The kernel folds
   * per-CPU counters into what ipvsadm shows every 2 s (the estimator), so counts lag traffic by up to that; a count
   * that never gets there (e.g. an entry re-created by an update starts from 0) fails after 10 s.
   */
  const serviceStats = async (conns: number) => {
    const ours = (stats: IpvsServiceStats[]) => stats.find((s) => s.service === `TCP ${VIP}:80`);
    return ours(await waitForStats(lab, (stats) => (ours(stats)?.conns ?? 0) >= conns, 10_000))!;
  };
  const tally = (answers: string[]) => Object.fromEntries([...new Set(answers)].sort().map((a) => [a, answers.filter((x) => x === a).length]));

  beforeAll(async () => {
    servers = await addRealServers(lab, 3);
    await addVip(lab, VIP);
  });

  it("updates scheduler and weight in place: counters and the service keep running", async () => {
    vsArgs = { directors, address: VIP, port: 80, scheduler: "rr" };
    vs = await create("VirtualService", vsArgs);
    rss = [];
    for (const s of servers) rss.push(await create("RealServer", rsArgs(s)));
    expect(tally(await httpRequests(lab, VIP, 80, 6))).toEqual({ rs1: 2, rs2: 2, rs3: 2 });
    const before = await serviceStats(6);
    expect(before.conns).toBe(6);
    expect(before.realServers.map((r) => r.conns)).toEqual([2, 2, 2]);

    vsArgs = { ...vsArgs, scheduler: "wrr" };
    vs = await update(vs, vsArgs);
    rss[0] = await update(rss[0]!, rsArgs(servers[0]!, { weight: 3 }));
    expect(await serviceLines(`-t ${VIP}:80`)).toEqual([
      `-A -t ${VIP}:80 -s wrr`,
      `-a -t ${VIP}:80 -r ${servers[0]!.address}:80 -m -w 3`,
      `-a -t ${VIP}:80 -r ${servers[1]!.address}:80 -m -w 1`,
      `-a -t ${VIP}:80 -r ${servers[2]!.address}:80 -m -w 1`,
    ]);
    // Same kernel entries: a delete + add would have zeroed these.
    const after = await serviceStats(6);
    expect(after.conns).toBe(6);
    expect(after.realServers.map((r) => r.conns)).toEqual([2, 2, 2]);
    expect(after.inBytes).toBeGreaterThanOrEqual(before.inBytes);
    // And the new settings carry traffic: wrr 3:1:1.
    expect(tally(await httpRequests(lab, VIP, 80, 5))).toEqual({ rs1: 3, rs2: 1, rs3: 1 });
    expect((await serviceStats(11)).conns).toBe(11);
    // Nothing to do when nothing changed.
    expect((await diff(vs, vsArgs)).diff.changes).toBe(false);
  });

  it("read reports out-of-band edits and removals; update heals the drift without resetting counters", async () => {
    const [a, b] = servers;
    await ipvsadm(lab, `-E -t ${VIP}:80 -s lc -p 30`);
    await ipvsadm(lab, `-e -t ${VIP}:80 -r ${b!.address}:80 -g -w 9 -x 50 -y 5`);
    const vsRead = await read(vs);
    expect(vsRead.id).toBe(vs.id);
    expect(vsRead.props).toMatchObject({ scheduler: "lc", schedulerFlags: [], persistence: { timeout: 30, netmask: "255.255.255.255" } });
    const rsRead = await read(rss[1]!);
    expect(rsRead.id).toBe(rss[1]!.id);
    expect(rsRead.props).toMatchObject({ address: b!.address, port: 80, forwarding: "dr", weight: 9, upperThreshold: 50, lowerThreshold: 5 });

    // refresh writes what read returned into state; the next up diffs the program's inputs against it.
    vs = { ...vs, state: { ...vsRead.props!, __provider: vs.state.__provider } };
    rss[1] = { ...rss[1]!, state: { ...rsRead.props!, __provider: rss[1]!.state.__provider } };
    vs = await update(vs, vsArgs);
    rss[1] = await update(rss[1]!, rsArgs(b!));
    expect(await serviceLines(`-t ${VIP}:80`)).toEqual([
      `-A -t ${VIP}:80 -s wrr`,
      `-a -t ${VIP}:80 -r ${a!.address}:80 -m -w 3`,
      `-a -t ${VIP}:80 -r ${b!.address}:80 -m -w 1`,
      `-a -t ${VIP}:80 -r ${servers[2]!.address}:80 -m -w 1`,
    ]);
    expect(await thresholds()).toContain(`${b!.address}:80 0 0`);
    expect((await serviceStats(11)).conns).toBe(11);
    await expectReadsBackAsState(vs);
    await expectReadsBackAsState(rss[1]!);

    // Removed out of band: read says gone; deleting the missing entry succeeds; up creates it again.
    await ipvsadm(lab, `-d -t ${VIP}:80 -r ${servers[2]!.address}:80`);
    expect(await read(rss[2]!)).toEqual({ id: "", props: undefined });
    await destroy(rss[2]!);
    rss[2] = await create("RealServer", rsArgs(servers[2]!));
    expect((await serviceLines(`-t ${VIP}:80`)).join("\n")).toContain(`-r ${servers[2]!.address}:80 -m -w 1`);
    expect(tally(await httpRequests(lab, VIP, 80, 5))).toEqual({ rs1: 3, rs2: 1, rs3: 1 });
  });

  it("create over an existing entry fails (says it exists, mentions adopt); adopt: true takes it over", async () => {
    const vip = "192.0.2.41";
    await ipvsadm(lab, `-A -t ${vip}:80 -s sh -p 50`);
    await ipvsadm(lab, `-a -t ${vip}:80 -r ${servers[0]!.address}:80 -g -w 4 -x 10`);
    const snapshot = await table();
    const args = { directors, address: vip, port: 80, scheduler: "rr" };
    const err = await createFails("VirtualService", args);
    expect(err.message).toContain(`127.0.0.1:${lab.port}`);
    expect(err.message).toMatch(/already exists/);
    expect(err.message).toMatch(/adopt: true/);
    expect(err.id).toBeUndefined(); // nothing created anywhere: not a partial failure
    expect(await table()).toEqual(snapshot);

    const adopted = await create("VirtualService", { ...args, adopt: true });
    expect((await serviceLines(`-t ${vip}:80`))[0]).toBe(`-A -t ${vip}:80 -s rr`);

    const rsIn = { service: serviceRef(adopted), address: servers[0]!.address, weight: 2 };
    const rsErr = await createFails("RealServer", rsIn);
    expect(rsErr.message).toContain(`127.0.0.1:${lab.port}`);
    expect(rsErr.message).toMatch(/already exists/);
    expect(rsErr.message).toMatch(/adopt: true/);
    expect((await serviceLines(`-t ${vip}:80`))[1]).toBe(`-a -t ${vip}:80 -r ${servers[0]!.address}:80 -g -w 4`);
    const rsAdopted = await create("RealServer", { ...rsIn, adopt: true });
    expect(await serviceLines(`-t ${vip}:80`)).toEqual([`-A -t ${vip}:80 -s rr`, `-a -t ${vip}:80 -r ${servers[0]!.address}:80 -m -w 2`]);
    expect(await thresholds()).toContain(`${servers[0]!.address}:80 0 0`);
    await expectReadsBackAsState(rsAdopted);
    await destroy(rsAdopted);
    await destroy(adopted);
    expect(await ipvsadm(lab, "-Sn")).not.toContain(vip);
  });

  it("delete removes only what the stack owns", async () => {
    await ipvsadm(lab, `-A -t 192.0.2.42:80 -s rr`);
    await ipvsadm(lab, `-a -t 192.0.2.42:80 -r ${servers[1]!.address}:80 -m -w 1`);
    await ipvsadm(lab, `-a -t ${VIP}:80 -r 10.10.0.99:80 -m -w 1`); // foreign dest in our service
    for (const r of rss) await destroy(r);
    expect(await serviceLines(`-t ${VIP}:80`)).toEqual([`-A -t ${VIP}:80 -s wrr`, `-a -t ${VIP}:80 -r 10.10.0.99:80 -m -w 1`]);
    await destroy(vs);
    expect(await table()).toEqual([`-A -t 192.0.2.42:80 -s rr`, `-a -t 192.0.2.42:80 -r ${servers[1]!.address}:80 -m -w 1`]);
    // Deleting again (already gone) succeeds and still touches nothing else.
    await destroy(vs);
    for (const r of rss) await destroy(r);
    expect(await table()).toEqual([`-A -t 192.0.2.42:80 -s rr`, `-a -t 192.0.2.42:80 -r ${servers[1]!.address}:80 -m -w 1`]);
    await ipvsadm(lab, "-D -t 192.0.2.42:80");
  });
});

describe("get(): read with only the directors", () => {
  it("VirtualService.get and RealServer.get props come from the id and the kernel", async () => {
    const vs = await create("VirtualService", {
      directors, fwmark: 11, family: "ipv6", scheduler: "mh", schedulerFlags: ["mh-port"], persistence: { timeout: 90, netmask: 56 },
    });
    const rs = await create("RealServer", {
      service: serviceRef(vs), address: "10.10.0.50", forwarding: "tunnel", tunnel: { type: "gue", port: 7000, checksum: "remcsum" },
      weight: 4, upperThreshold: 20, lowerThreshold: 3,
    });
    // What VirtualService.get(name, id, { directors }) and RealServer.get(name, id, { directors }) hand the provider.
    const vsGot = await read({ kind: "VirtualService", id: vs.id, state: { directors } });
    expect(vsGot.id).toBe(vs.id);
    expect(vsGot.props).toEqual(withoutProvider(vs.state));
    const rsGot = await read({ kind: "RealServer", id: rs.id, state: { service: { directors } } });
    expect(rsGot.id).toBe(rs.id);
    expect(rsGot.props).toEqual(withoutProvider(rs.state));
    // A get of something that is not there says so.
    expect((await read({ kind: "VirtualService", id: `fwmark/ipv6/12@127.0.0.1:${lab.port}`, state: { directors } })).id).toBe("");
    await destroy(rs);
    await destroy(vs);
    expect(await table()).toEqual([]);
  });
});

describe("many resources at once (the engine runs independent steps in parallel)", () => {
  it("creates, updates and deletes a dozen real servers concurrently on one director", async () => {
    const vs = await create("VirtualService", { directors, address: "192.0.2.90", port: 80, scheduler: "wlc" });
    const addresses = Array.from({ length: 12 }, (_, i) => `10.10.1.${i + 1}`);
    let rss = await Promise.all(addresses.map((address) => create("RealServer", { service: serviceRef(vs), address })));
    expect(await serviceLines("-t 192.0.2.90:80")).toEqual([
      "-A -t 192.0.2.90:80 -s wlc",
      ...addresses.map((a) => `-a -t 192.0.2.90:80 -r ${a}:80 -m -w 1`),
    ]);
    rss = await Promise.all(rss.map((r, i) => update(r, { service: serviceRef(vs), address: addresses[i], weight: i + 2 })));
    expect(await serviceLines("-t 192.0.2.90:80")).toEqual([
      "-A -t 192.0.2.90:80 -s wlc",
      ...addresses.map((a, i) => `-a -t 192.0.2.90:80 -r ${a}:80 -m -w ${i + 2}`),
    ]);
    const reads = await Promise.all(rss.map((r) => read(r)));
    expect(reads.map((r) => r.props?.weight)).toEqual(addresses.map((_, i) => i + 2));
    await Promise.all(rss.map((r) => destroy(r)));
    await destroy(vs);
    expect(await table()).toEqual([]);
  });
});
