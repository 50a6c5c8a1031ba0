// Dials one director through its chain of jump hosts: connect to the outermost bastion, forwardOut to the next hop,
// run the next SSH handshake over that stream, and so on. Each hop has its own credentials and host key policy, and
// the host key is checked before any credential is sent.

import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import type { Duplex, Readable } from "node:stream";
import type { NodeSSH } from "node-ssh";
import { CREDENTIAL_FIELDS, endpointLabel, type SshEndpoint } from "../director";
import { classifyConnectError, DirectorError } from "./errors";
import { hostKeyCheck, parseKnownHosts, parsePublicKey, type HostKeyPolicy } from "./hostKeys";
import { noAnswerWithin, within } from "./retry";

/** The slice of ssh2's ClientChannel we use (node-ssh ships ssh2 without type declarations). */
export interface SshChannel extends Duplex {
  stderr: Readable;
  close(): void;
  on(event: "close", listener: (code?: number | null, signal?: string) => void): this;
  on(event: "exit", listener: (code: number | null, signal?: string) => void): this;
  on(event: string, listener: (...args: any[]) => void): this;
}

/** The slice of ssh2's Client we use. */
export interface SshClient {
  exec(command: string, cb: (err: Error | undefined, channel: SshChannel) => void): boolean;
  forwardOut(srcIP: string, srcPort: number, dstIP: string, dstPort: number, cb: (err: Error | undefined, stream: Duplex) => void): boolean;
  on(event: "close" | "end", listener: () => void): this;
  on(event: "error", listener: (err: Error) => void): this;
  end(): void;
  destroy(): void;
}

/** An established chain: `client` is the director's; `close()` tears down every hop. */
export interface Connection {
  client: SshClient;
  readonly closed: boolean;
  close(): void;
  onClose(listener: () => void): void;
}

/** The secret values of every hop, to scrub from any text we pass on. */
export function endpointSecrets(ep: SshEndpoint): string[] {
  const own = CREDENTIAL_FIELDS.map((f) => ep[f]).filter((s): s is string => typeof s === "string" && s.length > 0);
  return ep.jumpHost ? [...own, ...endpointSecrets(ep.jumpHost)] : own;
}

/** A hop's bound on reaching it: its TCP connect (direct or forwarded by the previous hop), then its handshake. */

function expandHome(p: string): string {
  return p.startsWith("~/") ? homedir() + p.slice(1) : p;
}

export function hostKeyPolicyOf(ep: SshEndpoint, target: string): HostKeyPolicy {
  if (ep.hostKey !== undefined) {
    const key = parsePublicKey(ep.hostKey);
    if (!key) throw new DirectorError("config", target, `hostKey for ${target} is not an OpenSSH public key line ("ssh-ed25519 AAAA…").`);
    return { kind: "pinned", key };
  }
  if (ep.knownHosts !== undefined) {
    const value = ep.knownHosts;
    // A single token is a path; known_hosts text always has "name type key" fields.
    const isPath = !/\s/.test(value.trim()) || (!value.includes("\n") && existsSync(expandHome(value)));
    if (!isPath) return { kind: "knownHosts", entries: parseKnownHosts(value), source: "knownHosts" };
    const path = expandHome(value.trim());
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (err) {
      throw new DirectorError("config", target, `cannot read knownHosts file ${path} for ${target}: ${(err as Error).message}.`);
    }
    return { kind: "knownHosts", entries: parseKnownHosts(text), source: `known_hosts file ${path}` };
  }
  if (ep.insecureIgnoreHostKey === true) return { kind: "insecure" };
  return { kind: "none" };
}

interface AuthConfig {
  privateKey?: string;
  passphrase?: string;
  password?: string;
  tryKeyboard?: boolean;
  agent?: string;
}

/** Credentials for ssh2; returns the key file's text too so it can be scrubbed from messages. */
function authConfigOf(ep: SshEndpoint, target: string): { auth: AuthConfig; fileSecret?: string } {
  const auth: AuthConfig = {};
  let fileSecret: string | undefined;
  if (ep.privateKey !== undefined) auth.privateKey = ep.privateKey;
  else if (ep.privateKeyPath !== undefined) {
    const path = expandHome(ep.privateKeyPath);
    try {
      fileSecret = auth.privateKey = readFileSync(path, "utf8");
    } catch (err) {
      // Never the value: a key pasted into privateKeyPath by mistake would be printed.
      throw new DirectorError("config", target, `cannot read the file given as privateKeyPath for ${target} (${(err as NodeJS.ErrnoException).code ?? "error"}).`);
    }
  }
  if (auth.privateKey !== undefined && ep.privateKeyPassphrase !== undefined) auth.passphrase = ep.privateKeyPassphrase;
  if (ep.password !== undefined) {
    auth.password = ep.password;
    auth.tryKeyboard = true;
  }
  if (ep.agent === true) {
    const sock = process.env.SSH_AUTH_SOCK;
    if (!sock) throw new DirectorError("config", target, `agent: true for ${target}, but SSH_AUTH_SOCK is not set; start ssh-agent or give the socket path.`);
    auth.agent = sock;
  } else if (typeof ep.agent === "string") auth.agent = ep.agent;
  // At least one of them is set: the schema's rule (provider/schema/director.ts) refuses a hop without credentials.
  return { auth, fileSecret };
}

/** One SSH handshake + authentication, directly or over `sock` (a stream forwarded by the previous hop). */
async function dialHop(ep: SshEndpoint, sock: Duplex | undefined, secrets: Set<string>, via: string): Promise<SshClient> {
  const target = endpointLabel(ep) + via;
  const policy = hostKeyPolicyOf(ep, target);
  const { auth, fileSecret } = authConfigOf(ep, target);
  if (fileSecret) secrets.add(fileSecret);
  const hostKey = hostKeyCheck(policy, target, ep.host, ep.port);
  let rejection: string | undefined;
  // Loaded on the first connection, not with the provider: a preview or a no-change up never dials a director.
  const ssh: NodeSSH = new (require("node-ssh") as typeof import("node-ssh")).NodeSSH();
  try {
    await ssh.connect({
      host: sock ? undefined : ep.host,
      port: ep.port,
      sock,
      username: ep.user,
      ...auth,
      readyTimeout: ep.connectTimeoutSeconds * 1000,
      // Detects a dead peer on an idle pooled connection within ~45 s.
      keepaliveInterval: 15_000,
      keepaliveCountMax: 3,
      ...(hostKey.algorithms ? { algorithms: { serverHostKey: hostKey.algorithms } } : {}),
      hostVerifier: (key: Buffer) => {
        rejection = hostKey.check(key);
        return rejection === undefined;
      },
    });
  } catch (err) {
    (ssh.connection as SshClient | null)?.destroy();
    throw classifyConnectError(err, target, rejection, [...secrets]);
  }
  const client = ssh.connection as SshClient;
  // node-ssh drops its error listener once ready; without one a later socket error would crash the plugin process.
  client.on("error", () => undefined);
  return client;
}

function forwardOut(client: SshClient, to: SshEndpoint, target: string, secrets: Set<string>): Promise<Duplex> {
  const opened = new Promise<Duplex>((resolve, reject) => {
    client.forwardOut("127.0.0.1", 0, to.host, to.port, (err, stream) =>
      err ? reject(classifyConnectError(err, target, undefined, [...secrets])) : resolve(stream),
    );
  });
  // The bastion answers only when its own TCP connect gives up (~127 s on Linux for a black-holed host). A stream that
  // opens late is closed with the bastion's connection, which dial() ends on any failure.
  const seconds = to.connectTimeoutSeconds;
  return within(
    opened,
    seconds * 1000,
    () => new DirectorError("unreachable", target, `cannot reach ${target}: the jump host gave ${noAnswerWithin(seconds, "connectTimeoutSeconds")}.`),
  );
}

/** Outermost bastion first, the director last. */
function hopsOf(ep: SshEndpoint): SshEndpoint[] {
  return ep.jumpHost ? [...hopsOf(ep.jumpHost), ep] : [ep];
}

/** Dials the whole chain once (no retries here: see retry.ts). */
export async function dial(director: SshEndpoint, secrets: Set<string>): Promise<Connection> {
  const hops = hopsOf(director);
  const clients: SshClient[] = [];
  const closeAll = () => [...clients].reverse().forEach((c) => c.end());
  try {
    for (const [i, hop] of hops.entries()) {
      const via = i < hops.length - 1 ? ` (jump host for ${endpointLabel(director)})` : "";
      const sock = i === 0 ? undefined : await forwardOut(clients[i - 1]!, hop, endpointLabel(hop) + ` (through ${endpointLabel(hops[i - 1]!)})`, secrets);
      clients.push(await dialHop(hop, sock, secrets, via));
    }
  } catch (err) {
    closeAll();
    throw err;
  }
  let closed = false;
  const listeners: Array<() => void> = [];
  const markClosed = () => {
    if (closed) return;
    closed = true;
    closeAll();
    listeners.forEach((l) => l());
  };
  // Any hop going away takes the whole chain with it.
  for (const c of clients) c.on("close", markClosed);
  return {
    client: clients[clients.length - 1]!,
    get closed() {
      return closed;
    },
    close: markClosed,
    onClose: (l) => listeners.push(l),
  };
}
