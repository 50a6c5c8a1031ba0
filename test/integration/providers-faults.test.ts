// Faults against a real lab director (wrong host key, sudo that wants a password, nothing listening) fail with a
// message naming the director and the cause, change nothing in the kernel table and never show the private key;
// and graceful drain: a RealServer with drain waits for its live connections (weight 0 meanwhile) before it goes.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { closeAllSessions } from "../../provider/session";
import { startDirector, type LabDirector } from "../lab/director";
import { ipvsadm, ipvsadmSave } from "../lab/ipvsadm";
import { addRealServers, addVip, openLongConnection, type LabRealServer, type LongConnection } from "../lab/realServers";
import {
  PROVIDER,
  create,
  destroy,
  labDirector,
  lines,
  read,
  rejection,
  serviceRef,
  update,
  type Managed,
  type Props,
} from "./providerEngine";
import { providers } from "../../provider/index";

let lab: LabDirector;
let keyText: string;

beforeAll(async () => {
  lab = await startDirector();
  keyText = readFileSync(lab.privateKeyPath, "utf8");
});

afterAll(async () => {
  closeAllSessions();
  await lab?.stop();
});

/** A port on loopback where nothing listens (bound, then released). */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

/** No piece of the private key (whole, or any line of it) in `text`. */
function expectNoSecret(text: string): void {
  expect(text).not.toContain(keyText.trim());
  for (const line of keyText.split("\n").map((l) => l.trim()).filter((l) => l.length >= 8 && !l.startsWith("-----")))
    expect(text).not.toContain(line);
}

describe("faults: clear message, nothing changed, no secret shown", () => {
  const VIP = "192.0.2.70";
  let good: Managed;
  let goodRs: Managed;
  let strangerHostKey: string;

  beforeAll(async () => {
    const scratch = mkdtempSync(path.join(tmpdir(), "providers-faults-"));
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path.join(scratch, "stranger")]);
    strangerHostKey = readFileSync(path.join(scratch, "stranger.pub"), "utf8").trim();
    // Entries the faulty directors' operations would touch if anything got through.
    good = await create("VirtualService", { directors: [labDirector(lab, { privateKeyPath: undefined, privateKey: keyText })], address: VIP, port: 80, scheduler: "rr" });
    goodRs = await create("RealServer", { service: serviceRef(good), address: "10.10.0.11", weight: 2 });
    await ipvsadm(lab, "-A -t 192.0.2.71:80 -s wlc");
  });

  const cases: Array<{ name: string; director: () => Promise<Props>; cause: RegExp; target: () => string }> = [
    {
      name: "a wrong pinned host key",
      director: async () => labDirector(lab, { privateKeyPath: undefined, privateKey: keyText, hostKey: strangerHostKey }),
      cause: /host key/i,
      target: () => `127.0.0.1:${lab.port}`,
    },
    {
      name: "a user whose sudo wants a password",
      director: async () => labDirector(lab, { privateKeyPath: undefined, privateKey: keyText, user: "needpw" }),
      cause: /sudo on needpw@127\.0\.0\.1:\d+ requires a password/,
      target: () => `127.0.0.1:${lab.port}`,
    },
    {
      name: "a port where nothing listens",
      director: async () => ({ ...labDirector(lab, { privateKeyPath: undefined, privateKey: keyText, connectTimeoutSeconds: 2 }), port: await closedPort() }),
      cause: /cannot reach .*ECONNREFUSED|cannot reach .*refused/i,
      target: () => "",
    },
  ];

  for (const c of cases) {
    it(`${c.name}: create, update, read and delete all fail naming the director and the cause`, async () => {
      const director = await c.director();
      const where = c.target() || `127.0.0.1:${director.port as number}`;
      const before = await ipvsadmSave(lab);
      const messages: string[] = [];
      const expectClear = (err: Error & Props) => {
        expect(err.message).toContain(where);
        expect(err.message).toMatch(c.cause);
        expectNoSecret(err.message);
        expectNoSecret(JSON.stringify((err as { reasons?: unknown }).reasons ?? []));
        messages.push(err.message);
      };

      // create: a new service there, and a real server into the existing one.
      const inputs = (await providers.VirtualService!.check!({}, { directors: [director], address: "192.0.2.72", port: 80, __provider: PROVIDER })).inputs as Props;
      expectClear(await rejection(providers.VirtualService!.create(inputs)));
      const rsInputs = (await providers.RealServer!.check!({}, {
        service: { ...serviceRef(good), directors: [director] }, address: "10.10.0.12", __provider: PROVIDER,
      })).inputs as Props;
      expectClear(await rejection(providers.RealServer!.create(rsInputs)));

      // update / read / delete of entries whose state holds the faulty director.
      const checkedDirectors = inputs.directors as Props[]; // as state records them
      const badVs: Managed = { ...good, state: { ...good.state, directors: checkedDirectors } };
      const updErr = await rejection(providers.VirtualService!.update!(badVs.id, badVs.state, { ...badVs.state, scheduler: "lc" }));
      expectClear(updErr);
      // Nothing reached the director: a plain error, no partial state (the engine keeps the resource as it was).
      expect(updErr.id).toBeUndefined();
      expect(updErr.properties).toBeUndefined();
      expectClear(await rejection(read(badVs)));
      expectClear(await rejection(destroy(badVs)));
      const badRs: Managed = { ...goodRs, state: { ...goodRs.state, service: { ...(goodRs.state.service as Props), directors: checkedDirectors } } };
      expectClear(await rejection(destroy(badRs)));
      expectClear(await rejection(read(badRs)));

      expect(await ipvsadmSave(lab)).toBe(before);
      expect(messages).toHaveLength(7);
    });
  }

  it("the good director still works after all that", async () => {
    good = await update(good, { directors: [labDirector(lab)], address: VIP, port: 80, scheduler: "lc" });
    expect(lines(await ipvsadmSave(lab))).toContain(`-A -t ${VIP}:80 -s lc`);
    await destroy(goodRs);
    await destroy(good);
    expect(lines(await ipvsadmSave(lab))).toEqual(["-A -t 192.0.2.71:80 -s wlc"]);
    await ipvsadm(lab, "-C");
  });
});

describe("drain", () => {
  const VIP = "192.0.2.80";
  let servers: LabRealServer[];
  let vs: Managed;

  const destLine = async (s: LabRealServer) => lines(await ipvsadmSave(lab)).find((l) => l.includes(`-r ${s.address}:80 `));
  const activeConns = async (s: LabRealServer) => {
    const m = new RegExp(`->\\s+${s.address.replace(/\./g, "\\.")}:80\\s+\\S+\\s+\\d+\\s+(\\d+)`).exec(await ipvsadm(lab, "-Ln --exact"));
    return m ? Number(m[1]) : undefined;
  };
  const established = async () =>
    Number((await lab.exec(`/sbin/ip netns exec labclient netstat -tn | grep ' ${VIP}:80 ' | grep -c ESTABLISHED || true`)).stdout.trim());
  /** Polls `probe` until it returns true; fails after 30 s (a bound for a hung test, not a timing assertion). */
  const until = async (what: string, probe: () => Promise<boolean>) => {
    const deadline = Date.now() + 30_000;
    while (!(await probe())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  const open: LongConnection[] = [];

  afterEach(async () => {
    // Whatever a failed test left behind: its connections and dests, so the next one starts from the bare service.
    // abort, not close: a connection whose dest is gone never sees its FIN answered (IPVS drops it).
    for (const c of open.splice(0)) await c.abort();
    for (const s of servers) await lab.exec(`ipvsadm -d -t ${VIP}:80 -r ${s.address}:80 2>/dev/null || true`);
  });

  beforeAll(async () => {
    servers = await addRealServers(lab, 2);
    await addVip(lab, VIP);
    vs = await create("VirtualService", { directors: [labDirector(lab)], address: VIP, port: 80, scheduler: "rr" });
  });

  it("delete waits at weight 0 while a connection is live, and completes once it ends", async () => {
    const rs = await create("RealServer", { service: serviceRef(vs), address: servers[0]!.address, weight: 5, drain: { timeoutSeconds: 30 } });
    const conn = await openLongConnection(lab, VIP, 80);
    open.push(conn);
    await until("the connection to show as active on the real server", async () => (await activeConns(servers[0]!)) === 1);

    const events: string[] = [];
    const deleting = destroy(rs).then(
      () => events.push("deleted"),
      (e: unknown) => events.push(`delete failed: ${(e as Error).message}`),
    );
    await until("weight 0", async () => (await destLine(servers[0]!))?.endsWith("-m -w 0") === true);
    events.push("weight 0");
    // Still there, still at weight 0, still draining, for several polls of the provider's own (1 s) drain loop.
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 500));
      expect(await destLine(servers[0]!)).toBe(`-a -t ${VIP}:80 -r ${servers[0]!.address}:80 -m -w 0`);
      expect(events).toEqual(["weight 0"]);
    }
    expect(await activeConns(servers[0]!)).toBe(1);
    // Recorded before closing: the drain may see the connection end (and delete) before close() has returned.
    events.push("closing the connection");
    await conn.close();
    await deleting;
    expect(events).toEqual(["weight 0", "closing the connection", "deleted"]);
    expect(await destLine(servers[0]!)).toBeUndefined();
    expect(lines(await ipvsadmSave(lab))).toEqual([`-A -t ${VIP}:80 -s rr`]);
  });

  it("with a short timeout the dest is removed even though the connection is still open", async () => {
    const rs = await create("RealServer", { service: serviceRef(vs), address: servers[1]!.address, drain: { timeoutSeconds: 2 } });
    const conn = await openLongConnection(lab, VIP, 80);
    open.push(conn);
    await until("the connection to show as active on the real server", async () => (await activeConns(servers[1]!)) === 1);
    await destroy(rs);
    expect(await destLine(servers[1]!)).toBeUndefined();
    // What the product promises: the dest went although the client's connection had not ended.
    expect(await established()).toBeGreaterThan(0);
    // With its dest gone IPVS drops the connection's packets, FIN included (expire_nodest_conn 0): a graceful close
    // would wait on kernel timeouts the product does not control, so the client is killed instead.
    await conn.abort();
    expect(lines(await ipvsadmSave(lab))).toEqual([`-A -t ${VIP}:80 -s rr`]);
    await destroy(vs);
    expect(lines(await ipvsadmSave(lab))).toEqual([]);
  });
});
