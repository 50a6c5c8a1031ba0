// within(), the deadline on every wait, and the connect.ts rules that need no director: a credential-bearing field is
// never echoed, a key file's text is listed once among the secrets however often the session dials, and a peer that
// hangs up before speaking SSH is worth a retry.
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { describe, expect, it, vi } from "vitest";
import { dial } from "../../provider/session/connect";
import { DirectorError } from "../../provider/session/errors";
import { within } from "../../provider/session/retry";
import { PRIVATE_KEY, publicKeyLine } from "./fixtures";

describe("within", () => {
  it("settles as the work does when it is in time", async () => {
    await expect(within(Promise.resolve(7), 1000, () => new Error("late"))).resolves.toBe(7);
    await expect(within(Promise.reject(new Error("own")), 1000, () => new Error("late"))).rejects.toThrow("own");
  });

  it("rejects with expired() once the deadline passes, and ignores the work settling later", async () => {
    vi.useFakeTimers();
    try {
      let fail!: (e: Error) => void;
      const work = new Promise<never>((_, reject) => (fail = reject));
      const expired = vi.fn(() => new Error("no answer within 3 s"));
      const result = within(work, 3000, expired).catch((e: Error) => e.message);
      await vi.advanceTimersByTimeAsync(2999);
      expect(expired).not.toHaveBeenCalled();
      await vi.advanceTimersByTimeAsync(1);
      expect(await result).toBe("no answer within 3 s");
      // No unhandled rejection: within() holds the work's handlers.
      fail(new Error("channel closed"));
      expect(expired).toHaveBeenCalledOnce();
    } finally {
      vi.useRealTimers();
    }
  });
});

describe("dialling", () => {
  const hop = { host: "127.0.0.1", port: 1, user: "ops", hostKey: publicKeyLine(), connectTimeoutSeconds: 2 };

  it("never echoes privateKeyPath: key text given there by mistake stays out of the message", async () => {
    const err = (await dial({ ...hop, privateKeyPath: PRIVATE_KEY }, new Set()).catch((e: unknown) => e)) as DirectorError;
    expect(err).toBeInstanceOf(DirectorError);
    expect(err.kind).toBe("config");
    expect(err.message).toMatch(/^cannot read the file given as privateKeyPath for ops@127\.0\.0\.1:1 \(E[A-Z]+\)\.$/);
    for (const line of PRIVATE_KEY.trim().split("\n")) expect(`${err.message}\n${err.stack}`).not.toContain(line);
  });

  it("adds a key file's text to the secrets once, however often it dials", async () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), "dial-")), "id");
    writeFileSync(file, PRIVATE_KEY, { mode: 0o600 });
    const secrets = new Set<string>();
    for (let i = 0; i < 3; i++) await expect(dial({ ...hop, privateKeyPath: file }, secrets)).rejects.toBeInstanceOf(DirectorError);
    expect([...secrets]).toEqual([PRIVATE_KEY]);
  });

  it("retries a peer that accepts the connection and hangs up before speaking SSH (an sshd restarting behind a forwarder)", async () => {
    const server = createServer((socket) => socket.end());
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const port = (server.address() as { port: number }).port;
      const err = (await dial({ ...hop, port, password: "pw" }, new Set()).catch((e: unknown) => e)) as DirectorError;
      expect(err).toBeInstanceOf(DirectorError);
      expect(err.message).toBe(`cannot reach ops@127.0.0.1:${port}: Connection lost before handshake.`);
      expect(err.retryable).toBe(true);
    } finally {
      server.close();
    }
  });
});
