// The helper client's failure rules through a seam: a real DirectorSession whose openChannel hands out scripted fake
// channels, so a lost answer, a hung helper or a silent start script happen exactly when the test says.
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Director } from "../../provider/director";
import { HelperClient, MAX_ANSWER_CHARS } from "../../provider/helperClient/client";
import { MAX_NOISE, START_MARKER } from "../../provider/helperClient/scripts";
import { HelperError, type Op, type Request, type WireResult } from "../../provider/protocol";
import { DirectorError, DirectorSession, reachedNothing, type SshChannel } from "../../provider/session";
import { FakeChannel } from "./fakeChannel";

/** One `ipvs-helper serve` channel: `answer` decides what each request line gets (undefined = no answer). */
class HelperChannel extends FakeChannel {
  readonly requests: Request[] = [];
  private seen = 0;
  constructor(private readonly answer: (req: Request, ch: HelperChannel) => WireResult[] | undefined) {
    super();
  }
  protected override received(): void {
    let nl: number;
    while ((nl = this.written.indexOf("\n", this.seen)) >= 0) {
      const req = JSON.parse(this.written.slice(this.seen, nl)) as Request;
      this.seen = nl + 1;
      this.requests.push(req);
      const results = this.answer(req, this);
      if (results) this.say(JSON.stringify({ v: 1, results }));
    }
  }
}

const ok = (fields: Record<string, unknown> = {}): WireResult => ({ ok: true, ...fields });
const answerAll = (r: (op: Op) => WireResult) => (req: Request) => req.ops.map(r);
const neverAnswer = () => undefined;
const dropOnRequest = (_req: Request, ch: HelperChannel) => {
  setImmediate(() => ch.close());
  return undefined;
};

/** A client on a session that never dials: each started helper gets the next behaviour (and says "ready" unless silent). */
function clientWith(
  operationTimeoutSeconds: number,
  behaviours: Array<{ answer: ConstructorParameters<typeof HelperChannel>[0]; silent?: boolean; noise?: string[] }>,
) {
  const director: Director = { host: "192.0.2.1", port: 22, user: "ops", privateKey: "k", hostKey: "h", sudo: true, connectTimeoutSeconds: 20, operationTimeoutSeconds };
  const session = new DirectorSession(director);
  const channels: HelperChannel[] = [];
  const scripts: string[] = [];
  session.openChannel = async (script: string) => {
    const b = behaviours[channels.length];
    if (!b) throw new Error(`test opened channel ${channels.length + 1}, only ${behaviours.length} scripted`);
    const ch = new HelperChannel(b.answer);
    channels.push(ch);
    scripts.push(script);
    // What the login shell prints first, chunk by chunk as given.
    for (const text of b.noise ?? []) ch.pour(text);
    if (!b.silent) ch.say(`${START_MARKER} ready amd64`);
    return ch as unknown as SshChannel;
  };
  return { client: new HelperClient(session), channels, scripts };
}

const svc = { family: "ipv4", protocol: "tcp", address: "192.0.2.10", port: 80 } as const;
const createSvc: Op = { op: "ensureService", service: { ...svc, scheduler: "rr" }, onExisting: "fail" };
const createDest: Op = { op: "ensureDest", service: svc, dest: { address: "10.0.0.11", port: 8080, weight: 2 }, onExisting: "fail" };
const read: Op = { op: "getService", service: svc, withDests: false };
const TARGET = "ops@192.0.2.1:22";

afterEach(() => {
  vi.useRealTimers();
});

describe("deadlines", () => {
  it("a batch unanswered within operationTimeoutSeconds fails every op by name, is not re-sent, and the next op gets a fresh helper", async () => {
    vi.useFakeTimers();
    const { client, channels } = clientWith(3, [{ answer: neverAnswer }, { answer: answerAll(() => ok({ service: null })) }]);
    const results = [client.run(createSvc), client.run(read)].map((p) => p.catch((e: unknown) => e));
    await vi.advanceTimersByTimeAsync(3000);
    const [create, get] = (await Promise.all(results)) as DirectorError[];

    expect(create).toBeInstanceOf(DirectorError);
    expect(create!.message).toBe(
      `ensureService tcp/192.0.2.10:80 on ${TARGET}: no answer within 3 s (operationTimeoutSeconds); it may have been applied: if the next pulumi up says it already exists, check its settings on the director and set adopt: true for that up (or remove it there).`,
    );
    expect(get!.message).toBe(`getService tcp/192.0.2.10:80 on ${TARGET}: no answer within 3 s (operationTimeoutSeconds).`);
    expect(channels[0]!.gone).toBe(true);
    expect(channels[0]!.requests).toHaveLength(1);
    expect(client.stats.resent).toBe(0);

    await expect(client.run(read)).resolves.toEqual({ service: null });
    expect(client.stats.starts).toBe(2);
  });

  it("a start script that prints nothing within operationTimeoutSeconds fails with a deadline error, not a hang", async () => {
    vi.useFakeTimers();
    const { client, channels } = clientWith(3, [{ answer: neverAnswer, silent: true }]);
    const result = client.run(read).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(3000);
    const err = (await result) as DirectorError;
    expect(err).toBeInstanceOf(DirectorError);
    expect(err.message).toBe(`ipvs-helper on ${TARGET} did not start: its start script gave no answer within 3 s (operationTimeoutSeconds).`);
    expect(channels[0]!.gone).toBe(true);
    expect(channels[0]!.requests).toHaveLength(0);
  });

  it("passes the helper a shorter deadline for its own waits, and reports its TIMEOUT answer like a missed deadline", async () => {
    const { client, scripts } = clientWith(60, [
      { answer: answerAll(() => ({ ok: false, error: { code: "TIMEOUT", message: "modprobe ip_vs_sed did not finish within 54 s." } })) },
    ]);
    const err = (await client.run(createDest).catch((e: unknown) => e)) as DirectorError;
    expect(scripts[0]).toContain(`serve '--timeout-seconds' '54'`);
    expect(err).toBeInstanceOf(DirectorError);
    expect(err.message).toBe(
      `ensureDest tcp/192.0.2.10:80/10.0.0.11:8080 on ${TARGET}: no answer within 54 s (the helper's share of operationTimeoutSeconds): ` +
        `modprobe ip_vs_sed did not finish within 54 s; it may have been applied: if the next pulumi up says it already exists, check its settings on the director and set adopt: true for that up (or remove it there).`,
    );
    expect(client.stats.resent).toBe(0);
  });
});

describe("a create whose answer was lost", () => {
  it("is re-sent as onExisting \"match\" (other ops as they were) and succeeds when the entry holds exactly its settings", async () => {
    const { client, channels } = clientWith(60, [
      { answer: dropOnRequest },
      { answer: answerAll((op) => ok(op.op === "getService" ? { service: null } : { changed: false, created: false })) },
    ]);
    const [a, b, c] = await Promise.all([client.run(createSvc), client.run(createDest), client.run(read)]);
    expect(a).toEqual({ changed: false, created: false });
    expect(b).toEqual({ changed: false, created: false });
    expect(c).toEqual({ service: null });
    expect(channels[0]!.requests[0]!.ops.map((o) => "onExisting" in o && o.onExisting)).toEqual(["fail", "fail", false]);
    expect(channels[1]!.requests[0]!.ops).toEqual([
      { ...createSvc, onExisting: "match" },
      { ...createDest, onExisting: "match" },
      read,
    ]);
    expect(client.stats).toMatchObject({ starts: 2, resent: 3 });
  });

  it("still fails with EXISTS when the entry it finds differs", async () => {
    const exists: WireResult = { ok: false, error: { code: "EXISTS", errno: 17, message: "tcp/192.0.2.10:80 already exists (now: -A -t 192.0.2.10:80 -s wlc)." } };
    const { client } = clientWith(60, [{ answer: dropOnRequest }, { answer: answerAll(() => exists) }]);
    const err = (await client.run(createSvc).catch((e: unknown) => e)) as HelperError;
    expect(err).toBeInstanceOf(HelperError);
    expect(err.code).toBe("EXISTS");
  });

  it("fails when lost a second time, naming the op and that it may have been applied", async () => {
    const { client, channels } = clientWith(60, [{ answer: dropOnRequest }, { answer: dropOnRequest }]);
    const err = (await client.run(createSvc).catch((e: unknown) => e)) as DirectorError;
    expect(err).toBeInstanceOf(DirectorError);
    expect(err.message).toMatch(
      new RegExp(`^ensureService tcp/192\\.0\\.2\\.10:80 on ${TARGET}: ipvs-helper on ${TARGET} lost its connection \\(the second time it was sent; not sent again\\); it may have been applied`),
    );
    expect(channels).toHaveLength(2);
  });
});

describe("a director that floods the channel", () => {
  const MiB = 1024 * 1024;
  /** `chars` characters without a newline, in 1 MiB chunks. */
  const endless = (chars: number) => Array.from({ length: Math.ceil(chars / MiB) }, (_, i) => "x".repeat(Math.min(MiB, chars - i * MiB)));

  it("a login shell that prints on one line without end is given up once it passes MAX_NOISE, not at the deadline", async () => {
    const { client, channels } = clientWith(600, [{ answer: neverAnswer, silent: true, noise: endless(MAX_NOISE.bytes).map((x) => x + "y".repeat(8192)) }]);
    const err = (await client.run(read).catch((e: unknown) => e)) as DirectorError;
    expect(err).toBeInstanceOf(DirectorError);
    expect(err.message).toBe(
      `the login shell of ${TARGET} printed more than 1000 lines or 64 KiB before the ipvs-helper start script could answer ` +
        `(starting with "${"x".repeat(200)}"): make its .bashrc/.profile print nothing for non-interactive sessions.`,
    );
    expect(channels[0]!.gone).toBe(true);
    expect(channels[0]!.requests).toHaveLength(0);
  });

  it("text before the marker on the marker's own line, in pieces, is skipped as before", async () => {
    const { client } = clientWith(60, [{ answer: answerAll(() => ok({ service: null })), noise: ["Wel", "come\nlast lo", "gin: today "] }]);
    await expect(client.run(read)).resolves.toEqual({ service: null });
    expect(client.stats.starts).toBe(1);
  });

  it("an answer that never ends its line is cut off at MAX_ANSWER_CHARS, re-sent once on a fresh helper, then fails naming the bound", async () => {
    const flood = (_req: Request, ch: HelperChannel) => {
      for (const text of endless(MAX_ANSWER_CHARS + 1)) ch.pour(text);
      return undefined;
    };
    const { client, channels } = clientWith(600, [{ answer: flood }, { answer: flood }]);
    const err = (await client.run(read).catch((e: unknown) => e)) as DirectorError;
    expect(err).toBeInstanceOf(DirectorError);
    expect(err.message).toBe(
      `getService tcp/192.0.2.10:80 on ${TARGET}: ipvs-helper on ${TARGET} sent more than 64 MiB without finishing an answer line, or lines no ` +
        `request asked for; the channel was closed (a dump of the whole table reaches that size only at about 190,000 real servers) ` +
        `(the second time it was sent; not sent again).`,
    );
    expect(channels.map((c) => c.gone)).toEqual([true, true]);
    expect(client.stats.resent).toBe(1);
  });

  it("lines no request asked for count too: past the bound the channel is closed, and the next op starts a fresh helper", async () => {
    const { client, channels } = clientWith(600, [
      {
        answer: (req, ch) => {
          setImmediate(() => {
            for (let i = 0; i <= MAX_ANSWER_CHARS / MiB; i++) ch.say("x".repeat(MiB - 1));
          });
          return req.ops.map(() => ok({ service: null }));
        },
      },
      { answer: answerAll(() => ok({ service: null })) },
    ]);
    await expect(client.run(read)).resolves.toEqual({ service: null });
    await vi.waitFor(() => expect(channels[0]!.gone).toBe(true), { timeout: 60_000 });
    await expect(client.run(read)).resolves.toEqual({ service: null });
    expect(channels).toHaveLength(2);
    expect(channels[1]!.requests).toHaveLength(1);
  });
});

// Issue 26 item 4: whether an op can have reached the director decides whether a failed create leaves a resource in
// state. A failure before any op was sent reached nothing; an op sent once whose retry cannot even connect may have
// been applied, and says so.
describe("what a failure may have changed", () => {
  const unreachable = () => new DirectorError("unreachable", TARGET, `cannot reach ${TARGET}: connect ECONNREFUSED.`);

  it("a helper that cannot be started: no op was sent, nothing reached", async () => {
    const { client } = clientWith(30, []);
    client.session.openChannel = async () => Promise.reject(unreachable());
    const e = (await client.run(createSvc).catch((x: unknown) => x)) as DirectorError;
    expect(e.message).toBe(`cannot reach ${TARGET}: connect ECONNREFUSED.`);
    expect(e.opSent).toBe(false);
    expect(reachedNothing(e)).toBe(true);
  });

  it("an op sent once whose channel died, when the retry cannot connect: it may have been applied", async () => {
    const { client } = clientWith(30, [{ answer: dropOnRequest }]);
    const scripted = client.session.openChannel.bind(client.session);
    let opened = 0;
    client.session.openChannel = async (script: string) => (opened++ === 0 ? scripted(script) : Promise.reject(unreachable()));
    const e = (await client.run(createSvc).catch((x: unknown) => x)) as DirectorError;
    expect(e.message).toMatch(new RegExp(`^ensureService tcp/192\\.0\\.2\\.10:80 on ${TARGET}: cannot reach ${TARGET}: connect ECONNREFUSED; it may have been applied`));
    expect(e.opSent).toBe(true);
    expect(reachedNothing(e)).toBe(false);
  });
});
