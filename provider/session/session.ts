// One director session: a lazily dialled, shared SSH connection (through its jump hosts) on which commands run as root
// (via `sudo -n` when the director says so). Concurrent callers share one dial; a dropped connection is forgotten and
// re-dialled with backoff on the next use; an idle connection is closed so the plugin process can exit.

import type { Director } from "../director";
import { endpointLabel } from "../director";
import { dial, endpointSecrets, type Connection, type SshChannel } from "./connect";
import { DirectorError, printable, redact, sudoPasswordError, sudoWantsPassword } from "./errors";
import { noAnswerWithin, retryPolicyFor, within, withRetry } from "./retry";

/** Counters for tests and measurements. */
export interface SessionStats {
  /** TCP+SSH dial attempts (each hop chain counts once). */
  dialAttempts: number;
  /** Successful connections. */
  connections: number;
  /** exec channels opened (commands and helper processes). */
  channels: number;
}

export interface ExecResult {
  stdout: Buffer;
  stderr: string;
  code: number | null;
  signal?: string;
}

export const IDLE_CLOSE_MS = 10_000;

/**
 * What exec collects of one stream: its callers' scripts print a few lines. A director that prints without end (a
 * looping login script) is cut off here, with the command failed, instead of filling memory until the deadline.
 */
export const MAX_EXEC_OUTPUT_BYTES = 1024 * 1024;

export function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export class DirectorSession {
  /** user@host:port, for every message about this director. */
  readonly target: string;
  readonly stats: SessionStats = { dialAttempts: 0, connections: 0, channels: 0 };
  /** A set: dialling adds the key file's text each time, and it must be listed once. */
  private readonly secrets: Set<string>;
  private connection?: Promise<Connection>;
  /** The settled connection, so close() can act synchronously (it runs from the process "exit" hook). */
  private live?: Connection;
  private busy = 0;
  private idleTimer?: NodeJS.Timeout;

  constructor(readonly director: Director) {
    this.target = endpointLabel(director);
    this.secrets = new Set(endpointSecrets(director));
  }

  /** Removes every secret of this director's hops from `text`. */
  scrub(text: string): string {
    return redact(text, [...this.secrets]);
  }

  /** Marks the session in use until the returned function is called; an idle session closes after IDLE_CLOSE_MS. */
  hold(): () => void {
    this.busy++;
    clearTimeout(this.idleTimer);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--this.busy === 0) this.idleTimer = setTimeout(() => this.close(), IDLE_CLOSE_MS).unref();
    };
  }

  /** Closes the connection now (pending channels see it drop); the next use dials again. */
  close(): void {
    const pending = this.connection;
    this.connection = undefined;
    clearTimeout(this.idleTimer);
    this.live?.close();
    this.live = undefined;
    // A dial still in flight is closed as soon as it lands.
    pending?.then((c) => c.close(), () => undefined);
  }

  private connect(): Promise<Connection> {
    if (!this.connection) {
      const attempt = withRetry(async () => {
        this.stats.dialAttempts++;
        return dial(this.director, this.secrets);
      }, retryPolicyFor(this.director.connectTimeoutSeconds));
      this.connection = attempt;
      attempt.then(
        (conn) => {
          this.stats.connections++;
          if (this.connection === attempt) this.live = conn;
          conn.onClose(() => {
            if (this.connection === attempt) this.connection = undefined;
            if (this.live === conn) this.live = undefined;
          });
        },
        () => {
          if (this.connection === attempt) this.connection = undefined;
        },
      );
    }
    return this.connection;
  }

  /** The command line that runs `script` as root on this director. */
  private rootCommand(script: string): string {
    return this.director.sudo ? `sudo -n -- sh -c ${shQuote(script)}` : `sh -c ${shQuote(script)}`;
  }

  /** The bound on each wait once connected, in seconds (operationTimeoutSeconds). */
  get operationTimeoutSeconds(): number {
    return this.director.operationTimeoutSeconds;
  }

  /** "no answer within 60 s (operationTimeoutSeconds)" */
  noAnswer(): string {
    return noAnswerWithin(this.operationTimeoutSeconds, "operationTimeoutSeconds");
  }

  /**
   * Opens an exec channel running `script` as root. A connection found dead when opening is re-dialled once; one that
   * does not answer within operationTimeoutSeconds is closed and the open fails. What happens after the channel is
   * open is the caller's to handle.
   */
  async openChannel(script: string): Promise<SshChannel> {
    for (let attempt = 1; ; attempt++) {
      const conn = await this.connect();
      const opening = new Promise<SshChannel>((resolve, reject) => {
        conn.client.exec(this.rootCommand(script), (err, channel) => (err ? reject(err) : resolve(channel)));
      });
      // Closing the connection also closes a channel that would open late.
      const expired = () => {
        conn.close();
        return new DirectorError("unreachable", this.target, `cannot open a channel on ${this.target}: ${this.noAnswer()}.`);
      };
      try {
        const ch = await within(opening, this.operationTimeoutSeconds * 1000, expired);
        this.stats.channels++;
        return ch;
      } catch (err) {
        // Only our deadline throws a DirectorError here: a second connection would only wait as long again.
        if (err instanceof DirectorError) throw err;
        conn.close();
        if (attempt >= 2) {
          throw new DirectorError("unreachable", this.target, `cannot open a channel on ${this.target}: ${this.scrub(String((err as Error).message))}.`);
        }
      }
    }
  }

  /**
   * Runs an idempotent `script` as root and collects its output. If the connection drops before the command reports
   * its exit status, it is re-dialled and the script run once more (callers only pass idempotent scripts). A command
   * that has not finished within operationTimeoutSeconds is closed and throws, as does a sudo that wants a password;
   * any other exit status is the caller's to judge.
   */
  async exec(script: string, stdin?: Buffer): Promise<ExecResult> {
    const release = this.hold();
    try {
      for (let attempt = 1; ; attempt++) {
        const channel = await this.openChannel(script);
        const overflow = (stream: string) =>
          new DirectorError("command", this.target, `a command on ${this.target} printed more than ${MAX_EXEC_OUTPUT_BYTES / 1024 / 1024} MiB on ${stream}; it was stopped.`);
        const result = await within(collect(channel, stdin, overflow), this.operationTimeoutSeconds * 1000, () => {
          channel.close();
          return new DirectorError("command", this.target, `a command on ${this.target} did not finish: ${this.noAnswer()}.`);
        });
        if (result.code === null && result.signal === undefined && attempt < 2) continue;
        if (result.code !== 0 && this.director.sudo && sudoWantsPassword(result.stderr)) throw this.failure("sudo", result);
        return result;
      }
    } finally {
      release();
    }
  }

  /** The error for a command (or the helper) that failed: sudo wanting a password is named as such. */
  failure(what: string, result: Pick<ExecResult, "code" | "signal" | "stderr">): DirectorError {
    if (this.director.sudo && sudoWantsPassword(result.stderr)) return sudoPasswordError(this.target, this.director.user);
    if (this.director.sudo && /sudo: (command )?not found/.test(result.stderr)) {
      return new DirectorError("command", this.target, `sudo is not installed on ${this.target}; install it or connect as root with sudo: false.`);
    }
    const how = result.code === null ? (result.signal ? `was killed by ${result.signal}` : "lost its connection") : `exited with code ${result.code}`;
    const stderr = printable(this.scrub(result.stderr.trim()).slice(-2000), { lines: true });
    return new DirectorError("command", this.target, `${what} on ${this.target} ${how}${stderr ? `: ${stderr}` : ""}`);
  }
}

/** A channel's output and exit status; past MAX_EXEC_OUTPUT_BYTES on a stream it closes the channel and rejects. */
function collect(channel: SshChannel, stdin: Buffer | undefined, overflow: (stream: string) => Error): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const size = { stdout: 0, stderr: 0 };
    const keep = (stream: "stdout" | "stderr", into: Buffer[]) => (b: Buffer) => {
      if ((size[stream] += b.length) <= MAX_EXEC_OUTPUT_BYTES) return void into.push(b);
      reject(overflow(stream));
      channel.close();
    };
    let code: number | null = null;
    let signal: string | undefined;
    channel.on("data", keep("stdout", out));
    channel.stderr.on("data", keep("stderr", err));
    channel.on("exit", (c, s) => {
      code = c;
      signal = s;
    });
    channel.on("close", () => resolve({ stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString("utf8"), code, signal }));
    channel.end(stdin);
  });
}
