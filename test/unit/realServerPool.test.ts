// RealServerPool: its rules (a RealServer's, per member, plus no address:port twice), its diff (members keyed by
// address:port, in place; the service's identity replaces) and its effects on in-memory directors (fakeDirectors.ts):
// only changed members touched, drain of removed members, partial failures recorded per member (onlyOn), refresh.
import { beforeEach, describe, expect, it } from "vitest";
import type * as dynamic from "@pulumi/pulumi/dynamic";
import type { Director } from "../../provider/director";
import { HelperError } from "../../provider/protocol";
import { diffRealServerPool, realServerPoolProviderWith } from "../../provider/resources/realServerPool/provider";
import { realServerEffects, realServerKind } from "../../provider/resources/realServer/provider";
import { entryProvider } from "../../provider/entries";
import { diffRealServer } from "../../provider/resources/realServer/provider";
import { diffVirtualService } from "../../provider/resources/virtualService/provider";
import { checkRealServer } from "../../provider/schema";
import { checkRealServerPool } from "../../provider/resources/realServerPool/schema";
import { FakeDirectors } from "./fakeDirectors";
import { director, expectOk, rs, serviceRef, U, vs } from "./fixtures";

type Props = Record<string, unknown>;
const PROVIDER = "exports.handler = __fake;";
const A = "203.0.113.5:22";
const B = "203.0.113.6:22";
const SVC = "tcp/192.0.2.10:80";
const OWNER = "acme/lb/prod";
const URN = "urn:pulumi:prod::lb::pulumi-nodejs:dynamic/ipvs:RealServerPool::web";
const twoDirectors = () => serviceRef({ directors: [director(), director({ host: "203.0.113.6" })] });
const pool = (over: Props = {}): Props => ({ service: serviceRef(), members: [{ address: "10.0.0.11", port: 8080 }], ...over });
const many = (n: number, over: (i: number) => Props = () => ({})) =>
  Array.from({ length: n }, (_, i) => ({ address: `10.1.${Math.floor(i / 250)}.${(i % 250) + 1}`, port: 8080, ...over(i) }));

describe("check", () => {
  it("keys members by address:port, with a RealServer's defaults (port from the service, weight 1, nat)", () => {
    const out = expectOk(checkRealServerPool(undefined, pool({ members: [{ address: "10.0.0.11" }, { address: "2001:DB8::11", forwarding: "tunnel" }] })));
    expect(out.members).toEqual({
      "10.0.0.11:80": { address: "10.0.0.11", port: 80, forwarding: "nat", weight: 1, upperThreshold: 0, lowerThreshold: 0 },
      "[2001:db8::11]:80": { address: "2001:db8::11", port: 80, forwarding: "tunnel", weight: 1, upperThreshold: 0, lowerThreshold: 0, tunnel: { type: "ipip", checksum: "nocsum" } },
    });
    // State (the map) checks to itself.
    expect(expectOk(checkRealServerPool(undefined, out))).toEqual(out);
  });

  it("each member has exactly a RealServer's rules and messages, named by its index", () => {
    const bad: Props[] = [
      { address: "10.0.0.11", port: 8081, forwarding: "dr" },
      { address: "2001:db8::1" },
      { address: "10.0.0.12", lowerThreshold: 5 },
      { address: "10.0.0.13", weight: 70000 },
      { address: "10.0.0.14", tunnel: { type: "gue" } },
      { address: "web-1" },
      { address: "10.0.0.15", tunnelType: "gre" },
    ];
    const r = checkRealServerPool(undefined, pool({ members: [{ address: "10.0.0.1" }, ...bad] }));
    const expected = bad.flatMap((m, i) =>
      checkRealServer(undefined, rs({ ...m, port: m.port })).failures.map((f) => ({ property: `members[${i + 1}].${f.property}`, reason: f.reason })),
    );
    expect(expected.length).toBeGreaterThanOrEqual(bad.length);
    expect(r.failures).toEqual(expected);
  });

  it("no address:port twice: the message names both indexes", () => {
    const r = checkRealServerPool(undefined, pool({ members: [{ address: "10.0.0.11" }, { address: "10.0.0.12" }, { address: "10.0.0.11", port: 80, weight: 3 }] }));
    expect(r.failures).toEqual([{ property: "members[2]", reason: "members[0] and members[2] are both 10.0.0.11:80: a real server is listed once per pool" }]);
  });

  it("onlyOn is the provider's record, not an input; the service's own rules apply", () => {
    expect(checkRealServerPool(undefined, pool({ members: [{ address: "10.0.0.11", onlyOn: [A] }] })).failures).toEqual([
      { property: "members[0].onlyOn", reason: "onlyOn is recorded by the provider, not an input" },
    ]);
    expect(checkRealServerPool(undefined, pool({ service: serviceRef({ fwmark: 7 }) })).failures.map((f) => f.property)).toContain("service.address");
  });

  it("preview: an unknown key leaves members unknown, the rules still run", () => {
    const r = checkRealServerPool(undefined, pool({ service: serviceRef({ port: U }), members: [{ address: "10.0.0.11" }, { address: "10.0.0.12", weight: -1 }] }));
    expect(r.failures.map((f) => f.property)).toEqual(["members[1].weight"]);
    expect(expectOk(checkRealServerPool(undefined, pool({ service: serviceRef({ port: U }), members: [{ address: "10.0.0.11" }] }))).members).toBe(U);
    expect(expectOk(checkRealServerPool(undefined, pool({ members: U }))).members).toBe(U);
  });
});

describe("diff", () => {
  const state = (members: Props[], over: Props = {}) => expectOk(checkRealServerPool(undefined, pool({ members, ...over }))) as Props;
  it("members change in place (order does not matter); the service's identity replaces", () => {
    const m = [{ address: "10.0.0.11" }, { address: "10.0.0.12" }];
    expect(diffRealServerPool("id", state(m), pool({ members: [...m].reverse() }))).toEqual({ changes: false, replaces: [], deleteBeforeReplace: false });
    expect(diffRealServerPool("id", state(m), pool({ members: [m[0], { address: "10.0.0.12", weight: 2 }] }))).toEqual({ changes: true, replaces: [], deleteBeforeReplace: false });
    expect(diffRealServerPool("id", state(m), pool({ members: [m[0]] })).changes).toBe(true);
    expect(diffRealServerPool("id", state(m), pool({ members: m, service: serviceRef({ port: 81 }) })).replaces).toEqual(["service"]);
    expect(diffRealServerPool("id", state(m), pool({ members: m, service: serviceRef({ address: U }) })).replaces).toEqual(["service"]);
    // A member recorded on only some directors differs from the program's, so the next up puts it everywhere.
    const partial = state(m);
    (partial.members as Record<string, Props>)["10.0.0.12:80"]!.onlyOn = [A];
    expect(diffRealServerPool("id", partial, pool({ members: m })).changes).toBe(true);
  });
});

let fake: FakeDirectors;
let pp: dynamic.ResourceProvider;
beforeEach(() => {
  fake = new FakeDirectors();
  pp = realServerPoolProviderWith(fake.opsFor);
});
/** Operations on a director behind the provider's back (out of band). */
const at = (host: string) => fake.opsFor({ host, port: 22, user: "ops" } as Director);
const key = { family: "ipv4", protocol: "tcp", address: "192.0.2.10", port: 80 } as const;
const withService = async (...hosts: string[]) => {
  for (const h of hosts) await at(h).ensureService({ ...key, scheduler: "rr" });
};
const checked = async (args: Props): Promise<Props> => {
  const r = await pp.check!({}, { owner: OWNER, resourceUrn: URN, ...args, __provider: PROVIDER });
  expect(r.failures ?? []).toEqual([]);
  return { ...(r.inputs as Props), __provider: PROVIDER };
};
const state = (outs: unknown): Props => ({ ...(outs as Props), __provider: PROVIDER });
const failure = async (p: Promise<unknown>) => {
  const e = await p.then(() => undefined, (x: unknown) => x as Error & { id?: string; properties?: Props });
  expect(e, "expected a failure").toBeInstanceOf(Error);
  return e!;
};
const writes = () => fake.log.filter((l) => / (ensureDest|deleteDest) /.test(l));
const hosts = (p: Props) => ((p.service as Props).directors as Props[]).map((d) => `${d.host as string}:22`);

describe("create, update, delete", () => {
  it("creates every member on every director, each with the stack as owner and the pool as holder", async () => {
    await withService("203.0.113.5", "203.0.113.6");
    const c = await pp.create(await checked(pool({ service: twoDirectors(), members: many(200) })));
    expect(c.id).toBe(`pool/${SVC}@${A},${B}`);
    expect(Object.keys(c.outs.members)).toHaveLength(200);
    expect(fake.lines(A)).toHaveLength(201);
    expect(fake.lines(B)).toHaveLength(201);
    expect(writes()).toHaveLength(400);
    expect(writes()[0]).toBe(`${A} ensureDest ${SVC}/10.1.0.1:8080 {"owner":"${OWNER}","holder":"${URN}"}`);
  });

  it("a weight change of one member of 2,000 touches one dest; adds and removes touch only those", async () => {
    await withService("203.0.113.5");
    const members = many(2000);
    const c = await pp.create(await checked(pool({ members })));
    fake.log.length = 0;
    const changed = members.map((m, i) => (i === 1234 ? { ...m, weight: 7 } : m));
    const u = await pp.update!(c.id, state(c.outs), await checked(pool({ members: changed })));
    expect(writes()).toEqual([`${A} ensureDest ${SVC}/10.1.4.235:8080 {"owner":"${OWNER}","holder":"${URN}"}`]);
    expect((u.outs.members as Record<string, Props>)["10.1.4.235:8080"]!.weight).toBe(7);

    fake.log.length = 0;
    const next = [...changed.slice(1), { address: "10.9.9.9", port: 8080 }];
    const u2 = await pp.update!(c.id, state(u.outs), await checked(pool({ members: next })));
    expect(writes().sort()).toEqual([
      `${A} deleteDest ${SVC}/10.1.0.1:8080 {"owner":"${OWNER}","holder":"${URN}"}`,
      `${A} ensureDest ${SVC}/10.9.9.9:8080 {"owner":"${OWNER}","holder":"${URN}"}`,
    ]);
    expect(Object.keys(u2.outs.members)).toHaveLength(2000);
    expect(u2.outs.members["10.1.0.1:8080"]).toBeUndefined();
  });

  it("removed members with drain are quiesced together (with the ownership) and then deleted", async () => {
    await withService("203.0.113.5");
    const c = await pp.create(await checked(pool({ members: many(3), drain: { timeoutSeconds: 30 } })));
    fake.log.length = 0;
    await pp.update!(c.id, state(c.outs), await checked(pool({ members: many(1), drain: { timeoutSeconds: 30 } })));
    const sent = fake.log.filter((l) => !l.includes("getService"));
    const own = `{"owner":"${OWNER}","holder":"${URN}"}`;
    expect(sent.slice(0, 2).sort()).toEqual([`${A} ensureDest ${SVC}/10.1.0.2:8080 ${own}`, `${A} ensureDest ${SVC}/10.1.0.3:8080 ${own}`]);
    expect(sent.slice(2).sort()).toEqual([`${A} deleteDest ${SVC}/10.1.0.2:8080 ${own}`, `${A} deleteDest ${SVC}/10.1.0.3:8080 ${own}`]);
    expect(fake.log.filter((l) => l.includes("getService"))).toHaveLength(1); // one read for all of them: nobody connected
    expect(fake.lines(A)).toEqual([`${SVC} rr`, "  10.1.0.1:8080 nat w1"]);
  });

  it("delete removes every member from every director", async () => {
    await withService("203.0.113.5", "203.0.113.6");
    const c = await pp.create(await checked(pool({ service: twoDirectors(), members: many(5) })));
    await pp.delete!(c.id, state(c.outs));
    expect(fake.lines(A)).toEqual([`${SVC} rr`]);
    expect(fake.lines(B)).toEqual([`${SVC} rr`]);
  });

  it("the owner moving (a renamed stack) re-ensures every member with formerOwner", async () => {
    await withService("203.0.113.5");
    const c = await pp.create(await checked(pool({ members: many(2) })));
    fake.log.length = 0;
    await pp.update!(c.id, state(c.outs), await checked(pool({ members: many(2), owner: "acme/lb/production" })));
    expect(writes()).toHaveLength(2);
    expect(writes()[0]).toContain(`"formerOwner":"${OWNER}"`);
  });

  it("a RealServer sends its URN as holder too", async () => {
    await withService("203.0.113.5");
    const rsp = entryProvider(realServerKind, realServerEffects, fake.opsFor);
    const urn = "urn:pulumi:prod::lb::pulumi-nodejs:dynamic/ipvs:RealServer::app-1";
    const r = await rsp.check!({}, { ...rs({ service: serviceRef() }), owner: OWNER, resourceUrn: urn });
    await rsp.create({ ...(r.inputs as Props), __provider: PROVIDER });
    expect(writes()).toEqual([`${A} ensureDest ${SVC}/10.0.0.11:8080 {"owner":"${OWNER}","holder":"${urn}"}`]);
  });
});

describe("partial failures: state says exactly which members exist where", () => {
  it("a member refused on one director is recorded onlyOn the other; the next up puts it there", async () => {
    await withService("203.0.113.5", "203.0.113.6");
    fake.refuse.set(`${B} ensureDest ${SVC}/10.1.0.2:8080`, new HelperError(B, "EXISTS", "real server 10.1.0.2:8080 of service tcp 192.0.2.10:80 already exists."));
    const e = await failure(pp.create(await checked(pool({ service: twoDirectors(), members: many(3) }))));
    expect(e.message).toBe(
      `RealServerPool ${SVC}: create failed for 1 of 6 member operation(s):\n  - 10.1.0.2:8080 on ops@${B}: ipvs-helper on ${B}: real server 10.1.0.2:8080 of service tcp 192.0.2.10:80 already exists. It was not created by this stack: set adopt: true to take it over, or remove it first.`,
    );
    const members = e.properties!.members as Record<string, Props>;
    expect(Object.keys(members).sort()).toEqual(["10.1.0.1:8080", "10.1.0.2:8080", "10.1.0.3:8080"]);
    expect(members["10.1.0.2:8080"]!.onlyOn).toEqual([A]);
    expect(members["10.1.0.1:8080"]!.onlyOn).toBeUndefined();
    expect(hosts(e.properties!)).toEqual([A, B]);

    fake.refuse.clear();
    fake.log.length = 0;
    const inputs = await checked(pool({ service: twoDirectors(), members: many(3), adopt: true }));
    expect(diffRealServerPool(e.id!, e.properties!, inputs).changes).toBe(true);
    const u = await pp.update!(e.id!, state(e.properties), inputs);
    expect(writes()).toEqual([`${B} ensureDest ${SVC}/10.1.0.2:8080 {"owner":"${OWNER}","holder":"${URN}"}`]);
    expect((u.outs.members as Record<string, Props>)["10.1.0.2:8080"]!.onlyOn).toBeUndefined();
  });

  it("a member that failed everywhere is left out; a director that got nothing is left out", async () => {
    await withService("203.0.113.5", "203.0.113.6");
    fake.refuse.set(`${A} ensureDest ${SVC}/10.1.0.3:8080`, new HelperError(A, "OWNED", "real server 10.1.0.3:8080 belongs to stack acme/web/prod."));
    fake.down.add(B);
    const e = await failure(pp.create(await checked(pool({ service: twoDirectors(), members: many(3) }))));
    expect(e.message).toContain(`  - 3 members (10.1.0.1:8080, 10.1.0.2:8080, 10.1.0.3:8080) on ops@${B}: cannot reach`);
    expect(e.message).toContain("Set takeover: true to take it over");
    expect(hosts(e.properties!)).toEqual([A]);
    expect(Object.keys(e.properties!.members as Props).sort()).toEqual(["10.1.0.1:8080", "10.1.0.2:8080"]);
    expect(Object.values(e.properties!.members as Record<string, Props>).every((m) => m.onlyOn === undefined)).toBe(true);

    fake.down.add(A);
    const all = await failure(pp.create(await checked(pool({ service: twoDirectors(), members: many(1) }))));
    expect(all.properties).toBeUndefined(); // nothing anywhere: nothing recorded
  });

  it("a settings change that did not reach every director keeps the old settings (the next diff retries)", async () => {
    await withService("203.0.113.5", "203.0.113.6");
    const c = await pp.create(await checked(pool({ service: twoDirectors(), members: many(2) })));
    fake.down.add(B);
    const e = await failure(pp.update!(c.id, state(c.outs), await checked(pool({ service: twoDirectors(), members: many(2, () => ({ weight: 9 })) }))));
    const members = e.properties!.members as Record<string, Props>;
    expect(Object.values(members).map((m) => m.weight)).toEqual([1, 1]);
    expect(fake.lines(A)).toContain("  10.1.0.1:8080 nat w9");
  });

  // Issue 26 item 4: an update that reached no director changed nothing: a plain error, state stays as it was.
  it("an update that reached no director is a plain error: nothing recorded", async () => {
    await withService("203.0.113.5", "203.0.113.6");
    const c = await pp.create(await checked(pool({ service: twoDirectors(), members: many(2) })));
    fake.down.add(A);
    fake.down.add(B);
    const e = await failure(pp.update!(c.id, state(c.outs), await checked(pool({ service: twoDirectors(), members: many(2, () => ({ weight: 9 })) }))));
    expect(e.message).toContain(`  - 2 members (10.1.0.1:8080, 10.1.0.2:8080) on ops@${A}: cannot reach`);
    expect(e.id).toBeUndefined();
    expect(e.properties).toBeUndefined();
  });

  it("a removal that failed on one director keeps the member there (onlyOn) until it is removed", async () => {
    await withService("203.0.113.5", "203.0.113.6");
    const c = await pp.create(await checked(pool({ service: twoDirectors(), members: many(2) })));
    fake.refuse.set(`${B} deleteDest ${SVC}/10.1.0.2:8080`, new HelperError(B, "TIMEOUT", "deleting real server 10.1.0.2:8080 did not finish within 9s."));
    const e = await failure(pp.update!(c.id, state(c.outs), await checked(pool({ service: twoDirectors(), members: many(1) }))));
    expect((e.properties!.members as Record<string, Props>)["10.1.0.2:8080"]!.onlyOn).toEqual([B]);
    fake.refuse.clear();
    fake.log.length = 0;
    const u = await pp.update!(c.id, state(e.properties), await checked(pool({ service: twoDirectors(), members: many(1) })));
    expect(writes()).toEqual([`${B} deleteDest ${SVC}/10.1.0.2:8080 {"owner":"${OWNER}","holder":"${URN}"}`]);
    expect(Object.keys(u.outs.members)).toEqual(["10.1.0.1:8080"]);
  });
});

describe("read (refresh)", () => {
  it("one table per director: drift per member, members gone leave, members on some directors get onlyOn", async () => {
    await withService("203.0.113.5", "203.0.113.6");
    const c = await pp.create(await checked(pool({ service: twoDirectors(), members: many(4) })));
    await at("203.0.113.6").ensureDest(key, { address: "10.1.0.1", port: 8080, weight: 9 });
    for (const h of ["203.0.113.5", "203.0.113.6"]) await at(h).deleteDest(key, { address: "10.1.0.2", port: 8080 });
    await at("203.0.113.5").deleteDest(key, { address: "10.1.0.3", port: 8080 });
    fake.log.length = 0;
    const r = await pp.read!(c.id, state(c.outs));
    expect(fake.log.sort()).toEqual([`${A} dump `, `${B} dump `]); // one table per director
    const members = r.props!.members as Record<string, Props>;
    expect(Object.keys(members).sort()).toEqual(["10.1.0.1:8080", "10.1.0.3:8080", "10.1.0.4:8080"]);
    expect(members["10.1.0.1:8080"]!.weight).toBe(9);
    expect(members["10.1.0.3:8080"]!.onlyOn).toEqual([B]);
    expect(r.id).toBe(c.id);

    // The next up heals it all: the drifted member set again (on both: state cannot tell which one drifted), the
    // missing members created, nothing else touched.
    fake.log.length = 0;
    await pp.update!(c.id, state(r.props), await checked(pool({ service: twoDirectors(), members: many(4) })));
    expect(writes().map((l) => l.split(" ").slice(0, 3).join(" ")).sort()).toEqual(
      [1, 2, 3].map((i) => `${A} ensureDest ${SVC}/10.1.0.${i}:8080`).concat([1, 2].map((i) => `${B} ensureDest ${SVC}/10.1.0.${i}:8080`)),
    );
    expect(fake.lines(B)).toContain("  10.1.0.1:8080 nat w1");
  });

  it("the service gone from every director: the pool is gone", async () => {
    await withService("203.0.113.5");
    const c = await pp.create(await checked(pool({ members: many(2) })));
    await at("203.0.113.5").deleteService(key);
    expect((await pp.read!(c.id, state(c.outs))).id).toBe("");
  });
});

// A rename with aliases: the same resource under a new URN, which the directors' ledgers record as the holder. The
// update passes the old URN as formerHolder (the helper then moves the holder), and never replaces.
describe("renamed with aliases", () => {
  const NEW = "urn:pulumi:prod::lb::pulumi-nodejs:dynamic/ipvs:RealServerPool::web-renamed";
  const moving = `{"owner":"${OWNER}","holder":"${NEW}","formerHolder":"${URN}"}`;

  it("diff: a new URN is an in-place update of every resource; state without one is no change", () => {
    const p = expectOk(checkRealServerPool(undefined, { ...pool(), resourceUrn: URN })) as Props;
    expect(diffRealServerPool("id", p, { ...pool(), resourceUrn: NEW })).toEqual({ changes: true, replaces: [], deleteBeforeReplace: false });
    expect(diffRealServerPool("id", p, { ...pool(), resourceUrn: URN }).changes).toBe(false);
    expect(diffRealServerPool("id", pool(), { ...pool(), resourceUrn: NEW }).changes).toBe(false);
    expect(diffRealServer("id", rs({ resourceUrn: "urn:a" }), rs({ resourceUrn: "urn:b" }))).toEqual({ changes: true, replaces: [], deleteBeforeReplace: false });
    expect(diffRealServer("id", rs(), rs({ resourceUrn: "urn:b" })).changes).toBe(false);
    expect(diffVirtualService("id", vs({ resourceUrn: "urn:a" }), vs({ resourceUrn: "urn:b" }))).toEqual({ changes: true, replaces: [], deleteBeforeReplace: false });
  });

  it("a renamed pool re-ensures every member, and deletes removed ones, moving from the old URN", async () => {
    await withService("203.0.113.5");
    const c = await pp.create(await checked(pool({ members: many(3) })));
    fake.log.length = 0;
    const u = await pp.update!(c.id, state(c.outs), await checked(pool({ members: many(2), resourceUrn: NEW })));
    expect(writes().sort()).toEqual([
      `${A} deleteDest ${SVC}/10.1.0.3:8080 ${moving}`,
      `${A} ensureDest ${SVC}/10.1.0.1:8080 ${moving}`,
      `${A} ensureDest ${SVC}/10.1.0.2:8080 ${moving}`,
    ]);
    expect(u.outs.resourceUrn).toBe(NEW);
  });

  it("a renamed pool whose update failed somewhere keeps the old URN in state (the next up moves the rest)", async () => {
    await withService("203.0.113.5");
    const c = await pp.create(await checked(pool({ members: many(2) })));
    fake.refuse.set(`${A} ensureDest ${SVC}/10.1.0.2:8080`, new HelperError(A, "TIMEOUT", "timed out."));
    const e = await failure(pp.update!(c.id, state(c.outs), await checked(pool({ members: many(2), resourceUrn: NEW }))));
    expect(e.properties!.resourceUrn).toBe(URN);
  });

  it("a renamed RealServer moves from its old URN, also on a director it leaves; a failure keeps the old URN", async () => {
    await withService("203.0.113.5", "203.0.113.6");
    const rsp = entryProvider(realServerKind, realServerEffects, fake.opsFor);
    const input = async (over: Props) => {
      const r = await rsp.check!({}, { ...rs({ service: twoDirectors() }), owner: OWNER, ...over });
      return { ...(r.inputs as Props), __provider: PROVIDER };
    };
    const c = await rsp.create(await input({ resourceUrn: URN }));
    fake.log.length = 0;
    const u = await rsp.update!(c.id, state(c.outs), await input({ resourceUrn: NEW, service: serviceRef() }));
    expect(writes()).toEqual([`${A} ensureDest ${SVC}/10.0.0.11:8080 ${moving}`, `${B} deleteDest ${SVC}/10.0.0.11:8080 ${moving}`]);
    expect(u.outs.resourceUrn).toBe(NEW);

    const c2 = await rsp.create(await input({ address: "10.0.0.12", resourceUrn: URN }));
    fake.refuse.set(`${B} ensureDest`, new HelperError(B, "TIMEOUT", "timed out."));
    const e = await failure(rsp.update!(c2.id, state(c2.outs), await input({ address: "10.0.0.12", resourceUrn: NEW })));
    expect(e.properties!.resourceUrn).toBe(URN);
  });
});
