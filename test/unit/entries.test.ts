// The partial-failure rules of provider/entries.ts (state is honest about where an entry exists, and keeps the old
// settings when not every director got the new ones), through the real VirtualService and RealServer kinds and
// effects, on in-memory directors (fakeDirectors.ts) some of which are unreachable.
import { beforeEach, describe, expect, it } from "vitest";
import type * as dynamic from "@pulumi/pulumi/dynamic";
import type { Director } from "../../provider/director";
import { entryProvider } from "../../provider/entries";
import { HelperError, type HelperErrorCode } from "../../provider/protocol";
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
/** Operations on a director behind the provider's back (out of band). */
const at = (host: string) => fake.opsFor({ host, port: 22, user: "ops" } as Director);
const hosts = (ds: unknown) => (ds as Props[]).map((d) => `${d.host as string}:${d.port as number}`).sort();

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
const failure = async (p: Promise<unknown>) => {
  const e = await p.then(() => undefined, (x: unknown) => x as Error & { id?: string; properties?: Props });
  expect(e, "expected a failure").toBeInstanceOf(Error);
  return e!;
};
const service = (over: Props = {}) => ({ directors: [dirA, dirB], address: "192.0.2.10", port: 80, scheduler: "rr", ...over });

describe("create", () => {
  it("on every director", async () => {
    const r = await vsp.create(await checked(vsp, service()));
    expect(r.id).toBe(`tcp/192.0.2.10:80@${A},${B}`);
    expect(fake.lines(A)).toEqual(["tcp/192.0.2.10:80 rr"]);
    expect(fake.lines(B)).toEqual(["tcp/192.0.2.10:80 rr"]);
  });

  it("with one director down: recorded with only the director that holds it, naming the other", async () => {
    fake.down.add(B);
    const e = await failure(vsp.create(await checked(vsp, service())));
    expect(e.message).toMatch(new RegExp(`create failed on 1 of 2 director\\(s\\):\\n  - ops@${B}: cannot reach`));
    expect(e.id).toBe(`tcp/192.0.2.10:80@${A},${B}`);
    expect(hosts(e.properties!.directors)).toEqual([A]);
    expect(e.properties!.__provider).toBe(PROVIDER);
    expect(fake.lines(A)).toEqual(["tcp/192.0.2.10:80 rr"]);

    // The next up: B is an added director, created there; A is kept and left as it is.
    fake.down.clear();
    fake.log.length = 0;
    const u = await vsp.update!(e.id!, e.properties!, await checked(vsp, service()));
    expect(hosts(u.outs!.directors)).toEqual([A, B]);
    expect(fake.lines(B)).toEqual(["tcp/192.0.2.10:80 rr"]);
    expect(fake.log.filter((l) => l.includes("ensureService"))).toHaveLength(2);
  });

  it("down everywhere: a plain failure (nothing recorded)", async () => {
    fake.down.add(A).add(B);
    const e = await failure(vsp.create(await checked(vsp, service())));
    expect(e.id).toBeUndefined();
    expect(e.message).toContain("create failed on 2 of 2 director(s)");
  });

  it("over an existing entry: EXISTS with the adopt hint; adopt takes it over", async () => {
    await at("203.0.113.5").ensureService({ family: "ipv4", protocol: "tcp", address: "192.0.2.10", port: 80, scheduler: "wlc" });
    const e = await failure(vsp.create(await checked(vsp, service({ directors: [dirA] }))));
    expect(e.message).toMatch(/already exists\. It was not created by this stack: set adopt: true/);
    expect(fake.lines(A)).toEqual(["tcp/192.0.2.10:80 wlc"]);
    await vsp.create(await checked(vsp, service({ directors: [dirA], adopt: true })));
    expect(fake.lines(A)).toEqual(["tcp/192.0.2.10:80 rr"]);
  });
});

describe("update", () => {
  // Issue 26 item 4: nothing reached any director, so nothing changed: a plain error, state stays as it was.
  it("every director failing before an op reached it: a plain error, nothing recorded", async () => {
    const c = await vsp.create(await checked(vsp, service()));
    fake.down.add(A);
    fake.down.add(B);
    const e = await failure(vsp.update!(c.id, { ...c.outs, __provider: PROVIDER }, await checked(vsp, service({ scheduler: "lc" }))));
    expect(e.message).toContain(`update failed on 2 of 2 director(s):\n  - ops@${A}: cannot reach`);
    expect(e).not.toHaveProperty("id");
    expect(e).not.toHaveProperty("properties");
  });

  it("a director that fails: state keeps the old settings (the next diff retries) and every director that holds it", async () => {
    const c = await vsp.create(await checked(vsp, service()));
    fake.down.add(B);
    const e = await failure(vsp.update!(c.id, { ...c.outs, __provider: PROVIDER }, await checked(vsp, service({ scheduler: "lc" }))));
    expect(e.message).toContain(`update failed on 1 of 2 director(s):\n  - ops@${B}: cannot reach`);
    expect(e.properties!.scheduler).toBe("rr");
    expect(hosts(e.properties!.directors)).toEqual([A, B]);
    expect(fake.lines(A)).toEqual(["tcp/192.0.2.10:80 lc"]);
  });

  it("removing a director that fails keeps it recorded; adding one that fails does not record it", async () => {
    const c = await vsp.create(await checked(vsp, service({ directors: [dirA] })));
    fake.down.add(B);
    const added = await failure(vsp.update!(c.id, { ...c.outs, __provider: PROVIDER }, await checked(vsp, service())));
    expect(hosts(added.properties!.directors)).toEqual([A]);
    expect(added.properties!.scheduler).toBe("rr"); // A got nothing new to set, and B failed: new settings wait

    fake.down.clear();
    const both = await vsp.update!(c.id, added.properties!, await checked(vsp, service()));
    fake.down.add(A);
    const removed = await failure(vsp.update!(c.id, { ...both.outs, __provider: PROVIDER }, await checked(vsp, service({ directors: [dirB] }))));
    expect(hosts(removed.properties!.directors)).toEqual([A, B]);
    expect(removed.message).toContain(`  - ops@${A}: cannot reach`);
  });
});

describe("delete and read", () => {
  it("delete that fails on one director names it and removes the entry from the others", async () => {
    const c = await vsp.create(await checked(vsp, service()));
    fake.down.add(A);
    const e = await failure(vsp.delete!(c.id, { ...c.outs, __provider: PROVIDER }));
    expect(e.message).toContain(`delete failed on 1 of 2 director(s):\n  - ops@${A}: cannot reach`);
    expect(fake.lines(B)).toEqual([]);
  });

  it("read reports a director that drifted, drops a director that lost the entry, and gone when none holds it", async () => {
    const c = await vsp.create(await checked(vsp, service()));
    const state = { ...c.outs, __provider: PROVIDER };
    await at("203.0.113.6").ensureService({ family: "ipv4", protocol: "tcp", address: "192.0.2.10", port: 80, scheduler: "sh" });
    const drift = await vsp.read!(c.id, state);
    expect(drift.props!.scheduler).toBe("sh");

    await at("203.0.113.6").deleteService({ family: "ipv4", protocol: "tcp", address: "192.0.2.10", port: 80 });
    const one = await vsp.read!(c.id, state);
    expect(hosts(one.props!.directors)).toEqual([A]);
    expect(one.props!.scheduler).toBe("rr");

    await at("203.0.113.5").deleteService({ family: "ipv4", protocol: "tcp", address: "192.0.2.10", port: 80 });
    expect((await vsp.read!(c.id, state)).id).toBe("");
  });

  it("a real server whose service vanished on a director says how to recover", async () => {
    const vs = await vsp.create(await checked(vsp, service()));
    await at("203.0.113.6").deleteService({ family: "ipv4", protocol: "tcp", address: "192.0.2.10", port: 80 });
    const ref = { directors: vs.outs!.directors, family: "ipv4", protocol: "tcp", address: "192.0.2.10", port: 80 };
    const e = await failure(rsp.create(await checked(rsp, { service: ref, address: "10.0.0.11", port: 8080 })));
    expect(e.message).toMatch(/the VirtualService is missing on this director .*run pulumi refresh, then pulumi up recreates it/);
    expect(hosts(e.properties!.service && (e.properties!.service as Props).directors)).toEqual([A]);
    expect(fake.lines(A)).toEqual(["tcp/192.0.2.10:80 rr", "  10.0.0.11:8080 nat w1"]);
  });
});

describe("drain when the service leaves a director", () => {
  const key = { family: "ipv4", protocol: "tcp", address: "192.0.2.10", port: 80 } as const;
  const destOn = (d: string) => fake.table(d).services.get("tcp/192.0.2.10:80")?.dests.get("10.0.0.11:8080");

  it("a director removed from a service with drain: its real servers go to weight 0 and the service waits for their connections", async () => {
    const c = await vsp.create(await checked(vsp, service({ drain: { timeoutSeconds: 30 } })));
    await at("203.0.113.6").ensureDest(key, { address: "10.0.0.11", port: 8080, forwarding: "nat", weight: 5 });
    destOn(B)!.activeConns = 1;

    const done: string[] = [];
    const updating = vsp.update!(c.id, { ...c.outs, __provider: PROVIDER }, await checked(vsp, service({ directors: [dirA], drain: { timeoutSeconds: 30 } })))
      .then(() => done.push("updated"));
    const deadline = Date.now() + 10_000; // a bound for a hung test, not a timing assertion
    while (destOn(B)?.weight !== 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(fake.lines(B)).toEqual(["tcp/192.0.2.10:80 rr", "  10.0.0.11:8080 nat w0"]);
    await new Promise((r) => setTimeout(r, 1200)); // at least one more poll of the drain loop: still waiting
    expect(done).toEqual([]);
    expect(fake.lines(B)).toHaveLength(2);

    destOn(B)!.activeConns = 0;
    await updating;
    expect(fake.lines(B)).toEqual([]);
    expect(fake.lines(A)).toEqual(["tcp/192.0.2.10:80 rr"]);
  });

  it("without drain the service goes at once, its real servers with it", async () => {
    const c = await vsp.create(await checked(vsp, service()));
    await at("203.0.113.6").ensureDest(key, { address: "10.0.0.11", port: 8080, forwarding: "nat", weight: 5 });
    destOn(B)!.activeConns = 1;
    await vsp.update!(c.id, { ...c.outs, __provider: PROVIDER }, await checked(vsp, service({ directors: [dirA] })));
    expect(fake.lines(B)).toEqual([]);
    expect(fake.log.filter((l) => l.startsWith(`${B} ensureDest`))).toHaveLength(1); // only the out-of-band add
  });
});

describe("ownership: the ledger fields each op sends (PROTOCOL.md \"Ownership ledger\")", () => {
  const OWNER = "acme/lb/prod";
  const SVC = "tcp/192.0.2.10:80";
  const key = { family: "ipv4", protocol: "tcp", address: "192.0.2.10", port: 80 } as const;
  const sent = (prefix: string) => fake.log.filter((l) => l.startsWith(prefix));
  const owned = (over: Props = {}) => service({ owner: OWNER, ...over });
  const helperError = (at: string, code: HelperErrorCode, message: string) => new HelperError(at, code, message);
  const realServer = async (over: Props = {}) => {
    const vs = await vsp.create(await checked(vsp, owned()));
    const ref = { directors: vs.outs!.directors, family: "ipv4", protocol: "tcp", address: "192.0.2.10", port: 80 };
    return (extra: Props = {}) => checked(rsp, { service: ref, address: "10.0.0.11", port: 8080, owner: OWNER, ...over, ...extra });
  };

  it("create sends the owner, and takeover when set (which also adopts an existing entry)", async () => {
    await vsp.create(await checked(vsp, owned()));
    expect(sent(`${A} ensureService`)).toEqual([`${A} ensureService ${SVC} {"owner":"${OWNER}"}`]);
    fake.log.length = 0;
    await vsp.create(await checked(vsp, owned({ takeover: true })));
    expect(sent(`${B} ensureService`)).toEqual([`${B} ensureService ${SVC} {"owner":"${OWNER}","takeover":true}`]);
  });

  it("state from before the ledger (no owner) sends no ownership fields; its first update claims with the owner", async () => {
    const c = await vsp.create(await checked(vsp, service()));
    expect(sent(`${A} ensureService`)).toEqual([`${A} ensureService ${SVC}`]);
    fake.log.length = 0;
    const u = await vsp.update!(c.id, { ...c.outs, __provider: PROVIDER }, await checked(vsp, owned({ directors: [dirA] })));
    expect(u.outs!.owner).toBe(OWNER);
    expect(sent(`${A} ensureService`)).toEqual([`${A} ensureService ${SVC} {"owner":"${OWNER}"}`]);
    expect(sent(`${B} deleteService`)).toEqual([`${B} deleteService ${SVC}`]); // B never had it under an owner
  });

  it("a renamed stack moves ownership: ensures carry formerOwner, a director it leaves is removed as the old owner", async () => {
    const c = await vsp.create(await checked(vsp, owned()));
    fake.log.length = 0;
    const renamed = "acme/lb/production";
    await vsp.update!(c.id, { ...c.outs, __provider: PROVIDER }, await checked(vsp, owned({ owner: renamed, directors: [dirA] })));
    expect(sent(`${A} ensureService`)).toEqual([`${A} ensureService ${SVC} {"owner":"${renamed}","formerOwner":"${OWNER}"}`]);
    expect(sent(`${B} deleteService`)).toEqual([`${B} deleteService ${SVC} {"owner":"${OWNER}"}`]);
  });

  it("a rename whose removal fails keeps the old owner in state, so the next up removes it as that owner", async () => {
    const c = await vsp.create(await checked(vsp, owned()));
    fake.down.add(B);
    const e = await failure(vsp.update!(c.id, { ...c.outs, __provider: PROVIDER }, await checked(vsp, owned({ owner: "acme/lb/production", directors: [dirA] }))));
    expect(e.properties!.owner).toBe(OWNER);
    expect(hosts(e.properties!.directors)).toEqual([A, B]);

    fake.down.clear();
    fake.log.length = 0;
    await vsp.update!(c.id, e.properties!, await checked(vsp, owned({ owner: "acme/lb/production", directors: [dirA] })));
    expect(sent(`${B} deleteService`)).toEqual([`${B} deleteService ${SVC} {"owner":"${OWNER}"}`]);
  });

  it("OWNED everywhere at create: nothing recorded, the hint says takeover", async () => {
    for (const d of [A, B]) fake.refuse.set(`${d} ensureService`, helperError(d, "OWNED", `service ${SVC} is owned by stack acme/web/prod.`));
    const e = await failure(vsp.create(await checked(vsp, owned())));
    expect(e.id).toBeUndefined();
    expect(e.message).toContain(
      `create failed on 2 of 2 director(s):\n  - ops@${A}: ipvs-helper on ${A}: service ${SVC} is owned by stack acme/web/prod. Set takeover: true to take it over, or remove it from that stack.`,
    );
  });

  it("OWNED on one director at create: recorded with the other only (the usual partial failure)", async () => {
    fake.refuse.set(`${B} ensureService`, helperError(B, "OWNED", `service ${SVC} is owned by stack acme/web/prod.`));
    const e = await failure(vsp.create(await checked(vsp, owned())));
    expect(e.id).toBe(`${SVC}@${A},${B}`);
    expect(hosts(e.properties!.directors)).toEqual([A]);
  });

  it("OWNED on delete: no takeover hint (takeover is for creating and updating)", async () => {
    const c = await vsp.create(await checked(vsp, owned({ directors: [dirA] })));
    fake.refuse.set(`${A} deleteService`, helperError(A, "OWNED", `service ${SVC} is owned by stack acme/web/prod.`));
    const e = await failure(vsp.delete!(c.id, { ...c.outs, __provider: PROVIDER }));
    expect(e.message).toMatch(/owned by stack acme\/web\/prod\. It belongs to that stack now: remove it there, or drop it from this stack's state \(pulumi state delete\)\.$/);
  });

  it("MANAGED_ELSEWHERE: no adopt or takeover hint", async () => {
    fake.refuse.set(`${A} ensureService`, helperError(A, "MANAGED_ELSEWHERE", "192.0.2.10 is on kube-ipvs0: kube-proxy manages it."));
    const e = await failure(vsp.create(await checked(vsp, owned({ directors: [dirA], adopt: true }))));
    expect(e.message).toMatch(/kube-proxy manages it\. adopt does not take over what another manager runs: remove it there first\.$/);
  });

  it("delete refused for foreign real servers says how to include them; deleteForeignRealServers sends withForeignDests", async () => {
    const c = await vsp.create(await checked(vsp, owned({ directors: [dirA] })));
    fake.refuse.set(`${A} deleteService`, helperError(A, "FOREIGN_DESTS", `service ${SVC} has real servers this stack does not own: 10.0.0.12:80 (acme/web/prod).`));
    const e = await failure(vsp.delete!(c.id, { ...c.outs, __provider: PROVIDER }));
    expect(e.message).toMatch(/\(acme\/web\/prod\)\. Set deleteForeignRealServers: true to delete them with it, or remove them first\.$/);
    expect(fake.lines(A)).toEqual([`${SVC} rr`]);

    fake.refuse.clear();
    fake.log.length = 0;
    const u = await vsp.update!(c.id, { ...c.outs, __provider: PROVIDER }, await checked(vsp, owned({ directors: [dirA], deleteForeignRealServers: true })));
    await vsp.delete!(c.id, { ...u.outs, __provider: PROVIDER });
    expect(sent(`${A} deleteService`)).toEqual([`${A} deleteService ${SVC} {"owner":"${OWNER}","withForeignDests":true}`]);
  });

  it("drain asks first: a delete the helper would refuse leaves every real server as it was", async () => {
    const c = await vsp.create(await checked(vsp, owned({ directors: [dirA], drain: { timeoutSeconds: 30 } })));
    await at("203.0.113.5").ensureDest(key, { address: "10.0.0.12", port: 80, forwarding: "nat", weight: 5 });
    fake.refuse.set(`${A} deleteService ${SVC} {"owner":"${OWNER}","dryRun":true}`, helperError(A, "FOREIGN_DESTS", "10.0.0.12:80 (no owner)."));
    fake.log.length = 0;
    const e = await failure(vsp.delete!(c.id, { ...c.outs, __provider: PROVIDER }));
    expect(e.message).toContain("Set deleteForeignRealServers: true");
    expect(fake.lines(A)).toEqual([`${SVC} rr`, "  10.0.0.12:80 nat w5"]);
    expect(fake.log).toEqual([`${A} deleteService ${SVC} {"owner":"${OWNER}","dryRun":true}`]);
  });

  it("drain with nothing foreign: dry run, quiesce, delete", async () => {
    const c = await vsp.create(await checked(vsp, owned({ directors: [dirA], drain: { timeoutSeconds: 30 } })));
    await at("203.0.113.5").ensureDest(key, { address: "10.0.0.12", port: 80, forwarding: "nat", weight: 5 });
    fake.log.length = 0;
    await vsp.delete!(c.id, { ...c.outs, __provider: PROVIDER });
    expect(fake.log.filter((l) => !l.includes("getService"))).toEqual([
      `${A} deleteService ${SVC} {"owner":"${OWNER}","dryRun":true}`,
      `${A} ensureDest ${SVC}/10.0.0.12:80`,
      `${A} deleteService ${SVC} {"owner":"${OWNER}"}`,
    ]);
    expect(fake.lines(A)).toEqual([]);
  });

  it("drain quiesces only the real servers the dry run listed: one another stack adds after it keeps its weight", async () => {
    const c = await vsp.create(await checked(vsp, owned({ directors: [dirA], drain: { timeoutSeconds: 30 } })));
    await at("203.0.113.5").ensureDest(key, { address: "10.0.0.12", port: 80, forwarding: "nat", weight: 5 });
    // Another stack's real server arrives between the dry run and the quiesce.
    fake.after.set(`${A} deleteService ${SVC} {"owner":"${OWNER}","dryRun":true}`, () => {
      fake.table(A).services.get(SVC)!.dests.set("10.0.0.13:80", {
        address: "10.0.0.13", port: 80, forwarding: "nat", weight: 7, upperThreshold: 0, lowerThreshold: 0, tunnel: null,
        activeConns: 0, inactiveConns: 0, persistentConns: 0, stats: fake.table(A).services.get(SVC)!.service.stats,
      });
    });
    fake.refuse.set(`${A} deleteService ${SVC} {"owner":"${OWNER}"}`, helperError(A, "FOREIGN_DESTS", "10.0.0.13:80 (stack acme/web/prod)."));
    fake.log.length = 0;
    await failure(vsp.delete!(c.id, { ...c.outs, __provider: PROVIDER }));
    expect(fake.log.filter((l) => !l.includes("getService"))).toEqual([
      `${A} deleteService ${SVC} {"owner":"${OWNER}","dryRun":true}`,
      `${A} ensureDest ${SVC}/10.0.0.12:80`,
      `${A} deleteService ${SVC} {"owner":"${OWNER}"}`,
    ]);
    expect(fake.lines(A)).toEqual([`${SVC} rr`, "  10.0.0.12:80 nat w0", "  10.0.0.13:80 nat w7"]);
  });

  it("a real server sends its owner and takeover on ensure, its owner on the drain's quiesce and on delete", async () => {
    const rsInputs = await realServer({ takeover: true, drain: { timeoutSeconds: 30 } });
    fake.log.length = 0;
    const r = await rsp.create(await rsInputs());
    expect(sent(`${A} ensureDest`)).toEqual([`${A} ensureDest ${SVC}/10.0.0.11:8080 {"owner":"${OWNER}","takeover":true}`]);
    fake.log.length = 0;
    await rsp.delete!(r.id, { ...r.outs, __provider: PROVIDER });
    expect(fake.log.filter((l) => l.startsWith(A) && !l.includes("getDest"))).toEqual([
      `${A} ensureDest ${SVC}/10.0.0.11:8080 {"owner":"${OWNER}"}`,
      `${A} deleteDest ${SVC}/10.0.0.11:8080 {"owner":"${OWNER}"}`,
    ]);
  });

  it("a real server another stack took over: the drain's quiesce is refused before its weight changes", async () => {
    const rsInputs = await realServer({ drain: { timeoutSeconds: 30 } });
    const r = await rsp.create(await rsInputs());
    fake.refuse.set(`${A} ensureDest`, helperError(A, "OWNED", "real server 10.0.0.11:8080 is owned by stack acme/web/prod."));
    const e = await failure(rsp.delete!(r.id, { ...r.outs, __provider: PROVIDER }));
    expect(e.message).toContain(`ops@${A}: ipvs-helper on ${A}: real server 10.0.0.11:8080 is owned by stack acme/web/prod. It belongs to that stack now`);
    expect(fake.lines(A)).toEqual([`${SVC} rr`, "  10.0.0.11:8080 nat w1"]);
  });
});
