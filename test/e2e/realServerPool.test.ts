// RealServerPool through the real pulumi CLI against a lab director, with examples/large-pool: 200 members in one up
// (every field read back with ipvsadm), preview showing the change per member, an in-place weight change that keeps
// counters and connections under real HTTP, drift seen by refresh and healed by up, the drain of a removed member
// with a live connection, destroy. One stack lifecycle, one VM.
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDirector, type LabDirector } from "../lab/director";
import { ipvsadm, ipvsadmList, ipvsadmSave, ipvsadmStats, waitForStats, type IpvsServiceStats } from "../lab/ipvsadm";
import { addRealServers, addVip, httpRequests, openLongConnection, type LabRealServer, type LongConnection } from "../lab/realServers";
import { E2EStack, repoRoot, type EngineEvent, type OperationResult, labDirectorConfig } from "./harness";

const VIP = "192.0.2.30";
const POOL_TYPE = "pulumi-nodejs:dynamic/ipvs:RealServerPool";
/** Generated members (weight 0, no traffic) that make the pool 200 with the 5 given ones. */
const GENERATED = 195;

/** Ops per resource name from resOutputsEvents (what really happened). */
function outputOps(res: OperationResult): Record<string, string> {
  const ops: Record<string, string> = {};
  for (const e of res.events as EngineEvent[]) {
    const md = (e.resOutputsEvent as { metadata?: { urn: string; op: string; type: string } } | undefined)?.metadata;
    if (md?.type.startsWith("pulumi-nodejs:dynamic/ipvs:")) ops[md.urn.split("::").pop()!] = md.op;
  }
  return ops;
}

/** Polls `probe` until true; fails after boundMs or as soon as `stop()` says it can no longer happen. */
async function until(what: string, probe: () => Promise<boolean>, stop = () => false, boundMs = 60_000): Promise<void> {
  const deadline = Date.now() + boundMs;
  while (!(await probe())) {
    if (stop()) throw new Error(`gave up waiting for ${what}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe("RealServerPool (examples/large-pool) through the pulumi CLI against a lab director", () => {
  let d: LabDirector;
  let servers: LabRealServer[];
  let stack: E2EStack;
  const open: LongConnection[] = [];
  const given = (): Record<string, unknown>[] => [
    { address: servers[0]!.address, port: 80, upperThreshold: 100, lowerThreshold: 10 },
    { address: servers[1]!.address, port: 80, weight: 2 },
    { address: servers[2]!.address, port: 80 },
    { address: "10.30.0.1", forwarding: "tunnel", tunnel: { type: "gre", checksum: "csum" }, weight: 0 },
    { address: "10.30.0.2", forwarding: "dr", weight: 0 },
  ];
  const setMembers = (members: object[]) => stack.setConfig("members", JSON.stringify(members));
  const lineOf = (save: string, address: string) => save.split("\n").find((l) => l.includes(` -r ${address}:`));
  const poolState = async () => (await stack.exportState()).deployment.resources!.find((r) => r.type === POOL_TYPE)!;

  beforeAll(async () => {
    d = await startDirector();
    servers = await addRealServers(d, 3);
    await addVip(d, VIP);
    stack = await E2EStack.create({
      program: path.join(repoRoot, "examples", "large-pool"),
      config: {
        ...labDirectorConfig(d),
        vip: VIP, count: String(GENERATED), generatedWeight: "0",
      },
    });
    await setMembers(given());
  });

  afterAll(async () => {
    for (const c of open.splice(0)) await c.abort();
    await stack?.dispose();
    await d?.stop();
  });

  it("one up creates the service and 200 members; ipvsadm reads back every field; HTTP reaches the real servers", async () => {
    const t0 = Date.now();
    const res = await stack.up();
    const seconds = (Date.now() - t0) / 1000;
    // The pool's own step, from the engine's events (whole seconds): its create, as the provider ran it.
    const at = (kind: string) => res.events.find((e) => (e[kind] as { metadata?: { urn: string } } | undefined)?.metadata?.urn.endsWith("::backends"))!.timestamp;
    console.log(`pulumi up of 1 service + a 200-member RealServerPool: ${seconds.toFixed(1)} s, the pool's create step ${at("resOutputsEvent") - at("resourcePreEvent")} s`);
    expect(outputOps(res)).toEqual({ web: "create", backends: "create" });

    const save = await ipvsadmSave(d);
    expect(save.split("\n").filter((l) => l.startsWith(`-a -t ${VIP}:80 `))).toHaveLength(200);
    expect(lineOf(save, servers[0]!.address)).toBe(`-a -t ${VIP}:80 -r ${servers[0]!.address}:80 -m -w 1`);
    expect(lineOf(save, servers[1]!.address)).toBe(`-a -t ${VIP}:80 -r ${servers[1]!.address}:80 -m -w 2`);
    expect(lineOf(save, "10.30.0.1")).toMatch(/^-a -t \S+ -r 10\.30\.0\.1:80 -i -w 0 .*--tun-type gre.*--tun-csum/);
    expect(lineOf(save, "10.30.0.2")).toBe(`-a -t ${VIP}:80 -r 10.30.0.2:80 -g -w 0`);
    expect(lineOf(save, "10.20.0.195")).toBe(`-a -t ${VIP}:80 -r 10.20.0.195:8080 -m -w 0`);
    const thresholds = await ipvsadmList(d, `-t ${VIP}:80 --thresholds`);
    expect(thresholds).toMatch(new RegExp(`-> ${servers[0]!.address.replace(/\./g, "\\.")}:80\\s+100\\s+10\\s`));

    const state = await poolState();
    expect(Object.keys(state.outputs!.members as object)).toHaveLength(200);
    expect(new Set(await httpRequests(d, VIP, 80, 8))).toEqual(new Set(servers.map((s) => s.name)));
  });

  it("preview shows the member and field that change; up changes one weight in place: counters and connections survive", async () => {
    const held = await openLongConnection(d, VIP, 80);
    open.push(held);
    const ours = (stats: IpvsServiceStats[]) => stats.find((s) => s.service === `TCP ${VIP}:80`);
    const before = ours(await waitForStats(d, (stats) => ours(stats)?.conns === 9))!;

    const members = given();
    members[1] = { ...members[1]!, weight: 5 };
    await setMembers(members);
    const preview = await stack.preview();
    console.log(`preview of one member's weight change:\n${preview.stdout}`);
    expect(preview.stdout).toMatch(new RegExp(`${servers[1]!.address.replace(/\./g, "\\.")}:80"?\\s*: \\{[\\s\\S]{0,300}weight\\s*:\\s*2 => 5`));
    const res = await stack.up();
    expect(outputOps(res)).toEqual({ web: "same", backends: "update" });

    expect(lineOf(await ipvsadmSave(d), servers[1]!.address)).toBe(`-a -t ${VIP}:80 -r ${servers[1]!.address}:80 -m -w 5`);
    const after = ours(await ipvsadmStats(d))!;
    expect(after.conns).toBe(before.conns);
    expect(after.realServers.map((r) => [r.address, r.conns])).toEqual(before.realServers.map((r) => [r.address, r.conns]));
    expect((await ipvsadm(d, "-Lnc")).split("\n").filter((l) => /ESTABLISHED/.test(l) && l.includes(`${VIP}:80`))).toHaveLength(1);
    await held.close();
    open.splice(open.indexOf(held), 1);
  });

  it("refresh sees drift per member (an edited weight, a deleted member), and up heals it", async () => {
    await ipvsadm(d, `-e -t ${VIP}:80 -r ${servers[0]!.address}:80 -m -w 9 -x 100 -y 10`);
    await ipvsadm(d, `-d -t ${VIP}:80 -r 10.20.0.7:8080`);
    const refresh = await stack.refresh();
    expect(outputOps(refresh)).toMatchObject({ backends: "update" });
    const members = (await poolState()).outputs!.members as Record<string, { weight: number }>;
    expect(members[`${servers[0]!.address}:80`]!.weight).toBe(9);
    expect(members["10.20.0.7:8080"]).toBeUndefined();

    await stack.up();
    const save = await ipvsadmSave(d);
    expect(lineOf(save, servers[0]!.address)).toBe(`-a -t ${VIP}:80 -r ${servers[0]!.address}:80 -m -w 1`);
    expect(lineOf(save, "10.20.0.7")).toBe(`-a -t ${VIP}:80 -r 10.20.0.7:8080 -m -w 0`);
  });

  it("a removed member with a live connection drains (weight 0) until the connection ends, then goes", async () => {
    const conn = await openLongConnection(d, VIP, 80);
    open.push(conn);
    const entry = (await ipvsadm(d, "-Lnc")).split("\n").find((l) => l.includes(`:${conn.localPort} `) && /ESTABLISHED/.test(l))!;
    const target = servers.find((s) => entry.includes(` ${s.address}:80`))!;
    expect(target, entry).toBeDefined();
    await setMembers(given().filter((m) => m.address !== target.address).map((m) => (m.address === servers[1]!.address ? { ...m, weight: 5 } : m)));

    let settled = false;
    const up = stack.cli(["up", "--yes", "--skip-preview", "--non-interactive"]).finally(() => (settled = true));
    up.catch(() => {});
    // The drain (30 s in the example) is waiting on the connection: the member is still there, at weight 0.
    await until("the removed member at weight 0", async () => lineOf(await ipvsadmSave(d), target.address)?.endsWith(" -w 0") ?? false, () => settled);
    expect(settled).toBe(false);
    await conn.close();
    open.splice(open.indexOf(conn), 1);
    const res = await up;
    expect(res.stdout).toMatch(/drained 1 real server\(s\) of tcp\/192\.0\.2\.30:80/);
    const save = await ipvsadmSave(d);
    expect(lineOf(save, target.address)).toBeUndefined();
    expect(save.split("\n").filter((l) => l.startsWith(`-a -t ${VIP}:80 `))).toHaveLength(199);
  });

  it("destroy removes the pool and the service", async () => {
    const res = await stack.destroy();
    expect(outputOps(res)).toEqual({ web: "delete", backends: "delete" });
    expect(await ipvsadmSave(d)).not.toContain(VIP);
  });
});
