// Issue 25 item 7: text from a director reaches the user's terminal with its control characters escaped. A compromised
// director could otherwise send escape sequences (clear the screen, rewrite a line, set the title, hide text) in an
// error sentence, a command's stderr, its host key's type name or a dump.
import { describe, expect, it } from "vitest";
import { HelperError } from "../../provider/protocol";
import { classifyConnectError, printable } from "../../provider/session/errors";
import { blobType } from "../../provider/session/hostKeys";
import { render } from "../../provider/status/render";
import type { StatusReport } from "../../provider/status/compare";

/** What a hostile director might send: clear screen, cursor up and erase line, a title change, CSI (C1), RLO. */
const HOSTILE = "no such service\u001b[2J\u001b[1A\u001b[2K\u001b]0;pwned\u0007 \u009b31m red\r\u202eevil";
/** Nothing a terminal acts on: C0 but tab and newline, DEL, C1, bidi controls. */
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;

describe("printable", () => {
  it("escapes control characters, keeping the text readable", () => {
    expect(printable(HOSTILE)).toBe("no such service\\x1b[2J\\x1b[1A\\x1b[2K\\x1b]0;pwned\\x07 \\x9b31m red\\r\\u202eevil");
    expect(printable(HOSTILE)).not.toMatch(UNSAFE);
  });

  it("leaves ordinary text, tabs and non-Latin letters alone", () => {
    const text = "tcp/192.0.2.10:80 on ops@[2001:db8::1]:22:\tweight 5 — überprüft, 確認";
    expect(printable(text)).toBe(text);
  });

  it("escapes newlines unless asked to keep lines", () => {
    expect(printable("a\nb")).toBe("a\\nb");
    expect(printable("a\nb\u001b[2K", { lines: true })).toBe("a\nb\\x1b[2K");
  });

  it("in JSON, escapes as \\u so the document reads back as the same text", () => {
    const doc = JSON.stringify({ error: HOSTILE }, null, 2);
    const safe = printable(doc, { json: true });
    expect(safe).not.toMatch(UNSAFE);
    expect(JSON.parse(safe)).toEqual({ error: HOSTILE });
  });
});

describe("where director text becomes a message", () => {
  it("a helper's error sentence", () => {
    const e = new HelperError("192.0.2.5:22", "INTERNAL", HOSTILE);
    expect(e.message).toBe(`ipvs-helper on 192.0.2.5:22: ${printable(HOSTILE)}`);
    expect(e.message).not.toMatch(UNSAFE);
  });

  it("what ssh2 quotes of the server", () => {
    const err = new Error(`Protocol error: server said ${HOSTILE}`);
    const e = classifyConnectError(err, "ops@192.0.2.5:22", undefined, []);
    expect(e.message).toContain("server said no such service\\x1b[2J");
    expect(e.message).not.toMatch(UNSAFE);
  });

  it("the key type inside a host key the director presents", () => {
    const type = Buffer.from("ssh-ed25519\u001b[2J", "latin1");
    const blob = Buffer.concat([Buffer.from([0, 0, 0, type.length]), type, Buffer.alloc(8)]);
    expect(blobType(blob)).toBe("ssh-ed25519\\x1b[2J");
  });

  it("the status report, as text and as JSON", () => {
    const report: StatusReport = {
      stack: "prod",
      status: "error",
      directors: [{ director: "192.0.2.5:22", user: "ops", error: HOSTILE, services: [], otherServices: [`tcp/192.0.2.9:80${HOSTILE}`] }],
      hosts: [{ resource: "rs-1", host: "10.0.0.11:22", user: "root", forwarding: "dr", status: "unknown", error: HOSTILE, vips: [], sysctls: [] }],
      problems: [],
      health: [],
    } as unknown as StatusReport;
    for (const json of [false, true]) {
      const out = render(report, { json, credentials: [] });
      expect(out).not.toMatch(UNSAFE);
      expect(out).toContain("no such service\\");
    }
    expect(JSON.parse(render(report, { json: true, credentials: [] })).directors[0].error).toBe(HOSTILE);
    expect(JSON.parse(render(report, { json: true, credentials: [] })).hosts[0].error).toBe(HOSTILE);
  });
});
