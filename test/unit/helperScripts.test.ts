// The text of the root scripts that start and install the helper (their behaviour on a real director is covered by
// test/integration/helperInstall.test.ts): what they may touch, and how they frame and run the helper.
import { describe, expect, it } from "vitest";
import type { HelperBinaries } from "../../provider/helperClient/binaries";
import { components, installScript, START_MARKER, startScript } from "../../provider/helperClient/scripts";

const bins: HelperBinaries = { dir: "/nowhere", version: "1.2.3", sha256: { amd64: "a".repeat(64), arm64: "b".repeat(64) } };
/** The script without the text it prints (the fix advice names chown and chmod). */
const code = (script: string) => script.replace(/echo "(\\.|[^"\\])*"/g, "echo");
const file = `/usr/local/lib/pulumi-ipvs/1.2.3-${"a".repeat(12)}/ipvs-helper`;

describe("components", () => {
  it("lists every component of the install path from / down, ours marked own", () => {
    expect(components(bins, "amd64")).toEqual([
      { path: "/", kind: "d", own: false },
      { path: "/usr", kind: "d", own: false },
      { path: "/usr/local", kind: "d", own: false },
      { path: "/usr/local/lib", kind: "d", own: false },
      { path: "/usr/local/lib/pulumi-ipvs", kind: "d", own: true },
      { path: `/usr/local/lib/pulumi-ipvs/1.2.3-${"a".repeat(12)}`, kind: "d", own: true },
      { path: file, kind: "f", own: true },
    ]);
  });
});

describe("startScript", () => {
  const script = startScript(bins, ["--timeout-seconds", "it's 5"]);

  it("prefixes every line it prints with the marker", () => {
    // comp's messages are captured by $(walk) and printed after "unsafe".
    const echoes = script.slice(script.indexOf(`case "$(uname -m)"`)).match(/echo "[^"]*"/g)!;
    expect(echoes.length).toBeGreaterThanOrEqual(5);
    for (const e of echoes) expect(e).toMatch(new RegExp(`^echo "${START_MARKER} `));
  });

  it("hashes and execs the binary through one descriptor, passing the serve arguments quoted", () => {
    expect(script).toContain(`exec 3<"$f"`);
    expect(script).toContain(`"$(sha256 <&3)" = "$s"`);
    expect(script).toContain(`exec /proc/self/fd/3 serve '--timeout-seconds' 'it'\\''s 5'`);
    expect(script).not.toMatch(/exec "\$f"/);
  });

  it("judges components without following symlinks and never changes them", () => {
    expect(code(script)).not.toMatch(/stat -L|chown|chmod|mkdir/);
    expect(script).toContain(`comp '/usr/local/lib/pulumi-ipvs' d own && comp '/usr/local/lib/pulumi-ipvs/1.2.3-${"a".repeat(12)}' d own && comp '${file}' f own`);
  });

  it("reads every component's owner and mode with one stat run (each fork is slow on a small director)", () => {
    const all = (arch: "amd64" | "arm64") => `stat -c '%n %u %A' ${components(bins, arch).map((c) => `'${c.path}'`).join(" ")} 2>/dev/null`;
    expect(script).toContain(`S="$NL$(${all("amd64")})$NL"`);
    // Besides the walk of each architecture, one stat of one path: a component missing from $S (created since).
    expect(code(script).match(/stat -c [^)]*/g)).toEqual([`stat -c '%u %A' "$1"`, all("amd64"), all("arm64")]);
  });
});

describe("installScript", () => {
  const script = installScript(bins, "amd64");

  it("changes ownership and mode of its own temp file only, and creates directories one by one", () => {
    expect(code(script).match(/\b(chown|chmod) .*/g)).toEqual([`chown 0:0 "$t"`, `chmod 0755 "$t"`]);
    expect(script).not.toMatch(/mkdir -p|stat -L/);
    expect(script).toContain(`need '/usr/local/lib/pulumi-ipvs' d own`);
  });

  it("removes its temp file however it ends, and fails closed when mktemp, cat or hashing fails", () => {
    expect(script).toContain(`trap 'rm -f "$t"' EXIT`);
    // Further signals are ignored first, so a relayed second TERM cannot kill the cleanup's rm.
    expect(script).toContain(`trap 'trap "" HUP INT TERM PIPE; exit 1' HUP INT TERM PIPE`);
    expect(script).toMatch(/t=\$\(mktemp .*\) && \[ -n "\$t" \] \|\| \{ .*exit 7; \}/);
    expect(script).toMatch(/cat > "\$t" \|\| \{ .*exit 7; \}/);
    expect(script).toMatch(/\[ -z "\$nosha" \] \|\| \{ .*exit 8; \}/);
  });
});

// Issue 25 item 4: nothing unquoted reaches a root shell. The version and the hashes come from files on disk
// (package.json, SHA256SUMS); a hostile one is refused where the path is built, and the scripts quote every value.
describe("values that reach the root scripts", () => {
  const hostileVersions = ["0.1.0$(touch /tmp/x)", '0.1.0"; rm -rf / #', "0.1.0`id`", "1.2.3-../../../etc", "1.2.3\nid", "1.2.3 x", "../1.2.3"];

  it.each(hostileVersions)("refuses the version %j before any script exists", (version) => {
    const hostile = { ...bins, version };
    expect(() => startScript(hostile, [])).toThrow(/refusing the ipvs-helper version .*a version must look like 1\.2\.3/);
    expect(() => installScript(hostile, "amd64")).toThrow(/refusing the ipvs-helper version/);
  });

  it("refuses a hash that is not 64 hex digits", () => {
    const hostile = { ...bins, sha256: { ...bins.sha256, arm64: `${"b".repeat(63)}'$(id)'` } };
    expect(() => startScript(hostile, [])).toThrow(/refusing the ipvs-helper arm64 hash .*64 lowercase hex digits/);
    expect(() => installScript(hostile, "arm64")).toThrow(/refusing the ipvs-helper arm64 hash/);
  });

  it("accepts a pre-release version", () => {
    expect(startScript({ ...bins, version: "1.2.3-rc.1" }, [])).toContain(`'/usr/local/lib/pulumi-ipvs/1.2.3-rc.1-${"a".repeat(12)}/ipvs-helper'`);
  });

  /** The script with every single-quoted word removed: what the shell would expand or run. */
  const unquoted = (script: string) => script.replace(/'[^']*'/g, "''");

  it.each([
    ["startScript", startScript(bins, ["--x"])],
    ["installScript", installScript(bins, "amd64")],
  ])("%s names the version, the hashes and the paths only inside single quotes", (_name, script) => {
    for (const value of [bins.version, bins.sha256.amd64, "/usr/local/lib/pulumi-ipvs/"]) {
      expect(script).toContain(value);
      expect(unquoted(script)).not.toContain(value);
    }
  });
});
