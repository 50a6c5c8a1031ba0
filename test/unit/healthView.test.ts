// Pulumi's view of health-checked real servers stays declarative (issue 27): a real server the checker holds out of
// the pool (weight 0, or deleted and listed as declared) reads at its declared weight, so a refresh shows no change;
// a hand edit of a healthy one is still drift; an up that changes a depooled one's weight sends the new weight (the
// helper records it and the checker applies it on recovery). The RealServer and RealServerPool reads run against
// in-memory directors (fakeDirectors.ts) whose dests carry `health` as the helper's read-back does.
import { beforeEach, describe, expect, it } from "vitest";
import type * as dynamic from "@pulumi/pulumi/dynamic";
import type { Director } from "../../provider/director";
import { entryProvider } from "../../provider/entries";
import { forgetTables } from "../../provider/helperClient";
import type { Dest, DestHealth } from "../../provider/protocol";
import { realServerEffects, realServerKind } from "../../provider/resources/realServer/provider";
import { declaredView } from "../../provider/resources/realServer/wire";
import { realServerPoolProviderWith } from "../../provider/resources/realServerPool/provider";
import { FakeDirectors } from "./fakeDirectors";
import { rs, serviceRef } from "./fixtures";

type Props = Record<string, unknown>;
const PROVIDER = "exports.handler = __fake;";
const A = "203.0.113.5:22";
const SVC = "tcp/192.0.2.10:80";
const OWNER = "acme/lb/prod";
const key = { family: "ipv4", protocol: "tcp", address: "192.0.2.10", port: 80 } as const;

const health = (over: Partial<DestHealth> = {}): DestHealth => ({
  state: "unhealthy", since: "2026-12-06T20:00:00Z", last: "connection refused", depooled: true, declaredWeight: 5, check: "http", ...over,
});

describe("declaredView", () => {
  const dest = { weight: 0 };
  it("a depooled real server reads at its declared weight", () => {
    expect(declaredView({ ...dest, health: health() }).weight).toBe(5);
  });
  it("one the checker removed (listed as declared) too", () => {
    expect(declaredView({ weight: 5, health: health({ removed: true }) }).weight).toBe(5);
  });
  it("a healthy one, one kept pooled by minHealthy and an unchecked one read as the kernel has them", () => {
    expect(declaredView({ weight: 9, health: health({ state: "healthy", depooled: false, last: "ok" }) }).weight).toBe(9);
    expect(declaredView({ weight: 3, health: health({ depooled: false, kept: true }) }).weight).toBe(3);
    expect(declaredView({ weight: 0 }).weight).toBe(0);
  });
  it("leaves the kernel's dest as it is", () => {
    const d = { ...dest, health: health() };
    declaredView(d);
    expect(d.weight).toBe(0);
  });
});

let fake: FakeDirectors;
const at = () => fake.opsFor({ host: "203.0.113.5", port: 22, user: "ops" } as Director);
/** Makes the fake director's dest look as the checker left it (what the helper's read-back then says). */
const checkerDid = (address: string, weight: number, h: DestHealth | undefined) => {
  const d = fake.table(A).services.get(SVC)!.dests.get(`${address}:8080`)! as Dest;
  d.weight = weight;
  if (h) d.health = h;
  else delete d.health;
  forgetTables(); // changed behind the providers' back: the next read dumps again
};
const state = (outs: unknown): Props => ({ ...(outs as Props), __provider: PROVIDER });

beforeEach(async () => {
  fake = new FakeDirectors();
  await at().ensureService({ ...key, scheduler: "rr" });
});

describe("RealServer", () => {
  let p: dynamic.ResourceProvider;
  beforeEach(() => {
    p = entryProvider(realServerKind, realServerEffects, fake.opsFor);
  });
  const create = async (weight: number) => {
    const r = await p.check!({}, { ...rs({ weight }), owner: OWNER, __provider: PROVIDER });
    const c = await p.create(r.inputs as Props);
    return { ...c, inputs: r.inputs as Props };
  };

  it("refresh shows no change while the checker holds it out (quiesced or removed)", async () => {
    const c = await create(5);
    checkerDid("10.0.0.11", 0, health());
    const r = await p.read!(c.id, state(c.outs));
    expect(r.props!.weight).toBe(5);
    expect((await p.diff!(c.id, state(r.props), c.inputs)).changes).toBe(false);
    checkerDid("10.0.0.11", 5, health({ removed: true }));
    expect((await p.read!(c.id, state(c.outs))).props!.weight).toBe(5);
  });

  it("a hand edit of a healthy one's weight is drift", async () => {
    const c = await create(5);
    checkerDid("10.0.0.11", 9, health({ state: "healthy", last: "ok", depooled: false }));
    const r = await p.read!(c.id, state(c.outs));
    expect(r.props!.weight).toBe(9);
    expect((await p.diff!(c.id, state(r.props), c.inputs)).changes).toBe(true);
  });

  it("an up that changes a depooled one's weight sends it (the helper records it); the read shows it", async () => {
    const c = await create(5);
    checkerDid("10.0.0.11", 0, health());
    const news = (await p.check!({}, { ...rs({ weight: 7 }), owner: OWNER, __provider: PROVIDER })).inputs as Props;
    expect((await p.diff!(c.id, state(c.outs), news)).changes).toBe(true);
    fake.log.length = 0;
    await p.update!(c.id, state(c.outs), news);
    expect(fake.log.filter((l) => l.includes("ensureDest"))).toHaveLength(1);
    // The helper kept the kernel at 0 and recorded 7: its read-back says so.
    checkerDid("10.0.0.11", 0, health({ declaredWeight: 7 }));
    expect((await p.read!(c.id, state(news))).props!.weight).toBe(7);
  });
});

describe("RealServerPool", () => {
  let p: dynamic.ResourceProvider;
  const pool = { service: serviceRef(), members: [{ address: "10.0.0.11", port: 8080, weight: 5 }, { address: "10.0.0.12", port: 8080, weight: 2 }] };
  beforeEach(() => {
    p = realServerPoolProviderWith(fake.opsFor);
  });

  it("a depooled member reads as declared; a hand edit of a healthy one is drift", async () => {
    const inputs = (await p.check!({}, { ...pool, owner: OWNER, __provider: PROVIDER })).inputs as Props;
    const c = await p.create(inputs);
    checkerDid("10.0.0.11", 0, health());
    let members = (await p.read!(c.id, state(c.outs))).props!.members as Record<string, Props>;
    expect(members["10.0.0.11:8080"]!.weight).toBe(5);
    checkerDid("10.0.0.12", 4, health({ state: "healthy", last: "ok", depooled: false, declaredWeight: 2 }));
    members = (await p.read!(c.id, state(c.outs))).props!.members as Record<string, Props>;
    expect(members["10.0.0.11:8080"]!.weight).toBe(5);
    expect(members["10.0.0.12:8080"]!.weight).toBe(4);
  });
});
