// Host key policy of one SSH hop: a pinned OpenSSH public key, known_hosts entries, or an explicit opt-out.
// Pure: the caller hands in the known_hosts text; the verifier compares raw key blobs, never fingerprints of text.

import { createHash, createHmac } from "node:crypto";
import { printable } from "./errors";

export interface PublicKey {
  type: string;
  blob: Buffer;
}

/** "SHA256:…" as OpenSSH prints it (base64 without padding). */
export function fingerprint(blob: Buffer): string {
  return "SHA256:" + createHash("sha256").update(blob).digest("base64").replace(/=+$/, "");
}

/** The key type recorded inside a key blob (its first SSH string). */
export function blobType(blob: Buffer): string {
  if (blob.length < 4) return "unknown";
  const len = blob.readUInt32BE(0);
  // A director's own key blob may say anything: its type name reaches messages escaped.
  return len > 0 && 4 + len <= blob.length ? printable(blob.subarray(4, 4 + len).toString("latin1")) : "unknown";
}

const KEY_TYPES = [
  "ssh-ed25519",
  "ssh-rsa",
  "ecdsa-sha2-nistp256",
  "ecdsa-sha2-nistp384",
  "ecdsa-sha2-nistp521",
  "sk-ssh-ed25519@openssh.com",
  "sk-ecdsa-sha2-nistp256@openssh.com",
  "ssh-dss",
];

/** What was given, for a message: its start only (a key line is long), control characters escaped. */
function quoted(given: string): string {
  const s = given.trim();
  return `"${printable(s.slice(0, 24))}${s.length > 24 ? "…" : ""}"`;
}

/**
 * Parses an OpenSSH public key line ("type base64 [comment]") into "type base64", or says what is wrong with it (in
 * words for the hostKey field: check() reports them).
 */
export function parseOpenSshPublicKey(line: string): { key: string } | { error: string } {
  const tokens = line.trim().split(/\s+/);
  const [type, b64] = tokens;
  if (/[\r\n]/.test(line.trim())) return { error: "hostKey must be a single public key line; for several keys use knownHosts" };
  if (!KEY_TYPES.includes(type ?? "")) {
    if (KEY_TYPES.includes(tokens[1] ?? ""))
      return { error: "hostKey looks like a known_hosts line (it starts with host names): keep only the key part, or use knownHosts" };
    if (/^(SHA256|MD5):/i.test(type ?? ""))
      return {
        error:
          `hostKey ${quoted(line)} is a fingerprint, and a fingerprint is not a key line: pin the director's public key line, ` +
          `as \`ssh-keyscan -t ed25519 HOST\` prints it after the host name ("ssh-ed25519 AAAA…"), or use knownHosts`,
      };
    return { error: `hostKey ${quoted(line)} is not an OpenSSH public key line like "ssh-ed25519 AAAA… comment" (key types: ${KEY_TYPES.join(", ")})` };
  }
  if (!b64 || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || b64.length % 4 !== 0)
    return { error: `hostKey: the key data after "${type}" is not valid base64` };
  // The blob starts with the key type as an SSH string (uint32 length + bytes); it must repeat the declared type.
  const inner = blobType(Buffer.from(b64, "base64"));
  if (inner !== type) return { error: `hostKey: the key data is not a ${type} key (it encodes ${inner !== "unknown" ? JSON.stringify(inner) : "garbage"})` };
  return { key: `${type} ${b64}` };
}

/** The key of a public key line; undefined when it is not one (parseOpenSshPublicKey says why). */
export function parsePublicKey(line: string): PublicKey | undefined {
  const r = parseOpenSshPublicKey(line);
  if ("error" in r) return undefined;
  const [type, data] = r.key.split(" ");
  return { type: type!, blob: Buffer.from(data!, "base64") };
}

/** The line a user can pin or append to known_hosts. */
export function publicKeyLine(blob: Buffer): string {
  return `${blobType(blob)} ${blob.toString("base64")}`;
}

export interface KnownHostsEntry {
  marker?: "@revoked" | "@cert-authority";
  /** Comma-separated patterns, or one hashed "|1|salt|hash" name. */
  hosts: string;
  key: PublicKey;
}

export function parseKnownHosts(text: string): KnownHostsEntry[] {
  const entries: KnownHostsEntry[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const fields = line.split(/\s+/);
    const marker = fields[0] === "@revoked" || fields[0] === "@cert-authority" ? fields.shift() : undefined;
    const [hosts, type, data] = fields;
    if (!hosts || !type || !data) continue;
    const key = parsePublicKey(`${type} ${data}`);
    if (key) entries.push({ marker: marker as KnownHostsEntry["marker"], hosts, key });
  }
  return entries;
}

/** The name known_hosts records for host:port ("host" on 22, "[host]:port" otherwise). */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function globToRegExp(pattern: string): RegExp {
  const body = pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${body}$`, "i");
}

/** OpenSSH matching: hashed names by HMAC-SHA1, otherwise comma patterns with * ? and !negation. */
export function hostsFieldMatches(hosts: string, name: string): boolean {
  if (hosts.startsWith("|1|")) {
    const [, , salt, hash] = hosts.split("|");
    if (!salt || !hash) return false;
    const mac = createHmac("sha1", Buffer.from(salt, "base64")).update(name).digest("base64");
    return mac === hash;
  }
  let matched = false;
  for (const pattern of hosts.split(",")) {
    const negated = pattern.startsWith("!");
    if (globToRegExp(negated ? pattern.slice(1) : pattern).test(name)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

/** ssh2 host key algorithm names that can present a key of this type. */
export function algorithmsForKeyType(type: string): string[] {
  if (type === "ssh-rsa") return ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"];
  if (["ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-dss"].includes(type)) return [type];
  return [];
}

export type HostKeyPolicy =
  | { kind: "pinned"; key: PublicKey }
  | { kind: "knownHosts"; entries: KnownHostsEntry[]; source: string }
  | { kind: "insecure" }
  | { kind: "none" };

export interface HostKeyCheck {
  /** Host key algorithms to offer, so the server presents a key type we can check (undefined = ssh2's defaults). */
  algorithms?: string[];
  /** undefined = accepted; otherwise the whole sentence explaining the refusal. */
  check(blob: Buffer): string | undefined;
}

/** Builds the check for one hop; `target` is user@host:port for messages, host/port are what known_hosts records. */
export function hostKeyCheck(policy: HostKeyPolicy, target: string, host: string, port: number): HostKeyCheck {
  const presented = (blob: Buffer) => `it presented ${blobType(blob)} ${fingerprint(blob)}`;
  switch (policy.kind) {
    case "insecure":
      return { check: () => undefined };
    case "none":
      return {
        check: (blob) =>
          `refusing ${target}: no host key policy is set and ${presented(blob)}. Verify that fingerprint out of band, ` +
          `then set hostKey: "${publicKeyLine(blob)}" (or knownHosts), or set insecureIgnoreHostKey: true.`,
      };
    case "pinned": {
      const expected = policy.key;
      return {
        algorithms: algorithmsForKeyType(expected.type),
        check: (blob) =>
          blob.equals(expected.blob)
            ? undefined
            : `host key mismatch for ${target}: ${presented(blob)}, but hostKey pins ${expected.type} ${fingerprint(expected.blob)}. ` +
              `If the director was re-installed, update hostKey; otherwise someone may be intercepting the connection.`,
      };
    }
    case "knownHosts": {
      const name = knownHostsName(host, port);
      const forHost = policy.entries.filter((e) => hostsFieldMatches(e.hosts, name));
      const trusted = forHost.filter((e) => e.marker === undefined);
      const revoked = forHost.filter((e) => e.marker === "@revoked").map((e) => e.key.blob);
      const types = [...new Set(trusted.map((e) => e.key.type))];
      const algorithms = types.flatMap(algorithmsForKeyType);
      return {
        algorithms: algorithms.length > 0 ? algorithms : undefined,
        check: (blob) => {
          if (revoked.some((r) => r.equals(blob))) return `refusing ${target}: ${presented(blob)}, which ${policy.source} marks @revoked.`;
          if (trusted.some((e) => e.key.blob.equals(blob))) return undefined;
          if (trusted.length === 0) {
            return (
              `refusing ${target}: ${policy.source} has no entry for ${name} and ${presented(blob)}. ` +
              `Verify that fingerprint out of band, then add "${name} ${publicKeyLine(blob)}" to knownHosts.`
            );
          }
          const expected = trusted.map((e) => `${e.key.type} ${fingerprint(e.key.blob)}`).join(", ");
          return (
            `host key mismatch for ${target}: ${presented(blob)}, but ${policy.source} expects ${expected} for ${name}. ` +
            `If the director was re-installed, update knownHosts; otherwise someone may be intercepting the connection.`
          );
        },
      };
    }
  }
}
