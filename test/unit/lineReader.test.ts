// LineReader, the framing of a helper channel: lines however the chunks fall, what a close keeps, and the bound on
// what it holds unread.
import { describe, expect, it } from "vitest";
import { LineReader } from "../../provider/helperClient/lineReader";
import type { SshChannel } from "../../provider/session";
import { FakeChannel } from "./fakeChannel";

function reader() {
  const ch = new FakeChannel();
  const lines = new LineReader(ch as unknown as SshChannel, (code) => new Error(`closed with ${code}`));
  return { ch, lines };
}

describe("LineReader", () => {
  it("splits lines however the chunks fall: several in one chunk, one over several chunks", async () => {
    const { ch, lines } = reader();
    ch.pour("a\nb");
    ch.pour("c");
    ch.pour("d\n\ne\n");
    expect([await lines.next(), await lines.next(), await lines.next(), await lines.next()]).toEqual(["a", "bcd", "", "e"]);
  });

  it("keeps the lines read before a close readable, then rejects with the close's reason", async () => {
    const { ch, lines } = reader();
    ch.say("install amd64");
    await new Promise((r) => setImmediate(r));
    ch.close();
    expect(lines.closed).toBe(true);
    await expect(lines.next()).resolves.toBe("install amd64");
    await expect(lines.next()).rejects.toThrow("closed with null");
  });

  it("past its limit closes the channel, drops what it held, and rejects pending and later reads with the overflow's error", async () => {
    const { ch, lines } = reader();
    const samples: string[] = [];
    lines.limit({ chars: 10, overflow: (sample) => (samples.push(sample), new Error("too much")) });
    const pending = lines.next();
    ch.pour("123456");
    ch.pour("7890X");
    await expect(pending).rejects.toThrow("too much");
    expect(ch.gone).toBe(true);
    await expect(lines.next()).rejects.toThrow("too much");
    expect(samples).toEqual(["1234567890X"]);
  });

  it("counts lines nobody has read against the limit, and frees them as they are read", async () => {
    const { ch, lines } = reader();
    lines.limit({ chars: 8, overflow: (sample) => new Error(`over, at ${JSON.stringify(sample)}`) });
    ch.say("1234");
    ch.say("5678");
    await new Promise((r) => setImmediate(r));
    expect(await lines.next()).toBe("1234");
    ch.say("abcd");
    await new Promise((r) => setImmediate(r));
    expect(ch.gone).toBe(false);
    ch.say("e");
    await expect(lines.next()).rejects.toThrow('over, at "5678"');
    expect(ch.gone).toBe(true);
  });

  it("a limit set below what it already holds applies at once", async () => {
    const { ch, lines } = reader();
    ch.say("already here");
    await new Promise((r) => setImmediate(r));
    lines.limit({ chars: 4, overflow: () => new Error("over") });
    expect(ch.gone).toBe(true);
    await expect(lines.next()).rejects.toThrow("over");
  });
});
