// The one error type of the director session, and the rules that decide whether a failure is worth retrying.
// Messages name the director as user@host:port and say what to do; they never carry a secret (see redact()).

export type DirectorErrorKind =
  /** Bad connection settings (unreadable key file, agent socket missing, …): fix the program. */
  | "config"
  /** The host key was not the expected one, or no host key policy was given. */
  | "hostKey"
  /** The server refused every credential we offered. */
  | "auth"
  /** sudo -n wanted a password. */
  | "sudoPassword"
  /** Network trouble: refused, reset, timed out, dropped. Retried with backoff. */
  | "unreachable"
  /** A command on the director failed. */
  | "command"
  /** The helper process exited or its channel closed. */
  | "helper";

export class DirectorError extends Error {
  override readonly name = "DirectorError";
  constructor(
    readonly kind: DirectorErrorKind,
    /** user@host:port of the director (or of the bastion hop that failed). */
    readonly target: string,
    message: string,
    /**
     * An operation had been sent to the helper (it may have been applied). False for every failure before that:
     * connecting, the host key, authenticating, sudo, starting or installing the helper.
     */
    readonly opSent = false,
  ) {
    super(message);
  }

  get retryable(): boolean {
    return this.kind === "unreachable";
  }
}

/**
 * The failure happened before any operation reached the director, so nothing can have changed there: a create or update
 * that failed this way has nothing to record in state.
 */
export function reachedNothing(e: unknown): boolean {
  return e instanceof DirectorError && !e.opSent;
}

const TRANSIENT_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EPIPE",
  "EAI_AGAIN",
  "ECONNABORTED",
]);

/** What ssh2 and net hand us: an Error with optional `level` (ssh2) and `code` (errno name) fields. */
interface SshLikeError {
  message?: unknown;
  level?: unknown;
  code?: unknown;
  reason?: unknown;
}

/**
 * Turns a failure while dialling one hop into a DirectorError. `hostKeyRejection` is the message our host key
 * verifier left behind when it refused the key (ssh2 itself only says "Host denied").
 */
export function classifyConnectError(
  err: unknown,
  target: string,
  hostKeyRejection: string | undefined,
  secrets: readonly string[],
): DirectorError {
  if (err instanceof DirectorError) return err;
  if (hostKeyRejection !== undefined) return new DirectorError("hostKey", target, hostKeyRejection);
  const e = (err ?? {}) as SshLikeError;
  // ssh2 quotes the server in places (a disconnect reason, its identification line).
  const raw = printable(redact(String(e.message ?? err), secrets));
  const code = typeof e.code === "string" ? e.code : undefined;
  if (e.level === "client-authentication") {
    return new DirectorError(
      "auth",
      target,
      `SSH authentication failed for ${target}: the server refused every credential offered (${raw}). ` +
        `Check privateKey/privateKeyPath/password/agent for this user.`,
    );
  }
  if (e.level === "agent") {
    return new DirectorError("config", target, `SSH agent failed while connecting to ${target}: ${raw}. Check the agent socket.`);
  }
  // "Connection lost before handshake": the TCP connect succeeded but the peer closed before saying a word of SSH: an
  // sshd going down or restarting, one over MaxStartups, or a port forwarder (qemu, a NAT box) whose far side refused.
  if (
    e.level === "client-timeout" ||
    (code !== undefined && TRANSIENT_CODES.has(code)) ||
    /No response from server|Connection lost before handshake/.test(raw)
  ) {
    return new DirectorError("unreachable", target, `cannot reach ${target}: ${raw}${code && !raw.includes(code) ? ` (${code})` : ""}.`);
  }
  // A bastion that could not open the next hop (sshd there down or restarting) says so with a channel open failure.
  if (typeof e.reason === "number" || /Connection refused|connect failed|Channel open failure/i.test(raw)) {
    return new DirectorError("unreachable", target, `cannot reach ${target} through its jump host: ${raw}.`);
  }
  if (/passphrase|privateKey|Cannot parse/i.test(raw)) {
    return new DirectorError("config", target, `cannot use the private key for ${target}: ${raw}. Check privateKey/privateKeyPassphrase.`);
  }
  if (e.level === "client-dns" || code === "ENOTFOUND") {
    return new DirectorError("config", target, `cannot resolve the host of ${target}: ${raw}. Check the host name.`);
  }
  return new DirectorError("config", target, `SSH connection to ${target} failed: ${raw}.`);
}

/**
 * Text from a director (the helper's error sentences, a command's stderr, what ssh2 quotes of the server, a key type)
 * as it may be shown on a terminal: control characters (C0 but tab, DEL, C1) and the bidirectional overrides are
 * written as escapes, so a compromised or confused director cannot move the cursor, recolour, retitle or reorder what
 * the user reads. Newlines are escaped too unless `lines` (a multi-line stderr kept readable). `json`: the text is a
 * JSON document, escaped as \uXXXX inside its strings, which JSON reads back as the same text.
 */
export function printable(text: string, opts: { lines?: boolean; json?: boolean } = {}): string {
  return text.replace(/[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, (c) => {
    if (c === "\n" && (opts.lines || opts.json)) return c;
    const code = c.charCodeAt(0);
    if (opts.json) return `\\u${code.toString(16).padStart(4, "0")}`;
    if (c === "\n") return "\\n";
    if (c === "\r") return "\\r";
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
  });
}

/** Secrets (and key lines) shorter than this are redacted only where they stand alone; see redact(). */
const SHORT_SECRET = 4;

/**
 * Replaces every non-empty secret (and each of its lines, for multi-line keys) in `text` with "[redacted]".
 * Pieces of 4+ characters go wherever they occur. Shorter ones go only as a whole token (no letter or digit right
 * before or after): cutting "ab" out of every word would mangle the message and, worse, the gaps would spell the
 * secret out; glued to letters or digits, a short secret is not shown as a value anyway. A short secret that equals
 * a word of the message ("ops") is redacted there too, which is the price of redacting it at all. One pass over all
 * pieces, longest first, so one secret never cuts into another and nothing rescans "[redacted]". Pieces are trimmed:
 * surrounding whitespace (a key file's final newline) is no secret, and a blank one would match everywhere.
 */
export function redact(text: string, secrets: readonly string[]): string {
  const pieces = new Set(secrets.flatMap((secret) => [secret, ...secret.split(/\r?\n/)].map((s) => s.trim())));
  pieces.delete("");
  if (pieces.size === 0) return text;
  const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const alternatives = [...pieces]
    .sort((a, b) => b.length - a.length)
    .map((p) => (p.length >= SHORT_SECRET ? escape(p) : `(?<![\\p{L}\\p{N}])${escape(p)}(?![\\p{L}\\p{N}])`));
  return text.replace(new RegExp(alternatives.join("|"), "gu"), "[redacted]");
}

/** sudo -n's ways of saying it would need a password (or a terminal to ask for one). */
export function sudoWantsPassword(stderr: string): boolean {
  return /a password is required|a terminal is required|no tty present/i.test(stderr);
}

export function sudoPasswordError(target: string, user: string): DirectorError {
  return new DirectorError(
    "sudoPassword",
    target,
    `sudo on ${target} requires a password; configure NOPASSWD sudo for ${user} (e.g. "${user} ALL=(root) NOPASSWD: ALL" ` +
      `in /etc/sudoers.d/) or connect as root with sudo: false.`,
  );
}
