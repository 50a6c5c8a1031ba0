import { describe, expect, it } from "vitest";
import { checkVirtualService, parseOpenSshPublicKey } from "../../provider/schema";
import { U, director, expectFailure, expectOk, publicKeyLine, vs } from "./fixtures";

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
    expectFailure(withDirector({ hostKey: "SHA256:abcdef" }), "directors[0].hostKey", /OpenSSH public key line/);
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

describe("parseOpenSshPublicKey", () => {
  it("accepts every common key type and normalises to type + key", () => {
    for (const t of ["ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "sk-ssh-ed25519@openssh.com"])
      expect(parseOpenSshPublicKey(`  ${publicKeyLine(t)}  `)).toEqual({ key: publicKeyLine(t, "").trim() });
  });
  it("refuses several lines", () =>
    expect(parseOpenSshPublicKey(publicKeyLine() + "\n" + publicKeyLine())).toEqual({ error: expect.stringMatching(/single public key line/) }));
});
