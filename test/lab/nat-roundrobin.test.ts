// Template lab test: the real ipvsadm configures a NAT round-robin service in a real kernel, and real HTTP through the
// VIP reaches every real server equally often.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDirector, type LabDirector } from "./director";
import { ipvsadm, waitForStats } from "./ipvsadm";
import { addRealServers, addVip, httpRequests, type LabRealServer } from "./realServers";

const VIP = "192.0.2.10";

describe("NAT round robin through a lab director", () => {
  let d: LabDirector;
  let servers: LabRealServer[];

  beforeAll(async () => {
    d = await startDirector();
    servers = await addRealServers(d, 3);
    await addVip(d, VIP);
    await ipvsadm(d, `-A -t ${VIP}:80 -s rr`);
    for (const s of servers) await ipvsadm(d, `-a -t ${VIP}:80 -r ${s.address}:${s.port} -m`);
  });

  afterAll(async () => {
    await d?.stop();
  });

  it("spreads requests evenly over the three real servers", async () => {
    const answers = await httpRequests(d, VIP, 80, 9);
    const counts = new Map<string, number>();
    for (const a of answers) counts.set(a, (counts.get(a) ?? 0) + 1);
    expect(Object.fromEntries(counts)).toEqual({ rs1: 3, rs2: 3, rs3: 3 });
    // Round robin visits the servers in a fixed cycle.
    expect(answers.slice(3)).toEqual([...answers.slice(0, 3), ...answers.slice(0, 3)]);
  });

  it("shows the traffic in ipvsadm --stats", async () => {
    // Totals lag up to 2 s behind traffic; wait until all nine connections are counted, then check every figure.
    const stats = await waitForStats(d, (s) => s.reduce((n, svc) => n + svc.conns, 0) >= 9);
    const [svc, ...others] = stats;
    expect(others).toEqual([]);
    expect(svc!.service).toBe(`TCP ${VIP}:80`);
    expect(svc!.conns).toBe(9);
    expect(svc!.realServers.map((r) => [r.address, r.conns])).toEqual(servers.map((s) => [`${s.address}:80`, 3]));
    for (const r of svc!.realServers) {
      expect(r.inPkts).toBeGreaterThan(0);
      expect(r.outBytes).toBeGreaterThan(0);
    }
  });
});
