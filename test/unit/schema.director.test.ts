import { describe, expect, it } from "vitest";
import { diffRealServer } from "../../provider/resources/realServer/provider";
import { diffVirtualService } from "../../provider/resources/virtualService/provider";
import { directorKey } from "../../provider/director";
import { checkRealServer, checkVirtualService, parseOpenSshPublicKey, parseVirtualService } from "../../provider/schema";
import { PRIVATE_KEY, U, director, expectFailure, expectOk, publicKeyLine, rs, serviceRef, vs } from "./fixtures";

const withDirector = (over: Record<string, unknown>) => checkVirtualService(undefined, vs({ directors: [director(over)] }));
const directorOf = (over: Record<string, unknown>) => (expectOk(withDirector(over)).directors as Record<string, unknown>[])[0]!;

describe("director defaults", () => {
  it("fills port 22, user root, connect timeout 20, sudo false for root", () => {
    const d = directorOf({ user: undefined });
    expect(d).toMatchObject({ host: "203.0.113.5", port: 22, user: "root", connectTimeoutSeconds: 20, sudo: false });
  });
  it("sudo defaults to true for a non-root user, and an explicit sudo wins", () => {
    expect(directorOf({ user: "ops" }).sudo).toBe(true);
    expect(directorOf({ user: "ops", sudo: false }).sudo).toBe(false);
  });
  it("keeps the host key without its comment, and strips brackets from an IPv6 host", () => {
    const d = directorOf({ host: "[2001:DB8::5]", hostKey: publicKeyLine("ssh-ed25519", "a comment") });
    expect(d.host).toBe("2001:db8::5");
    expect(d.hostKey).toBe(publicKeyLine("ssh-ed25519", "").trim());
  });
  it("accepts host names, agent auth, knownHosts text and a nested jump host", () => {
    const d = directorOf({
      host: "Director-1.example.com",
      privateKey: undefined,
      agent: true,
      hostKey: undefined,
      knownHosts: "director-1 " + publicKeyLine(),
      jumpHost: { host: "bastion", password: "pw", insecureIgnoreHostKey: true, jumpHost: { host: "outer", agent: "/run/agent.sock", hostKey: publicKeyLine("ssh-rsa") } },
    });
    expect(d.host).toBe("director-1.example.com");
    expect(d.jumpHost).toMatchObject({ host: "bastion", port: 22, user: "root", jumpHost: { host: "outer", port: 22 } });
  });
  it("lets unknown credentials and hosts pass at preview", () => {
    expectOk(withDirector({ host: U, privateKey: U, hostKey: U }));
    expectOk(withDirector({ privateKey: undefined, password: U, hostKey: undefined, knownHosts: U }));
    expectOk(checkVirtualService(undefined, vs({ directors: [U] })));
    expectOk(checkVirtualService(undefined, vs({ directors: U })));
  });
});

describe("director rules", () => {
  it("requires a host", () => expectFailure(withDirector({ host: undefined }), "directors[0].host", /is required/));
  it("refuses hosts that are not names or addresses", () =>
    expectFailure(withDirector({ host: "ops@host" }), "directors[0].host", /host name or IP address/));
  it("port 1..65535", () => {
    expectFailure(withDirector({ port: 0 }), "directors[0].port", /port must be an integer 1\.\.65535/);
    expectFailure(withDirector({ port: 65536 }), "directors[0].port", /1\.\.65535/);
    expectFailure(withDirector({ port: 22.5 }), "directors[0].port", /integer/);
  });
  it("connectTimeoutSeconds 1..3600", () =>
    expectFailure(withDirector({ connectTimeoutSeconds: 0 }), "directors[0].connectTimeoutSeconds", /1\.\.3600/));
  it("needs some authentication", () =>
    expectFailure(withDirector({ privateKey: undefined, agent: false }), "directors[0]", /no SSH authentication: set privateKey, privateKeyPath, password or agent/));
  it("privateKey must be key text, and the message does not echo the secret", () => {
    const r = withDirector({ privateKey: "/home/ops/.ssh/id_ed25519" });
    expectFailure(r, "directors[0].privateKey", /use privateKeyPath/);
    expect(r.failures[0]!.reason).not.toContain("/home/ops");
  });
  it("privateKeyPassphrase only with a key", () =>
    expectFailure(withDirector({ privateKey: undefined, password: "pw", privateKeyPassphrase: "x" }), "directors[0].privateKeyPassphrase", /only used with privateKey or privateKeyPath/));
  it("needs a host key policy", () =>
    expectFailure(withDirector({ hostKey: undefined }), "directors[0].hostKey", /no host key policy.*insecureIgnoreHostKey: true/));
  it("insecureIgnoreHostKey: false is not a policy", () =>
    expectFailure(withDirector({ hostKey: undefined, insecureIgnoreHostKey: false }), "directors[0].hostKey", /no host key policy/));
  it("allows only one host key policy", () =>
    expectFailure(withDirector({ knownHosts: "/etc/ssh/ssh_known_hosts" }), "directors[0].knownHosts", /only one of hostKey, knownHosts, insecureIgnoreHostKey/));
  it("hostKey must parse as an OpenSSH public key", () => {
    // A fingerprint is what ssh prints on first connect: said so, quoting what was given (its start, escaped).
    expectFailure(withDirector({ hostKey: "SHA256:p5hW0OG+KEo48eEzaZfHpcZ8O8RAPN+vbLcoDenO7bM" }), "directors[0].hostKey", /^hostKey "SHA256:p5hW0OG\+KEo48eEza…" is a fingerprint, and a fingerprint is not a key line: /);
    expectFailure(withDirector({ hostKey: "AAAA\u001b[2Jxyz" }), "directors[0].hostKey", /^hostKey "AAAA\\x1b\[2Jxyz" is not an OpenSSH public key line like "ssh-ed25519 AAAA… comment"/);
    expectFailure(withDirector({ hostKey: "ssh-ed25519 not*base64" }), "directors[0].hostKey", /not valid base64/);
    expectFailure(withDirector({ hostKey: "ssh-rsa " + publicKeyLine().split(" ")[1] }), "directors[0].hostKey", /not a ssh-rsa key \(it encodes "ssh-ed25519"\)/);
    expectFailure(withDirector({ hostKey: "203.0.113.5 " + publicKeyLine() }), "directors[0].hostKey", /known_hosts line/);
  });
  it("checks jump hosts with the same rules, at their nested path", () => {
    expectFailure(withDirector({ jumpHost: { host: "bastion", agent: true } }), "directors[0].jumpHost.hostKey", /no host key policy/);
    expectFailure(withDirector({ jumpHost: { host: "bastion", agent: true, insecureIgnoreHostKey: true, jumpHost: { host: "x", insecureIgnoreHostKey: true } } }), "directors[0].jumpHost.jumpHost", /no SSH authentication/);
  });
  it("sudo is a director setting, not a jump host one", () =>
    expectFailure(withDirector({ jumpHost: { host: "b", agent: true, insecureIgnoreHostKey: true, sudo: true } }), "directors[0].jumpHost.sudo", /not a known property/));
  it("refuses misspelt properties", () =>
    expectFailure(withDirector({ hostkey: "x" }), "directors[0].hostkey", /not a known property/));
  it("directors: at least one, no host:port twice", () => {
    expectFailure(checkVirtualService(undefined, vs({ directors: [] })), "directors", /at least one director/);
    expectFailure(checkVirtualService(undefined, vs({ directors: undefined })), "directors", /is required/);
    expectFailure(checkVirtualService(undefined, vs({ directors: [director(), director({ host: "203.0.113.5", port: 22 })] })), "directors[1].host", /203\.0\.113\.5:22 is listed twice/);
    expectOk(checkVirtualService(undefined, vs({ directors: [director(), director({ port: 2222 })] })));
  });
});

describe("director hosts: one spelling per host", () => {
  it.each([
    ["010.0.0.1", "8.0.0.1"], // octal
    ["010.000.000.001", "8.0.0.1"], // net.isIPv4 refuses leading zeros, so it used to pass as a host name
    ["10.1", "10.0.0.1"],
    ["0x0a.0.0.1", "10.0.0.1"],
    ["167772161", "10.0.0.1"],
  ])("refuses the ambiguous numeric host %s, saying inet_aton reads it as %s", (host, read) => {
    const r = withDirector({ host });
    expectFailure(r, "directors[0].host", new RegExp(`"${host}" is an ambiguous IPv4 address: inet_aton, and so getaddrinfo and ssh, reads it as ${read.replace(/\./g, "\\.")} .*write four decimal numbers without leading zeros`));
  });
  it("refuses a host whose last label is numeric or hex but is no address", () => {
    expectFailure(withDirector({ host: "db.1" }), "directors[0].host", /"db\.1" cannot be a host name \(no DNS name ends in a numeric label\)/);
    expectFailure(withDirector({ host: "lb.0xff" }), "directors[0].host", /cannot be a host name/);
  });
  it("refuses an IPv4 address with a trailing dot", () =>
    expectFailure(withDirector({ host: "10.0.0.5." }), "directors[0].host", /^host 10\.0\.0\.5\. is an IPv4 address with a trailing dot: write 10\.0\.0\.5$/));
  it("applies to jump hosts at any depth", () => {
    const jump = (host: string) => ({ host: "bastion", agent: true, insecureIgnoreHostKey: true, jumpHost: { host, agent: true, insecureIgnoreHostKey: true } });
    expectFailure(withDirector({ jumpHost: jump("10.1") }), "directors[0].jumpHost.jumpHost.host", /reads it as 10\.0\.0\.1/);
    expect((directorOf({ jumpHost: jump("Outer.Example.") }).jumpHost as { jumpHost: { host: string } }).jumpHost.host).toBe("outer.example");
  });
  it("keeps names that only look numeric in the middle, and plain addresses", () => {
    expect(directorOf({ host: "10.0.0.1.nip.io" }).host).toBe("10.0.0.1.nip.io");
    expect(directorOf({ host: "10.0.0.1" }).host).toBe("10.0.0.1");
    expect(directorOf({ host: "lb1.example." }).host).toBe("lb1.example");
  });
  it("a trailing dot or another case is the same director: listed twice", () => {
    for (const other of ["lb1.example.", "LB1.example", "LB1.EXAMPLE."])
      expectFailure(checkVirtualService(undefined, vs({ directors: [director({ host: "lb1.example" }), director({ host: other })] })),
        "directors[1].host", /director lb1\.example:22 is listed twice \(also directors\[0\]\)/);
  });

  // State written before hosts were normalised still says "lb1.example.".
  const oldState = (inputs: Record<string, unknown>) => {
    const outs = expectOk(checkVirtualService(undefined, inputs)) as Record<string, unknown>;
    return { ...outs, directors: (outs.directors as Record<string, unknown>[]).map((d) => ({ ...d, host: `${String(d.host)}.` })) };
  };
  it("diff: state with the trailing-dot spelling vs news without it is no change", () => {
    const inputs = vs({ directors: [director({ host: "lb1.example" })] });
    const olds = oldState(inputs);
    expect((olds.directors as { host: string }[])[0]!.host).toBe("lb1.example.");
    expect(diffVirtualService("id", olds, checkVirtualService(undefined, inputs).inputs)).toEqual({ changes: false, replaces: [], deleteBeforeReplace: false });
    const rsInputs = rs({ service: serviceRef({ directors: inputs.directors }) });
    const rsOuts = expectOk(checkRealServer(undefined, rsInputs));
    const rsOlds = { ...rsOuts, service: { ...(rsOuts.service as object), directors: olds.directors } };
    expect(diffRealServer("id", rsOlds, checkRealServer(undefined, rsInputs).inputs)).toEqual({ changes: false, replaces: [], deleteBeforeReplace: false });
  });
  it("update keeps such a director (same key from state and news), instead of deleting and re-creating the entry on it", () => {
    const inputs = vs({ directors: [director({ host: "lb1.example" })] });
    // updateEntry() computes added / kept / removed directors by directorKey over parse(olds) and parse(news).
    expect(parseVirtualService(oldState(inputs)).directors.map(directorKey)).toEqual(parseVirtualService(inputs).directors.map(directorKey));
  });
});

describe("director users and secrets", () => {
  it("refuses whitespace and control characters in user, without echoing it", () => {
    for (const user of [" root", "root ", "op s", "ops\n", "o\u0007ps"]) {
      const r = withDirector({ user });
      expectFailure(r, "directors[0].user", /^user must not contain spaces, line breaks or control characters/);
      expect(r.failures[0]!.reason).not.toContain(user);
    }
    expectFailure(withDirector({ user: "" }), "directors[0].user", /^user must not be empty$/);
  });
  it("refuses an empty password or passphrase: leaving it out is how to not use one", () => {
    expectFailure(withDirector({ password: "" }), "directors[0].password", /^password must not be empty; leave it out to not use password authentication$/);
    expectFailure(withDirector({ privateKeyPassphrase: "" }), "directors[0].privateKeyPassphrase", /^privateKeyPassphrase must not be empty; leave it out for an unencrypted key$/);
    expectOk(withDirector({ password: " ", privateKeyPassphrase: "pw" }));
  });
});

describe("private key text in the wrong field", () => {
  const PUTTY = "PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nPrivate-Lines: 1\nc2VjcmV0\n";
  it("privateKeyPath: refused as key text, naming what to do instead", () => {
    for (const privateKeyPath of [PRIVATE_KEY, PUTTY, "/home/ops/.ssh/id\ned25519", "-----BEGIN RSA PRIVATE KEY----- abc"])
      expectFailure(withDirector({ privateKey: undefined, privateKeyPath }), "directors[0].privateKeyPath",
        /^privateKeyPath looks like private key text, not a path: pass the key text as privateKey \(as a secret\), or the path of the key file$/);
    expect(directorOf({ privateKey: undefined, privateKeyPath: "~/.ssh/id_ed25519" }).privateKeyPath).toBe("~/.ssh/id_ed25519");
  });
  it("knownHosts, hostKey, agent and host too; multi-line known_hosts text is fine", () => {
    expectFailure(withDirector({ hostKey: undefined, knownHosts: PRIVATE_KEY }), "directors[0].knownHosts", /^knownHosts looks like private key text, not known_hosts text or a path/);
    expectFailure(withDirector({ hostKey: PRIVATE_KEY }), "directors[0].hostKey", /^hostKey looks like private key text, not a public key: .*as hostKey$/);
    expectFailure(withDirector({ agent: PRIVATE_KEY }), "directors[0].agent", /^agent looks like private key text, not the path of an agent socket/);
    expectFailure(withDirector({ host: PRIVATE_KEY }), "directors[0].host", /^host looks like private key text, not a host name/);
    expectOk(withDirector({ hostKey: undefined, knownHosts: `a ${publicKeyLine()}\nb ${publicKeyLine("ssh-rsa")}\n` }));
  });
  it("no check message of any director or jump host field echoes key text put into it", () => {
    const fields = ["host", "port", "user", "privateKey", "privateKeyPath", "privateKeyPassphrase", "password", "agent", "hostKey",
      "knownHosts", "insecureIgnoreHostKey", "connectTimeoutSeconds", "jumpHost", "sudo", "operationTimeoutSeconds"];
    const hopFields = fields.filter((f) => f !== "sudo" && f !== "operationTimeoutSeconds");
    const jump = { host: "bastion", agent: true, insecureIgnoreHostKey: true };
    let refused = 0;
    for (const [key, body] of [[PRIVATE_KEY, PRIVATE_KEY.split("\n")[1]!], [PUTTY, "c2VjcmV0"]] as const)
      for (const d of [...fields.map((f) => director({ [f]: key })), ...hopFields.map((f) => director({ jumpHost: { ...jump, [f]: key } }))]) {
        const { failures } = checkVirtualService(undefined, vs({ directors: [d] }));
        refused += failures.length;
        for (const f of failures) expect(f.reason, `${f.property}: ${f.reason}`).not.toContain(body);
      }
    expect(refused).toBeGreaterThan(2 * fields.length);
  });
});

describe("new director rules leave unknown values alone", () => {
  it("host, user, secrets and path fields at any depth", () => {
    expectOk(withDirector({ user: U, password: U, privateKeyPassphrase: U, privateKeyPath: U, agent: U }));
    expectOk(withDirector({ hostKey: undefined, knownHosts: U }));
    expectOk(withDirector({ hostKey: U, jumpHost: { host: U, user: U, password: U, hostKey: U } }));
    expectOk(checkVirtualService(undefined, vs({ directors: [director({ host: "lb1.example" }), director({ host: U })] })));
  });
});

describe("parseOpenSshPublicKey", () => {
  it("accepts every common key type and normalises to type + key", () => {
    for (const t of ["ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "sk-ssh-ed25519@openssh.com"])
      expect(parseOpenSshPublicKey(`  ${publicKeyLine(t)}  `)).toEqual({ key: publicKeyLine(t, "").trim() });
  });
  it("refuses several lines", () =>
    expect(parseOpenSshPublicKey(publicKeyLine() + "\n" + publicKeyLine())).toEqual({ error: expect.stringMatching(/single public key line/) }));
});

describe("state written by older versions", () => {
  // Stacks made before a rule tightened must still update, refresh and destroy.
  it("parses with an empty password or passphrase and numeric hosts as ssh read them", () => {
    const legacy = vs({
      directors: [
        director({ host: "10.1", password: "", privateKeyPassphrase: "" }),
        director({ host: "012.0.0.5.", jumpHost: director({ host: "0x0a.0.0.9" }) }),
      ],
    });
    const hosts = parseVirtualService(legacy).directors.map((d) => [d.host, d.jumpHost?.host]);
    expect(hosts).toEqual([["10.0.0.1", undefined], ["10.0.0.5", "10.0.0.9"]]);
    expect(parseVirtualService(legacy).directors[0]!.password).toBeUndefined();
  });

  it("diff sees no change between such state and today's spelling of the same directors", () => {
    const news = checkVirtualService(undefined, vs({ directors: [director({ host: "10.0.0.1" })] })).inputs;
    const olds = { ...news, directors: [{ ...(news.directors as object[])[0], host: "10.1", password: "" }] };
    expect(diffVirtualService("id", olds, news)).toMatchObject({ changes: false, replaces: [] });
  });
});
