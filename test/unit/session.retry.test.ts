import { describe, expect, it } from "vitest";
import { classifyConnectError, DirectorError, redact, sudoWantsPassword } from "../../provider/session/errors";
import { withRetry, type Clock } from "../../provider/session/retry";

/** A clock whose sleeps only advance virtual time, recording each delay. */
function fakeClock() {
  let t = 0;
  const sleeps: number[] = [];
  const clock: Clock = {
    now: () => t,
    sleep: async (ms) => {
      sleeps.push(ms);
      t += ms;
    },
  };
  return { clock, sleeps };
}

const policy = { attempts: 5, budgetMs: 30_000, baseDelayMs: 500, maxDelayMs: 8000 };
const target = "ops@10.0.0.1:22";
const refused = () => new DirectorError("unreachable", target, "cannot reach ops@10.0.0.1:22: connect ECONNREFUSED.");

describe("withRetry", () => {
  it("retries network failures with doubling delays and succeeds", async () => {
    const { clock, sleeps } = fakeClock();
    let calls = 0;
    const result = await withRetry(
      async () => {
        if (++calls < 3) throw refused();
        return "up";
      },
      policy,
      clock,
    );
    expect(result).toBe("up");
    expect(sleeps).toEqual([500, 1000]);
  });

  it("gives up after the attempt limit and says so", async () => {
    const { clock } = fakeClock();
    let calls = 0;
    const err = await withRetry(async () => {
      calls++;
      throw refused();
    }, policy, clock).catch((e: unknown) => e as DirectorError);
    expect(calls).toBe(5);
    expect(err.message).toMatch(/Gave up after 5 attempts .*check that sshd on ops@10\.0\.0\.1:22/);
  });

  it("stops early when the next delay would exceed the budget", async () => {
    const { clock } = fakeClock();
    let calls = 0;
    await expect(
      withRetry(async () => {
        calls++;
        throw refused();
      }, { ...policy, budgetMs: 1200 }, clock),
    ).rejects.toThrow(/Gave up after 2 attempts/);
    expect(calls).toBe(2);
  });

  it("fails fast on authentication, host key and non-DirectorError failures", async () => {
    for (const failure of [
      new DirectorError("auth", target, "auth"),
      new DirectorError("hostKey", target, "mismatch"),
      new Error("bug"),
    ]) {
      const { clock, sleeps } = fakeClock();
      let calls = 0;
      await expect(
        withRetry(async () => {
          calls++;
          throw failure;
        }, policy, clock),
      ).rejects.toBe(failure);
      expect(calls).toBe(1);
      expect(sleeps).toEqual([]);
    }
  });
});

describe("classifyConnectError", () => {
  const secretKey = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----";

  const withFields = (message: string, fields: Record<string, unknown>) => Object.assign(new Error(message), fields);

  it("sorts ssh2/net failures into retryable and fail-fast kinds", () => {
    expect(classifyConnectError(withFields("connect ECONNREFUSED", { code: "ECONNREFUSED", level: "client-socket" }), target, undefined, []).kind).toBe("unreachable");
    expect(classifyConnectError(withFields("Timed out while waiting for handshake", { level: "client-timeout" }), target, undefined, []).kind).toBe("unreachable");
    expect(classifyConnectError(new Error("No response from server"), target, undefined, []).kind).toBe("unreachable");
    expect(classifyConnectError(withFields("Connection lost before handshake", { level: "protocol", fatal: true }), target, undefined, []).kind).toBe("unreachable");
    expect(classifyConnectError(withFields("(SSH) Channel open failure: Connection refused", { reason: 2 }), target, undefined, []).kind).toBe("unreachable");
    expect(classifyConnectError(withFields("All configured authentication methods failed", { level: "client-authentication" }), target, undefined, []).kind).toBe("auth");
    expect(classifyConnectError(withFields("getaddrinfo ENOTFOUND nohost", { code: "ENOTFOUND", level: "client-dns" }), target, undefined, []).kind).toBe("config");
  });

  it("prefers the host key verifier's own explanation over ssh2's 'Host denied'", () => {
    const err = classifyConnectError(new Error("Host denied (verification failed)"), target, "host key mismatch for …", []);
    expect(err.kind).toBe("hostKey");
    expect(err.message).toBe("host key mismatch for …");
  });

  it("never passes a secret through, even if a library echoed it", () => {
    const err = classifyConnectError(new Error(`Cannot parse privateKey: ${secretKey}`), target, undefined, [secretKey, "hunter22"]);
    expect(err.message).not.toContain("b3BlbnNzaC1rZXktdjEAAAAA");
    expect(err.message).toContain(target);
    expect(redact("password hunter22 was wrong", ["hunter22"])).toBe("password [redacted] was wrong");
  });
});

describe("sudoWantsPassword", () => {
  it("recognises sudo -n's refusals", () => {
    expect(sudoWantsPassword("sudo: a password is required\n")).toBe(true);
    expect(sudoWantsPassword("sudo: a terminal is required to read the password; either use the -S option")).toBe(true);
    expect(sudoWantsPassword("sh: ipvsadm: not found")).toBe(false);
  });
});
