// redact(): every non-empty secret leaves error text; short ones only where they stand alone (see its doc comment).
import { describe, expect, it } from "vitest";
import { redact } from "../../provider/session/errors";

const KEY = [
  "-----BEGIN OPENSSH PRIVATE KEY-----",
  "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW",
  "QyNTUxOQAAACB",
  "-----END OPENSSH PRIVATE KEY-----",
  "",
].join("\n");

describe("redact", () => {
  it("removes a secret of 4 or more characters wherever it occurs, even inside a word", () => {
    expect(redact("password hunter22 was wrong", ["hunter22"])).toBe("password [redacted] was wrong");
    expect(redact("got xhunter22y", ["hunter22"])).toBe("got x[redacted]y");
  });

  it("removes a 3-, 2- and 1-character secret where it stands alone", () => {
    expect(redact("auth with password abc failed", ["abc"])).toBe("auth with password [redacted] failed");
    expect(redact('bad password "x9" (ops@h:22)', ["x9"])).toBe('bad password "[redacted]" (ops@h:22)');
    expect(redact("password=7, retry", ["7"])).toBe("password=[redacted], retry");
    expect(redact("abc", ["abc"])).toBe("[redacted]");
    expect(redact("a-b-c", ["b"])).toBe("a-[redacted]-c");
  });

  it("leaves a short secret inside longer words alone: cutting it out everywhere would spell it out", () => {
    expect(redact("cannot reach ops@10.0.0.1:22: connect ECONNREFUSED", ["a"])).toBe("cannot reach ops@10.0.0.1:22: connect ECONNREFUSED");
    expect(redact("Authentication failed", ["at"])).toBe("Authentication failed");
    expect(redact("été ok", ["t"])).toBe("été ok");
  });

  it("treats regular-expression characters in a secret literally", () => {
    expect(redact("pw a.c and abc", ["a.c"])).toBe("pw [redacted] and abc");
    expect(redact("pw (x|y)* here", ["(x|y)*"])).toBe("pw [redacted] here");
    expect(redact("pw $& here", ["$&"])).toBe("pw [redacted] here");
    expect(redact("pw \\d here", ["\\d"])).toBe("pw [redacted] here");
  });

  it("removes a multi-line key whole and line by line, including a short last line", () => {
    // Trimmed: the key file's final newline is no secret and stays.
    expect(redact(`parse error in ${KEY}`, [KEY])).toBe("parse error in [redacted]\n");
    const lines = KEY.split("\n");
    expect(redact(`near ${lines[1]} and ${lines[2]}`, [KEY])).toBe("near [redacted] and [redacted]");
    expect(redact("line: QyN", ["xxxxxxxx\nQyN\n"])).toBe("line: [redacted]");
  });

  it("does not let one secret cut into another: the longest match wins", () => {
    // Were "abcd" redacted first, "zz…zz" of the second secret would stay in clear.
    expect(redact("key zzabcdzz end", ["abcd", "zzabcdzz"])).toBe("key [redacted] end");
    expect(redact("both ab and zzab", ["ab", "zzab"])).toBe("both [redacted] and [redacted]");
  });

  it("ignores empty and blank secrets and leaves text without secrets unchanged", () => {
    expect(redact("nothing to hide", [])).toBe("nothing to hide");
    expect(redact("nothing to hide", ["", "  ", "\n"])).toBe("nothing to hide");
    expect(redact("a short one", [" one\n"])).toBe("a short [redacted]");
  });
});
