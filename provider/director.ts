// How to reach a director, after Pulumi has resolved every Input. The zod schema in provider/schema/director.ts validates user
// input into exactly this shape; the director session (provider/session/) consumes it. src/director.ts is the
// Input<>-wrapped twin that Pulumi programs write.

/** The fields of one SSH hop whose values are secrets: made secret in state (src/secrets.ts), scrubbed from messages. */
export const CREDENTIAL_FIELDS = ["privateKey", "privateKeyPassphrase", "password"] as const;

/** One SSH hop: the director itself or a bastion in front of it. */
export interface SshEndpoint {
  host: string;
  /** Default 22. */
  port: number;
  /** Default "root". */
  user: string;
  /** PEM/OpenSSH private key text (a secret input). */
  privateKey?: string;
  /** Path to a private key file on the machine running `pulumi`. */
  privateKeyPath?: string;
  /** Passphrase of an encrypted private key (a secret input). */
  privateKeyPassphrase?: string;
  /** Password authentication (a secret input). */
  password?: string;
  /** true = use $SSH_AUTH_SOCK; a string = that agent socket path. */
  agent?: boolean | string;
  /** Pinned host key, an OpenSSH public key line ("ssh-ed25519 AAAA…", optional comment). */
  hostKey?: string;
  /** known_hosts content or a path to a known_hosts file. */
  knownHosts?: string;
  /** Accept any host key. Must be set explicitly; otherwise an unknown key is refused. */
  insecureIgnoreHostKey?: boolean;
  /** Seconds to wait for the TCP connect + handshake of this hop (the schema's default: 20). */
  connectTimeoutSeconds: number;
  /** A bastion to reach this host through (nestable). */
  jumpHost?: SshEndpoint;
}

/** A director: an SSH endpoint whose kernel runs IPVS. */
export interface Director extends SshEndpoint {
  /** Run the helper through `sudo -n`. Default: user !== "root". */
  sudo: boolean;
  /**
   * Deadline in seconds for each wait on the director once connected: a channel to open, the helper to start, a
   * batch to be answered, an upload. The helper gets a slightly shorter one for its own kernel and modprobe waits.
   * Default 60.
   */
  operationTimeoutSeconds: number;
}

/** "host:port", or "[v6]:port" for an IPv6 address: how every message and id writes an endpoint. */
export function hostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** "user@host:port": how every message names a director (or a jump host). */
export function endpointLabel(ep: Pick<SshEndpoint, "user" | "host" | "port">): string {
  return `${ep.user}@${directorKey(ep)}`;
}

/** A director's identity: what makes it "the same director" across credential changes. */
export function directorKey(d: Pick<SshEndpoint, "host" | "port">): string {
  return hostPort(d.host, d.port);
}
