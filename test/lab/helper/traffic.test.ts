// Real HTTP through a VIP: an ensure that changes a weight, and a restore that changes one weight, leave the
// connection counters of every entry intact (no delete + add, no flush), as `ipvsadm -Ln --stats --exact` shows.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDirector, type LabDirector } from "../director";
import { ipvsadm } from "../ipvsadm";
import { addRealServers, addVip, httpRequests, type LabRealServer } from "../realServers";
import { applyOk, destOp, HELPER, installHelper, settledStats, svcOp, tcp } from "./helperLab";

const VIP = "192.0.2.10";
const VIP2 = "192.0.2.11";

describe("ipvs-helper keeps counters through real traffic", () => {
  let d: LabDirector;
  let rs: LabRealServer[];

  beforeAll(async () => {
    d = await startDirector();
    await installHelper(d);
    rs = await addRealServers(d, 3);
    await addVip(d, VIP);
    await addVip(d, VIP2);
  });

  afterAll(async () => {
    await d?.stop();
  });

  it("serves HTTP through a helper-built NAT service; an ensure that changes a weight keeps the counters", async () => {
    await d.exec("ipvsadm -C");
    await applyOk(d, [svcOp(tcp(VIP, 80), { scheduler: "rr" }), ...rs.map((s) => destOp(tcp(VIP, 80), { address: s.address, port: 80, forwarding: "nat" }))]);
    const answers = await httpRequests(d, VIP, 80, 6);
    expect([...answers].sort()).toEqual(["rs1", "rs1", "rs2", "rs2", "rs3", "rs3"]);
    const before = await settledStats(d);
    expect(before[0]!.conns).toBe(6);
    const [r] = await applyOk(d, [destOp(tcp(VIP, 80), { address: rs[0]!.address, port: 80, weight: 4 })]);
    expect(r!.changed).toBe(true);
    expect(await settledStats(d)).toEqual(before);
    expect(await ipvsadm(d, "-Sn")).toContain(`-r ${rs[0]!.address}:80 -m -w 4`);
    // The helper reads the same counters back.
    const [g] = await applyOk(d, [{ op: "getService", service: tcp(VIP, 80), withDests: true }]);
    expect(g!.service.stats.conns).toBe(6);
    expect(g!.service.dests.map((x: { stats: { conns: number; inBytes: number } }) => x.stats.conns)).toEqual(before[0]!.realServers.map((x) => x.conns));
    expect(g!.service.dests[0].stats.inBytes).toBe(before[0]!.realServers[0]!.inBytes);
  });

  it("restore of a table with one changed weight touches only that entry; zero clears the counters", async () => {
    await d.exec("ipvsadm -C");
    const table = [
      `-A -t ${VIP}:80 -s rr`, ...rs.map((s) => `-a -t ${VIP}:80 -r ${s.address}:80 -m -w 1`),
      `-A -t ${VIP2}:80 -s wrr`, ...rs.slice(0, 2).map((s) => `-a -t ${VIP2}:80 -r ${s.address}:80 -m -w 2`),
    ];
    await d.exec(`${HELPER} restore`, { stdin: table.join("\n") + "\n" });
    await httpRequests(d, VIP, 80, 6);
    await httpRequests(d, VIP2, 80, 4);
    const before = await settledStats(d);
    expect(before.map((s) => s.conns)).toEqual([6, 4]);
    const saved = (await d.exec(`${HELPER} save`)).stdout;
    expect(saved).toBe(await ipvsadm(d, "-Sn"));
    const changed = saved.replace(`-r ${rs[1]!.address}:80 -m -w 1`, `-r ${rs[1]!.address}:80 -m -w 3`);
    expect(changed).not.toBe(saved);
    const plan = (await d.exec(`${HELPER} restore --dry-run`, { stdin: changed })).stdout;
    expect(plan).toBe(`update -a -t ${VIP}:80 -r ${rs[1]!.address}:80 -m -w 3\n`);
    expect(await ipvsadm(d, "-Sn")).toBe(saved);
    expect((await d.exec(`${HELPER} restore`, { stdin: changed })).stdout).toBe(plan);
    expect(await ipvsadm(d, "-Sn")).toBe(changed);
    expect(await settledStats(d)).toEqual(before);
    // Restoring the same text again changes nothing.
    expect((await d.exec(`${HELPER} restore`, { stdin: changed })).stdout).toBe("");
    // Unlisted entries go; the rest keep their counters.
    const fewer = changed.split("\n").filter((l) => !l.includes(VIP2)).join("\n");
    expect((await d.exec(`${HELPER} restore`, { stdin: fewer })).stdout).toBe(`delete -A -t ${VIP2}:80 -s wrr\n`);
    expect(await settledStats(d)).toEqual(before.slice(0, 1));
    const [z] = await applyOk(d, [{ op: "zero", service: tcp(VIP, 80) }]);
    expect(z!.changed).toBe(true);
    const after = await settledStats(d);
    expect(after[0]!.conns).toBe(0);
    expect(after[0]!.realServers.every((x) => x.conns === 0 && x.inBytes === 0)).toBe(true);
  });

  it("restore refuses a file with an error and changes nothing", async () => {
    const saved = await ipvsadm(d, "-Sn");
    const res = await d.exec(`${HELPER} restore`, { stdin: `${saved}-A -t ${VIP2}:80 -s nope\n`, check: false });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`line ${saved.split("\n").length} (-A -t ${VIP2}:80 -s nope): service tcp ${VIP2}:80: unknown scheduler "nope"`);
    expect(res.stderr).toContain("(nothing was changed)");
    expect(await ipvsadm(d, "-Sn")).toBe(saved);
  });
});
