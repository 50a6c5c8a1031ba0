// One VirtualService / RealServer on two real lab directors: fan-out, directors added and removed in place, and
// partial failures recorded honestly (which director, which directors hold the entry), then converged by the next up
// without touching the director that was already right.
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import type { Director } from "../../provider/director";
import { closeAllSessions } from "../../provider/session";
import { addRealServers, addVip, openLongConnection } from "../lab/realServers";
import { startDirector, type LabDirector } from "../lab/director";
import { ipvsadm, ipvsadmSave } from "../lab/ipvsadm";
import {
  PROVIDER,
  check,
  create,
  createFails,
  destroy,
  labDirector,
  lines,
  read,
  serviceRef,
  update,
  updateFails,
  type Managed,
  type Props,
} from "./providerEngine";

/** What each director's helper answered to ensure* operations: the real helper, only observed. */
const ensureLog: Array<{ director: string; op: string; changed?: boolean; error?: string }> = [];

vi.mock("../../provider/helperClient", async (importOriginal) => {
  const m = await importOriginal<typeof import("../../provider/helperClient")>();
  return {
    ...m,
    directorOps: (d: Director) => {
      const ops = m.directorOps(d);
      const director = `${d.host}:${d.port}`;
      const observe =
        <A extends unknown[], R extends { changed: boolean }>(op: string, fn: (...a: A) => Promise<R>) =>
        async (...args: A): Promise<R> => {
          try {
            const r = await fn(...args);
            ensureLog.push({ director, op, changed: r.changed });
            return r;
          } catch (e) {
            ensureLog.push({ director, op, error: (e as Error).message });
            throw e;
          }
        };
      return { ...ops, ensureService: observe("ensureService", ops.ensureService), ensureDest: observe("ensureDest", ops.ensureDest) };
    },
  };
});

let A: LabDirector;
let B: LabDirector;
const VIP = "192.0.2.60";
/** Short connect timeout: the down-director test should give up in seconds. */
const dirA = () => labDirector(A, { connectTimeoutSeconds: 5 });
const dirB = () => labDirector(B, { connectTimeoutSeconds: 5 });
const key = (d: LabDirector) => `127.0.0.1:${d.port}`;
/** How failure messages name a director: user@host:port. */
const label = (d: LabDirector) => `${d.user}@${key(d)}`;
const save = async (d: LabDirector) => lines(await ipvsadmSave(d));
const recordedDirectors = (ds: unknown) => (ds as Props[]).map((d) => `${d.host as string}:${d.port as number}`).sort();
const sorted = (...ds: LabDirector[]) => ds.map(key).sort();

beforeAll(async () => {
  [A, B] = await Promise.all([startDirector(), startDirector()]);
});

afterAll(async () => {
  closeAllSessions();
  await Promise.all([A?.stop(), B?.stop()]);
});

beforeEach(() => {
  ensureLog.length = 0;
});

describe("two directors", () => {
  it("one service on both: the same kernel entries on each, read back from both", async () => {
    const vs = await create("VirtualService", { directors: [dirB(), dirA()], address: VIP, port: 80, scheduler: "rr" });
    expect(vs.id).toBe(`tcp/${VIP}:80@${sorted(A, B).join(",")}`);
    const rs = await create("RealServer", { service: serviceRef(vs), address: "10.10.0.11", weight: 3 });
    const want = [`-A -t ${VIP}:80 -s rr`, `-a -t ${VIP}:80 -r 10.10.0.11:80 -m -w 3`];
    expect(await save(A)).toEqual(want);
    expect(await save(B)).toEqual(want);
    expect(ensureLog.filter((e) => e.changed).map((e) => `${e.director} ${e.op}`).sort()).toEqual(
      [`${key(A)} ensureDest`, `${key(A)} ensureService`, `${key(B)} ensureDest`, `${key(B)} ensureService`].sort(),
    );
    const got = await read(vs);
    expect(got.id).toBe(vs.id);
    expect(recordedDirectors(got.props!.directors)).toEqual(sorted(A, B));
    // Drift on one director shows in read, so the next up sees it.
    await ipvsadm(B, `-e -t ${VIP}:80 -r 10.10.0.11:80 -m -w 7`);
    expect((await read(rs)).props).toMatchObject({ weight: 7 });
    await destroy(rs);
    await destroy(vs);
    expect(await save(A)).toEqual([]);
    expect(await save(B)).toEqual([]);
  });

  it("adds a director by update (created there, untouched on the other) and removes one (deleted there)", async () => {
    const vsArgs = { directors: [dirA()], address: VIP, port: 80, scheduler: "wrr" };
    let vs = await create("VirtualService", vsArgs);
    let rs = await create("RealServer", { service: serviceRef(vs), address: "10.10.0.12" });
    const onA = await save(A);
    expect(await save(B)).toEqual([]);
    ensureLog.length = 0;

    // The engine updates the service first, then its real server (whose service input follows the service's outputs).
    vs = await update(vs, { ...vsArgs, directors: [dirA(), dirB()] });
    rs = await update(rs, { service: serviceRef(vs), address: "10.10.0.12" });
    expect(await save(B)).toEqual(onA);
    expect(await save(A)).toEqual(onA);
    expect(ensureLog).toEqual(
      expect.arrayContaining([
        { director: key(A), op: "ensureService", changed: false },
        { director: key(B), op: "ensureService", changed: true },
        { director: key(A), op: "ensureDest", changed: false },
        { director: key(B), op: "ensureDest", changed: true },
      ]),
    );
    expect(ensureLog).toHaveLength(4);
    expect(recordedDirectors(vs.state.directors)).toEqual(sorted(A, B));
    expect(recordedDirectors((rs.state.service as Props).directors)).toEqual(sorted(A, B));

    ensureLog.length = 0;
    vs = await update(vs, { ...vsArgs, directors: [dirB()] });
    rs = await update(rs, { service: serviceRef(vs), address: "10.10.0.12" });
    expect(await save(A)).toEqual([]);
    expect(await save(B)).toEqual(onA);
    expect(ensureLog.map((e) => [e.director, e.changed])).toEqual([
      [key(B), false],
      [key(B), false],
    ]);
    expect(recordedDirectors(vs.state.directors)).toEqual([key(B)]);
    expect((await read(rs)).props).toMatchObject({ service: { directors: [expect.objectContaining({ port: B.port })] } });
    await destroy(rs);
    await destroy(vs);
    expect(await save(B)).toEqual([]);
  });

  it("a conflicting entry on one director: create reports that director, records only the other; the next up converges", async () => {
    await ipvsadm(B, `-A -t ${VIP}:80 -s sh`);
    const args = { directors: [dirA(), dirB()], address: VIP, port: 80, scheduler: "rr" };
    const err = await createFails("VirtualService", args);
    expect(err.message).toContain(`VirtualService tcp/${VIP}:80: create failed on 1 of 2 director(s)`);
    expect(err.message).toContain(`- ${label(B)}: `);
    expect(err.message).not.toContain(`- ${label(A)}: `);
    expect(err.message).toMatch(/already exists/);
    expect(err.message).toMatch(/adopt: true/);
    // An init failure: the engine records the resource with these properties.
    expect(err.id).toBe(`tcp/${VIP}:80@${sorted(A, B).join(",")}`);
    expect(recordedDirectors(err.properties!.directors)).toEqual([key(A)]);
    expect(err.properties!.__provider).toBe(PROVIDER);
    expect(err.properties).toMatchObject({ address: VIP, port: 80, scheduler: "rr" });
    expect(await save(A)).toEqual([`-A -t ${VIP}:80 -s rr`]);
    expect(await save(B)).toEqual([`-A -t ${VIP}:80 -s sh`]);

    let vs: Managed = { kind: "VirtualService", id: err.id!, inputs: await check("VirtualService", undefined, args), state: err.properties! };
    // The next up, conflict still there: fails again the same way, A untouched.
    ensureLog.length = 0;
    const again = await updateFails(vs, args);
    expect(again.err.message).toContain(`- ${label(B)}: `);
    expect(recordedDirectors(again.err.properties!.directors)).toEqual([key(A)]);
    expect(ensureLog.find((e) => e.director === key(A))).toEqual({ director: key(A), op: "ensureService", changed: false });
    vs = { ...vs, state: again.err.properties! };
    expect(await save(B)).toEqual([`-A -t ${VIP}:80 -s sh`]);

    // The user takes the foreign entry over: B is brought to the desired settings, A is left alone.
    ensureLog.length = 0;
    vs = await update(vs, { ...args, adopt: true });
    expect(await save(B)).toEqual([`-A -t ${VIP}:80 -s rr`]);
    expect(await save(A)).toEqual([`-A -t ${VIP}:80 -s rr`]);
    expect(ensureLog.map((e) => [e.director, e.changed]).sort()).toEqual([
      [key(A), false],
      [key(B), true],
    ].sort());
    expect(recordedDirectors(vs.state.directors)).toEqual(sorted(A, B));

    // Same for a real server, converged by removing the foreign dest instead.
    await ipvsadm(B, `-a -t ${VIP}:80 -r 10.10.0.13:80 -g -w 9`);
    const rsArgs = { service: serviceRef(vs), address: "10.10.0.13" };
    const rsErr = await createFails("RealServer", rsArgs);
    expect(rsErr.message).toContain(`- ${label(B)}: `);
    expect(rsErr.message).toMatch(/already exists/);
    expect(rsErr.id).toBe(`tcp/${VIP}:80/10.10.0.13:80@${sorted(A, B).join(",")}`);
    expect(recordedDirectors((rsErr.properties!.service as Props).directors)).toEqual([key(A)]);
    expect(rsErr.properties!.__provider).toBe(PROVIDER);
    const rsOnA = await save(A);
    await ipvsadm(B, `-d -t ${VIP}:80 -r 10.10.0.13:80`);
    ensureLog.length = 0;
    const rs = await update({ kind: "RealServer", id: rsErr.id!, inputs: await check("RealServer", undefined, rsArgs), state: rsErr.properties! }, rsArgs);
    expect(ensureLog.map((e) => [e.director, e.changed]).sort()).toEqual([
      [key(A), false],
      [key(B), true],
    ].sort());
    expect(await save(A)).toEqual(rsOnA);
    expect(await save(B)).toEqual(rsOnA);
    await destroy(rs);
    await destroy(vs);
    expect(await save(A)).toEqual([]);
    expect(await save(B)).toEqual([]);
  });

  it("a director removed from a service with drain: its real servers drain there before the service goes", async () => {
    const [server] = await addRealServers(B, 1);
    await addVip(B, VIP);
    const args = { directors: [dirA(), dirB()], address: VIP, port: 80, scheduler: "rr", drain: { timeoutSeconds: 120 } };
    let vs = await create("VirtualService", args);
    const rs = await create("RealServer", { service: serviceRef(vs), address: server!.address, weight: 4 });
    const conn = await openLongConnection(B, VIP, 80);
    const destOnB = async () => (await save(B)).find((l) => l.includes(`-r ${server!.address}:80 `));
    const events: string[] = [];
    const updating = update(vs, { ...args, directors: [dirA()] }).then(
      (u) => {
        events.push("updated");
        return u;
      },
      (e: unknown) => {
        events.push(`failed: ${(e as Error).message}`);
        throw e;
      },
    );
    const deadline = Date.now() + 60_000; // a bound for a hung test, not a timing assertion
    while ((await destOnB())?.endsWith("-m -w 0") !== true && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    expect(await save(B)).toEqual([`-A -t ${VIP}:80 -s rr`, `-a -t ${VIP}:80 -r ${server!.address}:80 -m -w 0`]);
    expect(events).toEqual([]);
    events.push("closing");
    await conn.close();
    vs = await updating;
    expect(events).toEqual(["closing", "updated"]);
    expect(await save(B)).toEqual([]);
    expect(await save(A)).toEqual([`-A -t ${VIP}:80 -s rr`, `-a -t ${VIP}:80 -r ${server!.address}:80 -m -w 4`]);
    await destroy({ ...rs, state: { ...rs.state, service: serviceRef(vs) } });
    await destroy(vs);
    expect(await save(A)).toEqual([]);
  });

  it("a director that is down: the update says which and why, and state keeps it where the entry may still be", async () => {
    const args = { directors: [dirA(), dirB()], address: VIP, port: 80, scheduler: "rr" };
    const vs = await create("VirtualService", args);
    await B.stop();
    const { err } = await updateFails(vs, { ...args, directors: [dirA()] });
    expect(err.message).toContain(`VirtualService tcp/${VIP}:80: update failed on 1 of 2 director(s)`);
    expect(err.message).toContain(`- ${label(B)}: `);
    expect(err.message).toMatch(/cannot reach/);
    // The removal from B did not happen: B still counts as holding the entry.
    expect(err.id).toBe(vs.id);
    expect(recordedDirectors(err.properties!.directors)).toEqual(sorted(A, B));
    expect(err.properties!.__provider).toBe(PROVIDER);
    expect(await save(A)).toEqual([`-A -t ${VIP}:80 -s rr`]);
    // Reading with a director down fails and says which one (rather than reporting the entry gone from it).
    const readErr = await providersRead(vs);
    expect(readErr).toContain(`- ${label(B)}: `);
  });
});

async function providersRead(r: Managed): Promise<string> {
  return read(r).then(
    () => "read succeeded",
    (e: unknown) => (e as Error).message,
  );
}
