import { describe, expect, it } from "vitest";
import {
  algorithmsForKeyType,
  fingerprint,
  hostKeyCheck,
  hostsFieldMatches,
  parseKnownHosts,
  parsePublicKey,
} from "../../provider/session/hostKeys";

// Fixtures made with ssh-keygen; fingerprints as printed by `ssh-keygen -lf`, hashed line by `ssh-keygen -H`.
const ED = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJUZWyYTE+8TsmSBzaJ71wnwP1Q1cVJh89IiWZsW7DX7 test";
const ED_FP = "SHA256:8U2PTLncJoxdAw1eO9GvJhQqUksnzo8cEGKh/BN91IU";
const RSA =
  "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDJkoHRjo/pZreLqy4VVY+vxrFpLxtp46BwdtSyrbI0PxzxsVb5aXhZ6vJHWusk+zPCkd5lj83uNW0ODYQYrI36jf/JyiR4I811hMtmYNSRGmlKJaGMleLymzZowwxRw6afPWfeln8PmM6CQOoZu0n0Cg6gKbdwkXuWiMqwdNm6Ew== t2";
const RSA_FP = "SHA256:I1iVbQtD9AUwiPrXWArLhcJ57mcmurd9tm/fZZsE62A";
const HASHED_2222 =
  "|1|oly79I/Sq/J8TSc2qYp1yuuquP8=|eqE5qys4DOt498RCDEkM+lbr44o= ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJUZWyYTE+8TsmSBzaJ71wnwP1Q1cVJh89IiWZsW7DX7";

const ed = parsePublicKey(ED)!;
const rsa = parsePublicKey(RSA)!;

describe("public keys", () => {
  it("parses OpenSSH lines and fingerprints them like ssh-keygen", () => {
    expect(ed.type).toBe("ssh-ed25519");
    expect(fingerprint(ed.blob)).toBe(ED_FP);
    expect(fingerprint(rsa.blob)).toBe(RSA_FP);
  });

  it("rejects text that is not a key, or whose type does not match the blob", () => {
    expect(parsePublicKey("not a key")).toBeUndefined();
    expect(parsePublicKey(ED.replace("ssh-ed25519", "ssh-rsa"))).toBeUndefined();
  });

  it("offers only the host key algorithms that can present a given key type", () => {
    expect(algorithmsForKeyType("ssh-rsa")).toEqual(["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]);
    expect(algorithmsForKeyType("ssh-ed25519")).toEqual(["ssh-ed25519"]);
    expect(algorithmsForKeyType("sk-ssh-ed25519@openssh.com")).toEqual([]);
  });
});

describe("known_hosts matching", () => {
  it("matches [host]:port for non-22 ports and the bare name on 22", () => {
    expect(hostsFieldMatches("[127.0.0.1]:2222", "[127.0.0.1]:2222")).toBe(true);
    expect(hostsFieldMatches("127.0.0.1", "[127.0.0.1]:2222")).toBe(false);
    expect(hostsFieldMatches("dir1,10.0.0.1", "10.0.0.1")).toBe(true);
  });

  it("matches hashed names by HMAC-SHA1", () => {
    const [entry] = parseKnownHosts(HASHED_2222);
    expect(hostsFieldMatches(entry!.hosts, "[127.0.0.1]:2222")).toBe(true);
    expect(hostsFieldMatches(entry!.hosts, "[127.0.0.1]:2223")).toBe(false);
  });

  it("honours wildcards and negation", () => {
    expect(hostsFieldMatches("*.lb.example", "dir1.lb.example")).toBe(true);
    expect(hostsFieldMatches("*.lb.example,!dir2.lb.example", "dir2.lb.example")).toBe(false);
    expect(hostsFieldMatches("dir?.lb.example", "dir10.lb.example")).toBe(false);
  });

  it("skips comments, blank and malformed lines, and keeps markers", () => {
    const entries = parseKnownHosts(`# comment\n\ngarbage\n@revoked * ${RSA}\n${HASHED_2222}\n`);
    expect(entries.map((e) => e.marker)).toEqual(["@revoked", undefined]);
  });
});

describe("host key checks", () => {
  const target = "ops@127.0.0.1:2222";

  it("pinned: accepts the same blob, refuses another with both fingerprints in the message", () => {
    const check = hostKeyCheck({ kind: "pinned", key: ed }, target, "127.0.0.1", 2222);
    expect(check.check(ed.blob)).toBeUndefined();
    const refusal = check.check(rsa.blob)!;
    expect(refusal).toContain(target);
    expect(refusal).toContain(RSA_FP);
    expect(refusal).toContain(ED_FP);
    expect(check.algorithms).toEqual(["ssh-ed25519"]);
  });

  it("knownHosts: accepts a listed key, offers only listed types, explains a missing entry", () => {
    const entries = parseKnownHosts(HASHED_2222);
    const check = hostKeyCheck({ kind: "knownHosts", entries, source: "knownHosts" }, target, "127.0.0.1", 2222);
    expect(check.check(ed.blob)).toBeUndefined();
    expect(check.algorithms).toEqual(["ssh-ed25519"]);
    expect(check.check(rsa.blob)).toMatch(/host key mismatch .*I1iVbQ.*expects ssh-ed25519 SHA256:8U2P/);

    const other = hostKeyCheck({ kind: "knownHosts", entries, source: "knownHosts" }, target, "127.0.0.1", 22);
    expect(other.algorithms).toBeUndefined();
    expect(other.check(ed.blob)).toMatch(/has no entry for 127\.0\.0\.1 .*add "127\.0\.0\.1 ssh-ed25519 AAAA/);
  });

  it("knownHosts: a @revoked key is refused even when also listed", () => {
    const entries = parseKnownHosts(`@revoked * ${ED}\n[127.0.0.1]:2222 ${ED}`);
    const check = hostKeyCheck({ kind: "knownHosts", entries, source: "knownHosts" }, target, "127.0.0.1", 2222);
    expect(check.check(ed.blob)).toMatch(/@revoked/);
  });

  it("no policy: refuses and shows the line to pin; insecure: accepts anything", () => {
    const none = hostKeyCheck({ kind: "none" }, target, "127.0.0.1", 2222).check(ed.blob)!;
    expect(none).toContain(ED_FP);
    expect(none).toContain(`hostKey: "${ED.split(" ").slice(0, 2).join(" ")}"`);
    expect(hostKeyCheck({ kind: "insecure" }, target, "127.0.0.1", 2222).check(rsa.blob)).toBeUndefined();
  });
});
