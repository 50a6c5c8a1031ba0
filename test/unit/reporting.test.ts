// Issue 26 item 3: what the engine prints of a provider's failure. reporting() hands check failures over without a
// property (the engine would print `property director.hostKey value {<nil>} has a problem`), and drops the
// dynamic-provider plugin's console.error(`${e}: ${e.stack}`) for a failure raised on purpose, so the engine's own
// print of the message is the only one; a bug's stack still comes through.
import { afterEach, describe, expect, it, vi } from "vitest";
import { HelperError } from "../../provider/protocol";
import { deliberate, failureSentence, reporting } from "../../provider/reporting";
import { DirectorError } from "../../provider/session";

const create = async () => ({ id: "x" });

/** What the plugin does with an error of check, diff, read or delete (cmd/dynamic-provider/index.js). */
async function pluginCall(fn: () => Promise<unknown>): Promise<Error> {
  try {
    await fn();
  } catch (e) {
    console.error(`${e}: ${(e as Error).stack}`);
    return e as Error;
  }
  throw new Error("expected a failure");
}

describe("reporting", () => {
  afterEach(() => vi.restoreAllMocks());

  it("hands check failures over as sentences naming the input, without a property for the engine to dump", async () => {
    const p = reporting({
      create,
      check: async (_o, news) => ({
        inputs: news,
        failures: [
          { property: "directors[0].hostKey", reason: 'hostKey "SHA256:abc" is a fingerprint, and a fingerprint is not a key line' },
          { property: "director", reason: "no SSH authentication: give privateKey, privateKeyPath, password or agent" },
          { property: "(inputs)", reason: "inputs must be an object" },
        ],
      }),
    });
    expect((await p.check!({}, {})).failures).toEqual([
      { property: "", reason: 'directors[0].hostKey "SHA256:abc" is a fingerprint, and a fingerprint is not a key line' },
      { property: "", reason: "director: no SSH authentication: give privateKey, privateKeyPath, password or agent" },
      { property: "", reason: "inputs must be an object" },
    ]);
  });

  it("drops the plugin's stack print of a failure raised on purpose, once, and keeps a bug's", async () => {
    const printed = vi.spyOn(console, "error").mockImplementation(() => undefined);
    const errors: Record<string, Error> = {
      plain: new Error("VirtualService tcp/192.0.2.10:80: delete failed on 1 of 1 director(s): …"),
      director: new DirectorError("hostKey", "ops@192.0.2.5:22", "host key mismatch for ops@192.0.2.5:22: …"),
      helper: new HelperError("ops@192.0.2.5:22", "OWNED", "service tcp/192.0.2.10:80 is owned by stack a/b/c."),
      bug: new TypeError("Cannot read properties of undefined (reading 'host')"),
    };
    for (const [what, error] of Object.entries(errors)) {
      const p = reporting({ create, delete: async () => Promise.reject(error), read: async () => Promise.reject(error) });
      expect(await pluginCall(() => p.delete!("id", {}))).toBe(error);
      expect(await pluginCall(() => p.read!("id", {}))).toBe(error);
      const prints = printed.mock.calls.filter(([line]) => String(line).startsWith(`${error}`)).length;
      expect(prints, what).toBe(what === "bug" ? 2 : 0);
    }
    // Anything else printed passes through.
    console.error("something else");
    expect(printed).toHaveBeenLastCalledWith("something else");
  });

  it("calls deliberate only what the provider raises with a message for the user", () => {
    expect(deliberate(new Error("x"))).toBe(true);
    expect(deliberate(new DirectorError("auth", "a@b:22", "x"))).toBe(true);
    expect(deliberate(new RangeError("x"))).toBe(false);
    expect(deliberate("x")).toBe(false);
  });

  it("writes a failure as one sentence", () => {
    expect(failureSentence({ property: "director.port", reason: "port must be an integer 1..65535" })).toBe("director.port must be an integer 1..65535");
    expect(failureSentence({ property: "members[10.0.0.1:80]", reason: "is required" })).toBe("members[10.0.0.1:80]: is required");
  });
});
