// What a drain shows while it waits (provider/drain.ts): a status when it starts, one at most every 5 s while
// connections are left, and a lasting line with the outcome — on a fake clock and scripted connection counts. What the
// real engine makes of these reports is test/e2e/drainProgress.test.ts.
import { describe, expect, it } from "vitest";
import { drainDests } from "../../provider/drain";
import type { DirectorOps } from "../../provider/helperClient";
import { reportProgress, type ProgressReport } from "../../provider/progress";
import type { Dest, ServiceKey } from "../../provider/protocol";

const SERVICE: ServiceKey = { family: "ipv4", protocol: "tcp", address: "192.0.2.10", port: 80 };
const URN = "urn:pulumi:dev::shop::pulumi-nodejs:dynamic/ipvs:RealServer::app-1";
const ZERO = { conns: 0, inPkts: 0, outPkts: 0, inBytes: 0, outBytes: 0, cps: 0, inPps: 0, outPps: 0, inBps: 0, outBps: 0 };

const dest = (address: string, activeConns: number, weight = 0): Dest => ({
  address, port: 8080, forwarding: "nat", weight, upperThreshold: 0, lowerThreshold: 0,
  activeConns, inactiveConns: 0, persistentConns: 0, stats: ZERO,
});

/**
 * Runs a drain whose reads return `reads` in turn (the last one again once they run out), on a clock that only moves
 * by the drain's own sleeps plus `readMs` per read. Returns what it reported, with the fake time in seconds.
 */
async function run(reads: Dest[][], timeoutSeconds: number, opts: { urn?: string; readMs?: number } = {}) {
  let t = 1_000_000;
  const reports: Array<ProgressReport & { at: number }> = [];
  const quiesced: string[] = [];
  const ops = {
    target: "ops@203.0.113.5:22",
    ensureDest: async (_s: ServiceKey, d: { address: string; weight?: number }) => {
      quiesced.push(`${d.address} weight ${d.weight}`);
      return {};
    },
  } as unknown as DirectorOps;
  let i = 0;
  await drainDests(
    ops,
    SERVICE,
    async () => {
      t += opts.readMs ?? 0;
      return reads[Math.min(i++, reads.length - 1)]!;
    },
    timeoutSeconds,
    {
      urn: opts.urn,
      now: () => t,
      sleep: async (ms) => void (t += ms),
      report: async (r) => void reports.push({ ...r, at: (t - 1_000_000) / 1000 }),
    },
  );
  return { reports, quiesced };
}

describe("drain progress", () => {
  it("reports the start, what is left at most every 5 s, and the drained outcome", async () => {
    // Read 0 is before the quiesce; read n follows the n-th 1 s poll.
    const reads = [[dest("10.0.0.11", 3, 5)], ...Array(6).fill([dest("10.0.0.11", 2)]), ...Array(6).fill([dest("10.0.0.11", 1)]), [dest("10.0.0.11", 0)]];
    const { reports, quiesced } = await run(reads, 60, { urn: URN });
    expect(quiesced).toEqual(["10.0.0.11 weight 0"]);
    const what = "1 real server(s) of tcp/192.0.2.10:80 on ops@203.0.113.5:22";
    expect(reports).toEqual([
      { at: 0, message: `draining ${what}: 3 active connection(s), up to 60 s`, urn: URN, ephemeral: true, severity: "info" },
      { at: 5, message: `draining ${what}: 2 connection(s) left, 55 s left`, urn: URN, ephemeral: true, severity: "info" },
      { at: 10, message: `draining ${what}: 1 connection(s) left, 50 s left`, urn: URN, ephemeral: true, severity: "info" },
      { at: 13, message: `drained ${what}: connections ended after 13 s`, urn: URN, ephemeral: false, severity: "info" },
    ]);
  });

  it("on timeout the lasting line is a warning naming the connections still open", async () => {
    const { reports } = await run([[dest("10.0.0.11", 1, 5), dest("10.0.0.12", 2, 5)]], 12);
    const what = "2 real server(s) of tcp/192.0.2.10:80 on ops@203.0.113.5:22";
    expect(reports.map(({ at, message, ephemeral, severity }) => ({ at, message, ephemeral, severity }))).toEqual([
      { at: 0, message: `draining ${what}: 3 active connection(s), up to 12 s`, ephemeral: true, severity: "info" },
      { at: 5, message: `draining ${what}: 3 connection(s) left, 7 s left`, ephemeral: true, severity: "info" },
      { at: 10, message: `draining ${what}: 3 connection(s) left, 2 s left`, ephemeral: true, severity: "info" },
      {
        at: 12,
        message: `drain of ${what} timed out after 12 s with 3 active connection(s) left; removing anyway`,
        ephemeral: false,
        severity: "warning",
      },
    ]);
    // No URN given: the engine shows the lines on the stack's row.
    expect(reports.every((r) => r.urn === undefined)).toBe(true);
  });

  it("slow reads still give at most one status per 5 s", async () => {
    const { reports } = await run([[dest("10.0.0.11", 1, 5)]], 30, { readMs: 1500 });
    const statusTimes = reports.filter((r) => r.ephemeral).map((r) => r.at);
    expect(statusTimes[0]).toBe(1.5); // the first read, before the quiesce, took 1.5 s of the clock
    for (let k = 1; k < statusTimes.length; k++) expect(statusTimes[k]! - statusTimes[k - 1]!).toBeGreaterThanOrEqual(5);
    expect(statusTimes.length).toBeGreaterThanOrEqual(5);
    expect(reports.at(-1)).toMatchObject({ ephemeral: false, severity: "warning" });
  });

  it("a drain with no active connection shows nothing and does not wait", async () => {
    const { reports, quiesced } = await run([[dest("10.0.0.11", 0, 5), dest("10.0.0.12", 0, 0)]], 60);
    expect(quiesced).toEqual(["10.0.0.11 weight 0"]);
    expect(reports).toEqual([]);
  });

  it("outside the engine's provider process reportProgress sends nothing and resolves", async () => {
    await expect(reportProgress({ message: "x", ephemeral: true, severity: "info" })).resolves.toBeUndefined();
  });
});
