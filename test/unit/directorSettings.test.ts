// The DirectorSettings provider (provider/resources/directorSettings/provider.ts) on in-memory directors (fakeDirectors.ts,
// fakeSettings.ts): the managed set sent whole, originals put back, drift shown by read, one stack per director.
import * as pulumi from "@pulumi/pulumi";
import type * as dynamic from "@pulumi/pulumi/dynamic";
import { beforeEach, describe, expect, it } from "vitest";
import { diffDirectorSettings, makeDirectorSettingsProvider } from "../../provider/resources/directorSettings/provider";
import { settingsProps, settingsWire } from "../../provider/resources/directorSettings/wire";
import { HelperError } from "../../provider/protocol";
import { DirectorError } from "../../provider/session";
import { parseDirectorSettings } from "../../provider/schema";
import { FakeDirectors } from "./fakeDirectors";
import { U, director } from "./fixtures";

type Props = Record<string, unknown>;
const PROVIDER = "exports.handler = __fake;";
const A = "203.0.113.5:22";
const OWNER = "acme/lb/prod";
const VS = (n: string) => `net.ipv4.vs.${n}`;

let fake: FakeDirectors;
let p: dynamic.ResourceProvider;
beforeEach(() => {
  fake = new FakeDirectors();
  p = makeDirectorSettingsProvider(fake.opsFor);
});

const args = (over: Props = {}): Props => ({
  director: director(),
  owner: OWNER,
  timeouts: { tcp: 600 },
  sysctls: { connReuseMode: 0, expireNodestConn: true, syncThreshold: { threshold: 2, period: 20 }, dropEntry: 1 },
  ipForward: { ipv4: true },
  syncDaemons: [{ state: "master", interface: "eth1", syncId: 7 }],
  ...over,
});
const checked = async (a: Props): Promise<Props> => {
  const r = await p.check!({}, { ...a, __provider: PROVIDER });
  expect(r.failures ?? []).toEqual([]);
  return { ...(r.inputs as Props), __provider: PROVIDER };
};
const failure = async (x: Promise<unknown>) => {
  const e = await x.then(() => undefined, (err: unknown) => err as Error & { id?: string; properties?: Props });
  expect(e, "expected a failure").toBeInstanceOf(Error);
  return e!;
};
const kernel = () => fake.settings(A);

describe("the wire form", () => {
  it("sysctls by full name (booleans 0/1, sync_threshold a pair), only the given timeouts, daemons with maxLen", () => {
    const s = parseDirectorSettings(args({ syncDaemons: [{ state: "backup", interface: "eth1", syncId: 7, maxLength: 1400 }] }));
    expect(settingsWire(s)).toEqual({
      sysctls: { [VS("conn_reuse_mode")]: 0, [VS("expire_nodest_conn")]: 1, [VS("sync_threshold")]: [2, 20], [VS("drop_entry")]: 1, "net.ipv4.ip_forward": 1 },
      timeouts: { tcp: 600 },
      daemons: [{ state: "backup", interface: "eth1", syncId: 7, maxLen: 1400 }],
    });
  });
  it("ftp: the ports as given; read back from the loaded module, absent (drift) when it is not loaded", () => {
    const s = parseDirectorSettings(args({ ftp: { ports: [2121, 21] } }));
    expect(settingsWire(s).ftp).toEqual({ ports: [2121, 21] });
    const real = { sysctls: {}, timeouts: { tcp: 600, tcpfin: 120, udp: 300 }, daemons: [] };
    expect(settingsProps(s, { ...real, ftp: { ports: [21, 2121] } }).ftp).toEqual({ ports: [2121, 21] });
    expect(settingsProps(s, { ...real, ftp: { ports: [21] } }).ftp).toEqual({ ports: [21] });
    expect(settingsProps(s, real).ftp).toBeUndefined();
    expect(settingsProps(parseDirectorSettings(args()), { ...real, ftp: { ports: [21] } })).not.toHaveProperty("ftp");
  });
});

describe("create, read, update, delete", () => {
  it("create applies the whole set; id names the director", async () => {
    const r = await p.create(await checked(args()));
    expect(r.id).toBe(`settings@${A}`);
    expect(r.outs).not.toHaveProperty("__provider");
    expect(kernel().sysctls.get(VS("conn_reuse_mode"))).toBe(0);
    expect(kernel().sysctls.get(VS("expire_nodest_conn"))).toBe(1);
    expect(kernel().sysctls.get(VS("sync_threshold"))).toEqual([2, 20]);
    expect(kernel().sysctls.get("net.ipv4.ip_forward")).toBe(1);
    expect(kernel().timeouts).toEqual({ tcp: 600, tcpfin: 120, udp: 300 });
    expect(kernel().daemons).toMatchObject([{ state: "master", interface: "eth1", syncId: 7 }]);
    expect(fake.log).toContain(`${A} ensureSettings ${OWNER}`);
  });

  it("read reports the kernel's values of the managed items only, so refresh shows drift", async () => {
    const inputs = await checked(args());
    const { id, outs } = await p.create(inputs);
    // Unchanged: read gives back the state (the daemon's defaulted fields and unmanaged timeouts are not compared).
    expect((await p.read!(id, { ...outs, __provider: PROVIDER })).props).toEqual(outs);
    // Out of band: a sysctl, a timeout, the daemon stopped; an unmanaged sysctl and timeout changed too.
    kernel().sysctls.set(VS("expire_nodest_conn"), 0);
    kernel().sysctls.set(VS("sync_threshold"), [3, 50]);
    kernel().sysctls.set(VS("sloppy_tcp"), 1);
    kernel().timeouts = { tcp: 900, tcpfin: 60, udp: 300 };
    kernel().daemons = [];
    const read = (await p.read!(id, { ...outs })).props as Props;
    expect(read.sysctls).toEqual({ connReuseMode: 0, expireNodestConn: false, syncThreshold: { threshold: 3, period: 50 }, dropEntry: 1 });
    expect(read.timeouts).toEqual({ tcp: 900 });
    expect(read.syncDaemons).toEqual([]);
    expect(read.director).toEqual(outs!.director);
    const asked = fake.log.filter((l) => l.startsWith(`${A} getSettings `)).map((l) => l.split(" ")[2]!.split(",").sort());
    expect(asked.at(-1)).toEqual(["net.ipv4.ip_forward", VS("conn_reuse_mode"), VS("drop_entry"), VS("expire_nodest_conn"), VS("sync_threshold")]);
    // The next diff sees the drift as an in-place update.
    expect(diffDirectorSettings(id, read, await checked(args()))).toMatchObject({ changes: true, replaces: [] });
  });

  it("ftp: read leaves it out while ip_vs_ftp is not loaded (removed by hand, a reboot), so the next diff loads it again", async () => {
    // The in-memory director loads no module: as a director whose ip_vs_ftp was unloaded after the create.
    const inputs = await checked(args({ ftp: { ports: [21] } }));
    const { id, outs } = await p.create(inputs);
    expect(outs).toMatchObject({ ftp: { ports: [21] } });
    const read = (await p.read!(id, { ...outs })).props as Props;
    expect(read).not.toHaveProperty("ftp");
    expect(diffDirectorSettings(id, read, inputs)).toMatchObject({ changes: true, replaces: [] });
  });

  it("a defense mode the kernel switched between its automatic 1 and 2 is no drift", async () => {
    const { id, outs } = await p.create(await checked(args()));
    kernel().sysctls.set(VS("drop_entry"), 2);
    expect(((await p.read!(id, { ...outs })).props as Props).sysctls).toMatchObject({ dropEntry: 1 });
    kernel().sysctls.set(VS("drop_entry"), 3);
    expect(((await p.read!(id, { ...outs })).props as Props).sysctls).toMatchObject({ dropEntry: 3 });
  });

  it("update in place: new values set, dropped items put back to what was there before create", async () => {
    kernel().sysctls.set(VS("expire_nodest_conn"), 0);
    const { id, outs } = await p.create(await checked(args()));
    const news = await checked(args({ sysctls: { connReuseMode: 2 }, timeouts: undefined, syncDaemons: [], ipForward: undefined }));
    expect(diffDirectorSettings(id, outs, news)).toEqual({ changes: true, replaces: [], deleteBeforeReplace: true });
    const r = await p.update!(id, { ...outs, __provider: PROVIDER }, news);
    expect(r.outs).toMatchObject({ sysctls: { connReuseMode: 2 }, syncDaemons: [] });
    expect(kernel().sysctls.get(VS("conn_reuse_mode"))).toBe(2);
    expect(kernel().sysctls.get(VS("expire_nodest_conn"))).toBe(0);
    expect(kernel().sysctls.get(VS("sync_threshold"))).toEqual([3, 50]);
    expect(kernel().sysctls.get("net.ipv4.ip_forward")).toBe(0);
    expect(kernel().timeouts.tcp).toBe(900);
    expect(kernel().daemons).toEqual([]);
  });

  it("delete puts back every value found before create, and the director is free again", async () => {
    kernel().sysctls.set(VS("conn_reuse_mode"), 2);
    const { id, outs } = await p.create(await checked(args()));
    await p.delete!(id, { ...outs, __provider: PROVIDER });
    expect(kernel().sysctls.get(VS("conn_reuse_mode"))).toBe(2);
    expect(kernel().sysctls.get(VS("expire_nodest_conn"))).toBe(0);
    expect(kernel().timeouts).toEqual({ tcp: 900, tcpfin: 120, udp: 300 });
    expect(kernel().daemons).toEqual([]);
    expect(kernel().record).toBeNull();
  });

  it("a renamed stack takes its settings along, and they still restore to the values before the first create", async () => {
    kernel().sysctls.set(VS("conn_reuse_mode"), 2);
    const { id, outs } = await p.create(await checked(args()));
    const news = await checked(args({ owner: "acme/lb/production" }));
    const sent = fake.log.length;
    await p.update!(id, { ...outs }, news);
    // One ensure moving the record (nothing put back in between), no delete as the old owner.
    expect(fake.log.slice(sent)).toEqual([`${A} ensureSettings acme/lb/production {"formerOwner":"${OWNER}"}`]);
    expect(kernel().record?.owner).toBe("acme/lb/production");
    expect(kernel().sysctls.get(VS("conn_reuse_mode"))).toBe(0);
    await p.delete!(id, news);
    expect(kernel().sysctls.get(VS("conn_reuse_mode"))).toBe(2);
  });
});

describe("failures", () => {
  it("a second stack is refused, naming the one that holds the settings, with what to do", async () => {
    await p.create(await checked(args()));
    const e = await failure(p.create(await checked(args({ owner: "acme/other/dev" }))));
    expect(e.message).toBe(
      `DirectorSettings on ops@${A}: create failed: ipvs-helper on ${A}: the settings of this director are held by stack ${OWNER}. ` +
        "Another stack holds this director's settings (a director has one stack's settings): destroy its DirectorSettings first.",
    );
    expect(e).not.toHaveProperty("id"); // nothing changed: nothing to record
    expect(kernel().sysctls.get(VS("conn_reuse_mode"))).toBe(0);
  });

  it("a sysctl this kernel lacks names the field to leave out", async () => {
    kernel().missing.add(VS("lblc_expiration"));
    const e = await failure(p.create(await checked(args({ sysctls: { lblcExpiration: 3600, connReuseMode: 0 } }))));
    expect(e.message).toMatch(/net\.ipv4\.vs\.lblc_expiration does not exist on this kernel.* Leave sysctls\.lblcExpiration out for this director\.$/);
    expect(kernel().sysctls.get(VS("conn_reuse_mode"))).toBe(1);
  });

  it("a create that may have changed something is recorded, so destroy puts the originals back", async () => {
    fake.refuse.set(`${A} ensureSettings`, new HelperError(A, "INVALID", "writing net.ipv4.vs.est_cpulist failed: EINVAL."));
    const inputs = await checked(args());
    const e = await failure(p.create(inputs));
    expect(e.message).toMatch(/^DirectorSettings on ops@203\.0\.113\.5:22: create failed: .*EINVAL\.$/);
    expect(e.id).toBe(`settings@${A}`);
    expect(e.properties).toMatchObject({ sysctls: inputs.sysctls, __provider: PROVIDER });
  });

  it("a failed update that may have changed something keeps the old settings in state (the next up retries) with the new credentials", async () => {
    const { id, outs } = await p.create(await checked(args()));
    const lost = new DirectorError("helper", `admin@${A}`, `ensureSettings on admin@${A}: the connection closed; it may have been applied.`, true);
    fake.refuse.set(`${A} ensureSettings`, lost);
    const news = await checked(args({ sysctls: { connReuseMode: 3 }, director: director({ user: "admin" }) }));
    const e = await failure(p.update!(id, { ...outs }, news));
    expect(e.message).toMatch(/^DirectorSettings on admin@203\.0\.113\.5:22: update failed: ensureSettings on admin@203\.0\.113\.5:22: the connection closed/);
    expect(e.properties).toMatchObject({ sysctls: outs!.sysctls, director: { user: "admin" }, __provider: PROVIDER });
  });

  // Issue 26 item 4: a failure before anything reached the director leaves no half-created resource in state, which
  // a later up would delete with the wrong settings (the old host key, the old port).
  it.each([
    ["unreachable", () => fake.down.add(A)],
    ["host key refused", () => fake.refuse.set(`${A} ensureSettings`, new DirectorError("hostKey", `ops@${A}`, `host key mismatch for ops@${A}: …`))],
    ["sudo wants a password", () => fake.refuse.set(`${A} ensureSettings`, new DirectorError("sudoPassword", `ops@${A}`, `sudo on ops@${A} requires a password; …`))],
  ])("a create or update that reached nothing (%s) is a plain error: nothing recorded, state unchanged", async (_what, breakIt) => {
    const { id, outs } = await p.create(await checked(args()));
    breakIt();
    const created = await failure(p.create(await checked(args())));
    expect(created.message).toMatch(/^DirectorSettings on ops@203\.0\.113\.5:22: create failed: /);
    expect(created).not.toHaveProperty("id");
    const updated = await failure(p.update!(id, { ...outs }, await checked(args({ sysctls: { connReuseMode: 3 } }))));
    expect(updated.message).toMatch(/^DirectorSettings on ops@203\.0\.113\.5:22: update failed: /);
    expect(updated).not.toHaveProperty("id");
    expect(updated).not.toHaveProperty("properties");
  });

  it("read and delete failures name the director", async () => {
    const { id, outs } = await p.create(await checked(args()));
    fake.down.add(A);
    expect((await failure(p.read!(id, { ...outs }))).message).toMatch(/^DirectorSettings on ops@203\.0\.113\.5:22: read failed: cannot reach/);
    expect((await failure(p.delete!(id, { ...outs }))).message).toMatch(/^DirectorSettings on ops@203\.0\.113\.5:22: delete failed: cannot reach/);
  });

  it("check never connects", async () => {
    fake.down.add(A);
    await checked(args());
    expect(fake.log).toEqual([]);
  });
});

describe("diff", () => {
  const state = async (over: Props = {}) => (await p.create(await checked(args(over)))).outs as Props;
  it("a director host or port change replaces (delete first: the old director gets its values back)", async () => {
    const olds = await state();
    expect(diffDirectorSettings("x", olds, await checked(args({ director: director({ host: "203.0.113.6" }) })))).toEqual({
      changes: true, replaces: ["director"], deleteBeforeReplace: true,
    });
    expect(diffDirectorSettings("x", olds, await checked(args({ director: director({ port: 2222 }) }))).replaces).toEqual(["director"]);
    expect(diffDirectorSettings("x", olds, { ...(await checked(args())), director: U }).replaces).toEqual(["director"]);
  });
  it("credentials change in place; the same settings written differently are no change", async () => {
    const olds = await state();
    expect(diffDirectorSettings("x", olds, await checked(args({ director: director({ user: "admin" }) })))).toMatchObject({ changes: true, replaces: [] });
    const same = args({
      syncDaemons: [{ state: "master", interface: "eth1", syncId: 7 }],
      ipForward: { ipv4: true, ipv6: undefined },
      timeouts: { tcp: 600, udp: undefined },
    });
    expect(diffDirectorSettings("x", olds, await checked(same))).toMatchObject({ changes: false, replaces: [] });
  });
  it("an unknown setting at preview is a change, not a replacement", async () => {
    const olds = await state();
    expect(diffDirectorSettings("x", olds, await checked(args({ sysctls: { connReuseMode: U } })))).toMatchObject({ changes: true, replaces: [] });
  });
});

describe("the resource", () => {
  it("passes the stack as owner and the director's credentials as secrets", async () => {
    const registered: { type: string; inputs: Props }[] = [];
    await pulumi.runtime.setMocks(
      { newResource: (a) => (registered.push(a), { id: `${a.name}-id`, state: a.inputs }), call: () => ({}) },
      "lb", "prod", false, "acme",
    );
    const { DirectorSettings } = await import("../../src/directorSettings");
    const r = new DirectorSettings("s", { director: { host: "h", privateKey: "KEY" }, sysctls: { connReuseMode: 0 } });
    await new Promise<void>((done) => r.urn.apply(() => done()));
    const [{ type, inputs }] = registered as [{ type: string; inputs: Props }];
    expect(type).toBe("pulumi-nodejs:dynamic/ipvs:DirectorSettings");
    expect(inputs).toMatchObject({ owner: "acme/lb/prod", sysctls: { connReuseMode: 0 } });
    expect(inputs.director).toEqual({ [pulumi.runtime.specialSigKey]: pulumi.runtime.specialSecretSig, value: { host: "h", privateKey: "KEY" } });
    expect(await (r.director as unknown as { isSecret: Promise<boolean> }).isSecret).toBe(true);
  });
});
