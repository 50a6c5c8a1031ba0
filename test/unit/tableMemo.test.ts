// DirectorOps.table() (provider/helperClient/directorOps.ts): a refresh of N entries on a director costs one dump, not
// N reads; any write through that director's operations forgets the dump, so a read never sees a table older than our
// own writes; drains keep reading live counters. Through the real VirtualService and RealServer read effects, on
// in-memory directors (fakeDirectors.ts) that log every op.
import { beforeEach, describe, expect, it } from "vitest";
import type * as dynamic from "@pulumi/pulumi/dynamic";
import type { Director } from "../../provider/director";
import { entryProvider } from "../../provider/entries";
import { forgetTables } from "../../provider/helperClient";
import { realServerEffects, realServerKind } from "../../provider/resources/realServer/provider";
import { virtualServiceEffects, virtualServiceKind } from "../../provider/resources/virtualService/provider";
import { FakeDirectors } from "./fakeDirectors";
import { director } from "./fixtures";

type Props = Record<string, unknown>;
const PROVIDER = "exports.handler = __fake;";
const A = "203.0.113.5:22";
const B = "203.0.113.6:22";
const dirA = director({ host: "203.0.113.5" });
const dirB = director({ host: "203.0.113.6" });
const KEY = { family: "ipv4", protocol: "tcp", address: "192.0.2.10", port: 80 } as const;
/** Operations on a director outside the providers, through the same per-director ops (and memo). */
const at = (host: string) => fake.opsFor({ host, port: 22, user: "ops" } as Director);

let fake: FakeDirectors;
let vsp: dynamic.ResourceProvider;
let rsp: dynamic.ResourceProvider;

beforeEach(() => {
  fake = new FakeDirectors();
  vsp = entryProvider(virtualServiceKind, virtualServiceEffects, fake.opsFor);
  rsp = entryProvider(realServerKind, realServerEffects, fake.opsFor);
});

const checked = async (p: dynamic.ResourceProvider, args: Props): Promise<Props> => {
  const r = await p.check!({}, { ...args, __provider: PROVIDER });
  expect(r.failures ?? []).toEqual([]);
  return { ...(r.inputs as Props), __provider: PROVIDER };
};

/** A service on `directors` and `n` real servers in it (10.0.0.1…), as state after create. */
async function stack(n: number, directors = [dirA]) {
  const vs = await vsp.create(await checked(vsp, { directors, address: KEY.address, port: 80, scheduler: "wrr" }));
  const ref = { directors: vs.outs!.directors, ...KEY };
  const rss = [];
  for (let i = 0; i < n; i++) {
    const r = await rsp.create(await checked(rsp, { service: ref, address: `10.0.${Math.floor(i / 250)}.${(i % 250) + 1}`, port: 8080, weight: 1 + (i % 5) }));
    rss.push({ id: r.id, state: { ...r.outs, __provider: PROVIDER } });
  }
  return { vs: { id: vs.id, state: { ...vs.outs, __provider: PROVIDER } }, rss };
}

describe("table(): one dump per director for a refresh", () => {
  it("100 concurrent real-server reads and the service's read cost one dump, and read what create wrote", async () => {
    const { vs, rss } = await stack(99);
    const before = fake.log.length;
    const reads = await Promise.all([vsp.read!(vs.id, vs.state), ...rss.map((r) => rsp.read!(r.id, r.state))]);
    expect(fake.log.slice(before)).toEqual([`${A} dump `]);
    expect(reads.map((r) => r.id)).toEqual([vs.id, ...rss.map((r) => r.id)]);
    expect(reads.slice(1).map((r) => r.props!.weight)).toEqual(rss.map((_, i) => 1 + (i % 5)));
    expect(reads[0]!.props!.scheduler).toBe("wrr");
  });

  it("reads one after another share the dump too: 100 reads, 1 dump", async () => {
    const { rss } = await stack(100);
    for (const r of rss) expect((await rsp.read!(r.id, r.state)).id).toBe(r.id);
    expect(fake.count("dump")).toBe(1);
    expect(fake.count("getDest") + fake.count("getService")).toBe(0);
  });

  it("one dump per director: two directors, both dumped once", async () => {
    const { vs, rss } = await stack(10, [dirA, dirB]);
    await Promise.all([vsp.read!(vs.id, vs.state), ...rss.map((r) => rsp.read!(r.id, r.state))]);
    expect([fake.count("dump", A), fake.count("dump", B)]).toEqual([1, 1]);
  });

  it("a write between reads forgets the table: the next read dumps again and sees the write", async () => {
    const { rss } = await stack(3);
    expect((await rsp.read!(rss[0]!.id, rss[0]!.state)).props!.weight).toBe(1);
    // An update through the provider: a write on that director.
    await rsp.update!(rss[0]!.id, rss[0]!.state, { ...rss[0]!.state, weight: 4 });
    expect((await rsp.read!(rss[0]!.id, rss[0]!.state)).props!.weight).toBe(4);
    expect(fake.count("dump")).toBe(2);
    // Reads after that share the second dump.
    await rsp.read!(rss[1]!.id, rss[1]!.state);
    expect(fake.count("dump")).toBe(2);
  });

  it("a write only forgets its own director's table", async () => {
    const { rss } = await stack(2, [dirA, dirB]);
    await rsp.read!(rss[0]!.id, rss[0]!.state);
    await at("203.0.113.6").deleteDest(KEY, { address: "10.0.0.2", port: 8080 });
    const r = await rsp.read!(rss[1]!.id, rss[1]!.state);
    expect([fake.count("dump", A), fake.count("dump", B)]).toEqual([1, 2]);
    expect((r.props!.service as Props).directors).toEqual([expect.objectContaining({ host: "203.0.113.5" })]);
  });

  it("a write sent while a dump is in flight: callers after it get a dump taken after the write", async () => {
    const { rss } = await stack(1);
    const first = rsp.read!(rss[0]!.id, rss[0]!.state); // dump 1 in flight
    const write = at("203.0.113.5").ensureDest(KEY, { address: "10.0.0.1", port: 8080, weight: 5 });
    const second = rsp.read!(rss[0]!.id, rss[0]!.state);
    await write;
    const third = await rsp.read!(rss[0]!.id, rss[0]!.state);
    expect((await second).props!.weight).toBe(5);
    expect(third.props!.weight).toBe(5);
    await first;
  });

  it("settings ops forget it too; pure reads (getSettings) do not", async () => {
    const { rss } = await stack(1);
    const ops = at("203.0.113.5");
    await rsp.read!(rss[0]!.id, rss[0]!.state);
    await ops.run({ op: "getSettings", sysctls: [] });
    await rsp.read!(rss[0]!.id, rss[0]!.state);
    expect(fake.count("dump")).toBe(1);
    await ops.run({ op: "ensureSettings", owner: "acme/lb/prod", settings: { sysctls: {}, daemons: [] } });
    await rsp.read!(rss[0]!.id, rss[0]!.state);
    expect(fake.count("dump")).toBe(2);
  });

  it("a failed dump is not kept: the next read dumps again", async () => {
    const { rss } = await stack(1);
    fake.down.add(A);
    await expect(rsp.read!(rss[0]!.id, rss[0]!.state)).rejects.toThrow(/read failed on 1 of 1 director\(s\):\n  - ops@203\.0\.113\.5:22: cannot reach/);
    fake.down.delete(A);
    expect((await rsp.read!(rss[0]!.id, rss[0]!.state)).id).toBe(rss[0]!.id);
    expect(fake.count("dump")).toBe(2);
  });

  it("forgetTables() drops every director's table (for in-process callers that edit behind the provider's back)", async () => {
    const { rss } = await stack(1, [dirA, dirB]);
    await rsp.read!(rss[0]!.id, rss[0]!.state);
    forgetTables();
    await rsp.read!(rss[0]!.id, rss[0]!.state);
    expect([fake.count("dump", A), fake.count("dump", B)]).toEqual([2, 2]);
  });

  it("a drained delete reads live counters (getDest), not the memoized table", async () => {
    const { rss } = await stack(1);
    await rsp.read!(rss[0]!.id, rss[0]!.state);
    const state = { ...rss[0]!.state, drain: { timeoutSeconds: 1 } };
    await rsp.delete!(rss[0]!.id, state);
    expect(fake.count("getDest")).toBeGreaterThan(0);
    expect(fake.count("dump")).toBe(1);
    expect(fake.lines(A)).toEqual(["tcp/192.0.2.10:80 wrr"]);
  });
});
