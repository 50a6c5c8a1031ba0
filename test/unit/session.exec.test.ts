// DirectorSession.exec through a seam (openChannel hands out a fake channel): the bound on what it collects.
import { describe, expect, it } from "vitest";
import type { Director } from "../../provider/director";
import { DirectorError, DirectorSession, type SshChannel } from "../../provider/session";
import { MAX_EXEC_OUTPUT_BYTES } from "../../provider/session/session";
import { FakeChannel } from "./fakeChannel";

const director: Director = { host: "192.0.2.1", port: 22, user: "ops", privateKey: "k", hostKey: "h", sudo: false, connectTimeoutSeconds: 20, operationTimeoutSeconds: 600 };

function sessionPrinting(print: (ch: FakeChannel) => void) {
  const session = new DirectorSession(director);
  const channels: FakeChannel[] = [];
  session.openChannel = async () => {
    const ch = new FakeChannel();
    channels.push(ch);
    setImmediate(() => print(ch));
    return ch as unknown as SshChannel;
  };
  return { session, channels };
}

describe("exec", () => {
  it("collects a command's output and exit status", async () => {
    const { session } = sessionPrinting((ch) => {
      ch.say("ok");
      ch.stderr.write("warning\n");
      ch.emit("exit", 0);
      ch.emit("close");
    });
    const result = await session.exec("true");
    expect({ stdout: result.stdout.toString(), stderr: result.stderr, code: result.code }).toEqual({ stdout: "ok\n", stderr: "warning\n", code: 0 });
  });

  it.each(["stdout", "stderr"] as const)("stops a command that prints more than MAX_EXEC_OUTPUT_BYTES on %s, and says so", async (stream) => {
    const { session, channels } = sessionPrinting((ch) => {
      const out = stream === "stdout" ? (t: string) => ch.pour(t) : (t: string) => void ch.stderr.write(t);
      for (let i = 0; i <= MAX_EXEC_OUTPUT_BYTES / 65536 && !ch.gone; i++) out("x".repeat(65536));
    });
    const err = (await session.exec("yes").catch((e: unknown) => e)) as DirectorError;
    expect(err).toBeInstanceOf(DirectorError);
    expect(err.message).toBe(`a command on ops@192.0.2.1:22 printed more than 1 MiB on ${stream}; it was stopped.`);
    expect(channels).toHaveLength(1);
    expect(channels[0]!.gone).toBe(true);
  });
});
