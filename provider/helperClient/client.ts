// Batching and re-sending: keeps one `ipvs-helper serve` running per director session (installing the bundled binary
// first when the director lacks it) and coalesces concurrent operations into one batch per round trip. Each caller
// gets its own result or HelperError.
//
// Failure rules:
// - when the helper or the connection dies with a batch in flight, every operation is re-sent once on a fresh channel:
//   idempotent ones (get*, delete*, ensure* with onExisting "update", …) as they were, a create (ensure* with onExisting
//   "fail") as onExisting "match", so a create whose answer was lost succeeds instead of reporting EXISTS for the entry
//   it made itself. An operation lost a second time fails.
// - every wait has a deadline, operationTimeoutSeconds: the helper's "ready" line and each batch's answer. A batch
//   unanswered by then fails as a whole, without a re-send (the helper may still be applying it, and a hung director
//   would only hang again). The helper gets a shorter deadline for its own kernel and modprobe waits and answers
//   TIMEOUT for an op that exceeded it, which fails the same way.

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { directorKey } from "../director";
import { serviceIdPart } from "../identity";
import { HelperError, PROTOCOL_VERSION, type Op, type Request, type Response, type ResultOf, type WireResult } from "../protocol";
import { DirectorError, type DirectorSession, type SshChannel } from "../session";
import { printable } from "../session/errors";
import { noAnswerWithin, within } from "../session/retry";
import { installPath, locateHelper, type Arch, type HelperBinaries } from "./binaries";
import { LineReader } from "./lineReader";
import { installScript, MAX_NOISE, NO_SHA256_FIX, START_MARKER, startScript } from "./scripts";

/** Counters for tests and measurements, per director session. */
export interface HelperStats {
  /** `ipvs-helper serve` processes started (after the installed binary checked out). */
  starts: number;
  /** Binary uploads (0 when the director already had this version). */
  uploads: number;
  /** Request lines sent = round trips. */
  batches: number;
  /** Operations sent (a re-sent operation counts again). */
  ops: number;
  /** Operations re-sent after the helper or connection died. */
  resent: number;
  /** `dump` operations sent (DirectorOps.table() shares one per director). */
  dumps: number;
}

/** Bounds one request line; a burst larger than this goes out in several consecutive batches. */
const MAX_BATCH = 500;

/**
 * Bounds what a serve channel may hold unread: an answer line being received, or lines no request asked for. The
 * largest answer, a dump of the whole table, is ~350 bytes per real server (0.7 MB for 2,000), so this is ~190,000
 * real servers: past it the director is not speaking the protocol, and waiting for its deadline would hold the text.
 */
export const MAX_ANSWER_CHARS = 64 * 1024 * 1024;

/** Room for the start script's own answer line (after up to MAX_NOISE of login-shell text on the same line). */
const MAX_START_ANSWER_CHARS = 4096;

interface Pending {
  op: Op;
  sends: number;
  resolve: (r: unknown) => void;
  reject: (e: Error) => void;
}

/** An op as it is sent again after its answer was lost: a create becomes "match", anything else is idempotent. */
function resendForm(op: Op): Op {
  return (op.op === "ensureService" || op.op === "ensureDest") && op.onExisting === "fail" ? { ...op, onExisting: "match" } : op;
}

/** The operations that change nothing on the director. */
export const READ_ONLY: ReadonlySet<Op["op"]> = new Set<Op["op"]>(["getService", "getDest", "dump", "getTimeouts", "getDaemons", "info", "getSettings", "getHost"]);

/** "ensureService tcp/192.0.2.10:80", "deleteDest tcp/192.0.2.10:80/10.0.0.11:8080", "dump". */
function describeOp(op: Op): string {
  if ("dest" in op) return `${op.op} ${serviceIdPart(op.service)}/${directorKey({ host: op.dest.address, port: op.dest.port })}`;
  if ("service" in op && op.service) return `${op.op} ${serviceIdPart(op.service)}`;
  return op.op;
}

/** The helper's deadline: a little shorter than ours, so its TIMEOUT answer arrives before we give up on the batch. */
export function helperTimeoutSeconds(operationTimeoutSeconds: number): number {
  return Math.max(1, Math.floor(operationTimeoutSeconds * 0.9));
}

/** A batch that got no answer within operationTimeoutSeconds. */
class NoAnswer extends Error {}

export class HelperClient {
  readonly stats: HelperStats = { starts: 0, uploads: 0, batches: 0, ops: 0, resent: 0, dumps: 0 };
  private queue: Pending[] = [];
  private pumping = false;
  private channel?: { ch: SshChannel; lines: LineReader };

  constructor(readonly session: DirectorSession) {}

  run<O extends Op>(op: O): Promise<ResultOf<O>> {
    return new Promise((resolve, reject) => {
      this.queue.push({ op, sends: 0, resolve: resolve as (r: unknown) => void, reject });
      void this.pump();
    });
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.queue.length > 0) {
        const release = this.session.hold();
        try {
          const open = await this.open();
          // Taken only now: everything that queued up while connecting or while the last batch was out goes together.
          const batch = this.queue.splice(0, MAX_BATCH);
          batch.forEach((p) => p.sends++);
          try {
            const results = await this.roundTrip(open, batch.map((p) => p.op));
            batch.forEach((p, i) => this.settle(p, results[i]!));
          } catch (err) {
            // The channel is dead, hung or out of step: drop it; the next batch starts a fresh helper.
            open.ch.close();
            this.channel = undefined;
            if (err instanceof NoAnswer) {
              batch.forEach((p) => p.reject(this.unanswered(p.op, this.session.noAnswer())));
              continue;
            }
            const again = batch.filter((p) => p.sends < 2);
            again.forEach((p) => (p.op = resendForm(p.op)));
            this.stats.resent += again.length;
            batch.filter((p) => !again.includes(p)).forEach((p) => p.reject(this.notResent(p, err as Error)));
            this.queue.unshift(...again);
          }
        } catch (err) {
          // Could not start the helper at all (unreachable, auth, sudo, install): every waiting caller learns why. An op
          // already sent once (its channel died, this was the second try) may have been applied: it says so.
          this.queue.splice(0).forEach((p) => p.reject(p.sends > 0 ? this.unanswered(p.op, (err as Error).message.replace(/\.?$/, "")) : (err as Error)));
        } finally {
          release();
        }
      }
    } finally {
      this.pumping = false;
    }
  }

  private async roundTrip(open: { ch: SshChannel; lines: LineReader }, ops: Op[]): Promise<WireResult[]> {
    this.stats.batches++;
    this.stats.ops += ops.length;
    this.stats.dumps += ops.filter((o) => o.op === "dump").length;
    const request: Request = { v: PROTOCOL_VERSION, ops };
    open.ch.write(JSON.stringify(request) + "\n");
    const line = await within(open.lines.next(), this.session.operationTimeoutSeconds * 1000, () => new NoAnswer());
    let response: Response;
    try {
      response = JSON.parse(line) as Response;
    } catch {
      throw this.helperError(`answered with something that is not JSON: ${JSON.stringify(line.slice(0, 200))}`);
    }
    if (!Array.isArray(response.results) || response.results.length !== ops.length) {
      throw this.helperError(
        `answered ${Array.isArray(response.results) ? response.results.length : "no"} results for ${ops.length} operations` +
          (response.error ? ` (${response.error.message})` : ""),
      );
    }
    return response.results;
  }

  /** An operation lost with its channel a second time: not sent again. */
  private notResent(p: Pending, cause: Error): Error {
    return this.unanswered(p.op, `${cause.message.replace(/\.?$/, "")} (the second time it was sent; not sent again)`);
  }

  /** The error of an operation whose answer never came: names it, and warns that a change may have been made. */
  private unanswered(op: Op, why: string): DirectorError {
    // A create that may have been applied is not in state: refresh cannot find it, and the next create says EXISTS.
    const create = (op.op === "ensureService" || op.op === "ensureDest") && op.onExisting !== undefined && op.onExisting !== "update";
    const applied = READ_ONLY.has(op.op)
      ? ""
      : create
        ? "; it may have been applied: if the next pulumi up says it already exists, check its settings on the director and set adopt: true for that up (or remove it there)"
        : "; it may have been applied: pulumi up again applies it (pulumi refresh first shows what the director holds)";
    return new DirectorError("helper", this.session.target, `${describeOp(op)} on ${this.session.target}: ${why}${applied}.`, true);
  }

  private settle(p: Pending, result: WireResult): void {
    if (result.ok) {
      const { ok: _ok, ...fields } = result;
      p.resolve(fields);
    } else if (result.error.code === "TIMEOUT") {
      const seconds = helperTimeoutSeconds(this.session.operationTimeoutSeconds);
      p.reject(this.unanswered(p.op, `${noAnswerWithin(seconds, "the helper's share of operationTimeoutSeconds")}: ${printable(result.error.message).replace(/\.?$/, "")}`));
    } else {
      p.reject(new HelperError(this.session.target, result.error.code, result.error.message, result.error.errno));
    }
  }

  /** The start script printed nothing in time (sudo, PAM, a hung filesystem under the install path): give up on it. */
  private notStarted(ch: SshChannel): DirectorError {
    ch.close();
    return new DirectorError("helper", this.session.target, `ipvs-helper on ${this.session.target} did not start: its start script gave ${this.session.noAnswer()}.`);
  }

  private helperError(what: string): DirectorError {
    return new DirectorError("helper", this.session.target, `ipvs-helper on ${this.session.target} ${what}; the provider and helper versions may differ (run npm run build).`);
  }

  /** The open serve channel, starting (and first installing) the helper when needed. */
  private async open(): Promise<{ ch: SshChannel; lines: LineReader }> {
    if (this.channel && !this.channel.lines.closed) return this.channel;
    const bins = locateHelper();
    for (let attempt = 1; attempt <= 2; attempt++) {
      const ch = await this.session.openChannel(startScript(bins, ["--timeout-seconds", String(helperTimeoutSeconds(this.session.operationTimeoutSeconds))]));
      const lines = new LineReader(ch, (code, signal, stderr) => this.session.failure("ipvs-helper", { code, signal, stderr }));
      const answer = await within(this.startAnswer(ch, lines), this.session.operationTimeoutSeconds * 1000, () => this.notStarted(ch));
      const [word, arg, ...rest] = answer.split(" ");
      if (word === "ready") {
        lines.limit({ chars: MAX_ANSWER_CHARS, overflow: () => this.flooded() });
        this.stats.starts++;
        this.channel = { ch, lines };
        return this.channel;
      }
      ch.end();
      const target = this.session.target;
      if (word === "unsupported-arch") {
        throw new DirectorError("config", target, `${target} is ${printable(arg)}; ipvs-helper is built for x86_64 (amd64) and aarch64 (arm64) only.`);
      }
      if (word === "no-sha256") {
        throw new DirectorError(
          "helper",
          target,
          `${target} has no SHA-256 tool (sha256sum, busybox sha256sum or openssl dgst), and ipvs-helper is verified by its sha256 before it runs as root: ${NO_SHA256_FIX} on ${target}, then retry.`,
        );
      }
      if (arg !== "amd64" && arg !== "arm64") throw this.helperError(`start script printed ${printable(JSON.stringify(answer))}`);
      if (word === "unsafe") {
        // Refused, not re-installed over: an unsafe component means someone else may control what root would run.
        throw new DirectorError("helper", target, `refusing to run ipvs-helper as root on ${target} from ${installPath(bins, arg)}: ${printable(rest.join(" "))}.`);
      }
      if (word !== "install") throw this.helperError(`start script printed ${printable(JSON.stringify(answer))}`);
      if (attempt === 2) {
        throw new DirectorError(
          "helper",
          target,
          `the ipvs-helper installed at ${installPath(bins, arg)} on ${target} still fails its sha256 check right after installing it.`,
        );
      }
      await this.install(bins, arg);
    }
    throw new Error("unreachable");
  }

  /**
   * The start script's answer: the text after START_MARKER on the first line that has it. What the login shell prints
   * before it (.bashrc, motd) is skipped, up to MAX_NOISE; beyond that the channel is closed and the start fails.
   */
  private async startAnswer(ch: SshChannel, lines: LineReader): Promise<string> {
    let first: string | undefined;
    const noisy = (sample: string) =>
      new DirectorError(
        "helper",
        this.session.target,
        `the login shell of ${this.session.target} printed more than ${MAX_NOISE.lines} lines or ${MAX_NOISE.bytes / 1024} KiB before the ipvs-helper ` +
          `start script could answer (starting with ${JSON.stringify(this.session.scrub((first ?? sample).slice(0, 200)))}): make its .bashrc/.profile ` +
          `print nothing for non-interactive sessions.`,
      );
    // Also text without a newline: a shell that prints endlessly on one line is given up as soon as it passes the bound.
    lines.limit({ chars: MAX_NOISE.bytes + MAX_START_ANSWER_CHARS, overflow: noisy });
    for (let count = 1, bytes = 0; ; count++) {
      const line = await lines.next();
      const at = line.indexOf(START_MARKER);
      if (at >= 0) return line.slice(at + START_MARKER.length).trim();
      first ??= line;
      bytes += line.length + 1;
      if (count > MAX_NOISE.lines || bytes > MAX_NOISE.bytes) {
        ch.close();
        throw noisy(line);
      }
    }
  }

  /** A serve channel past MAX_ANSWER_CHARS of unread text (LineReader has closed it). */
  private flooded(): DirectorError {
    return new DirectorError(
      "helper",
      this.session.target,
      `ipvs-helper on ${this.session.target} sent more than ${MAX_ANSWER_CHARS / 1024 / 1024} MiB without finishing an answer line, or lines no ` +
        `request asked for; the channel was closed (a dump of the whole table reaches that size only at about 190,000 real servers).`,
    );
  }

  private async install(bins: HelperBinaries, arch: Arch): Promise<void> {
    const local = path.join(bins.dir, `ipvs-helper-linux-${arch}`);
    const binary = readFileSync(local);
    if (createHash("sha256").update(binary).digest("hex") !== bins.sha256[arch]) {
      throw new Error(`${local} does not match its SHA256SUMS line; run npm run build.`);
    }
    this.stats.uploads++;
    const result = await this.session.exec(installScript(bins, arch), binary);
    if (result.code !== 0) throw this.session.failure(`installing ipvs-helper at ${installPath(bins, arch)}`, result);
  }
}

const clients = new WeakMap<DirectorSession, HelperClient>();

export function helperClientFor(session: DirectorSession): HelperClient {
  let client = clients.get(session);
  if (!client) {
    client = new HelperClient(session);
    clients.set(session, client);
  }
  return client;
}
