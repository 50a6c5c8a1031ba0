// How a Pulumi program says where a director is and how to log in: the Input<>-wrapped twin of provider/director.ts.
// The provider's schema (provider/schema/director.ts) validates these and resolves the defaults documented here.
import type * as pulumi from "@pulumi/pulumi";

/** One SSH hop: a director or a bastion in front of one. */
export interface SshConnectionArgs {
  /** Host name or IP address (IPv6 with or without brackets). */
  host: pulumi.Input<string>;
  /** SSH port, 1..65535. Default 22. */
  port?: pulumi.Input<number>;
  /** Login user. Default "root". */
  user?: pulumi.Input<string>;

  // Authentication: give at least one of privateKey, privateKeyPath, password, agent.
  /** Private key text (PEM / OpenSSH / PuTTY). Pass it as a secret, e.g. `cfg.requireSecret("sshKey")`. */
  privateKey?: pulumi.Input<string>;
  /** Path of a private key file on the machine running `pulumi`. */
  privateKeyPath?: pulumi.Input<string>;
  /** Passphrase of an encrypted private key (secret). Only with privateKey or privateKeyPath. */
  privateKeyPassphrase?: pulumi.Input<string>;
  /** Password authentication (secret). */
  password?: pulumi.Input<string>;
  /** `true` = the agent at $SSH_AUTH_SOCK; a string = that agent socket path. */
  agent?: pulumi.Input<boolean | string>;

  // Host key policy: exactly one of hostKey, knownHosts, insecureIgnoreHostKey. Unknown keys are refused.
  /** Pinned host key: an OpenSSH public key line, e.g. the content of /etc/ssh/ssh_host_ed25519_key.pub. */
  hostKey?: pulumi.Input<string>;
  /** known_hosts file content, or the path of a known_hosts file. */
  knownHosts?: pulumi.Input<string>;
  /** Accept any host key (man-in-the-middle possible). Only for labs. */
  insecureIgnoreHostKey?: pulumi.Input<boolean>;

  /** Seconds for the TCP connect + SSH handshake of this hop, 1..3600. Default 20. */
  connectTimeoutSeconds?: pulumi.Input<number>;
  /** A bastion to reach this host through; bastions may have their own jumpHost. */
  jumpHost?: pulumi.Input<SshConnectionArgs>;
}

/** A director: a Linux host whose kernel runs IPVS, reached over SSH. */
export interface DirectorArgs extends SshConnectionArgs {
  /** Run the helper through `sudo -n` (needs passwordless sudo). Default: true unless user is "root". */
  sudo?: pulumi.Input<boolean>;
  /**
   * Seconds each wait on the connected director may take (a channel to open, the helper to start or answer a batch,
   * an upload, a modprobe or netlink call inside the helper), 1..3600. On expiry the operations fail naming the
   * director, the operation and this deadline. Default 60.
   */
  operationTimeoutSeconds?: pulumi.Input<number>;
}

/** A director as recorded in state (credentials included, hence a secret output). */
export type DirectorState = { [K in keyof DirectorArgs]: pulumi.Unwrap<DirectorArgs[K]> };
