// Batching and re-sending: keeps one `ipvs-helper serve` running per director session (installing the bundled binary
// first when the director lacks it) and coalesces concurrent operations into one batch per round trip. Each caller
// gets its own result or HelperError.
//
// Failure rule: when the helper or the connection dies with a batch in flight, operations that are idempotent by design
// (get*, delete*, ensure* with onExisting "update", …) are re-sent once on a fresh channel; an ensure* with onExisting
// "fail" is not (a second try could report EXISTS for the entry the first try created), its caller gets the error.

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { directorKey } from "../director";
import { HelperError, PROTOCOL_VERSION, type Op, type Request, type Response, type ResultOf, type WireResult } from "../protocol";
import { DirectorError, type DirectorSession, type SshChannel } from "../session";
import { installPath, locateHelper, type Arch, type HelperBinaries } from "./binaries";
import { LineReader } from "./lineReader";
import { installScript, startScript } from "./scripts";

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
}

/** Bounds one request line; a burst larger than this goes out in several consecutive batches. */
const MAX_BATCH = 500;

interface Pending {
  op: Op;
  sends: number;
  resolve: (r: unknown) => void;
  reject: (e: Error) => void;
}

function resendable(op: Op): boolean {
  return !((op.op === "ensureService" || op.op === "ensureDest") && op.onExisting === "fail");
}

export class HelperClient {
  readonly stats: HelperStats = { starts: 0, uploads: 0, batches: 0, ops: 0, resent: 0 };
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
            batch.forEach((p, i) => settle(p, results[i]!, this.session));
          } catch (err) {
            // The channel is dead or out of step: drop it; the next batch starts a fresh helper.
            open.ch.close();
            this.channel = undefined;
            const again = batch.filter((p) => p.sends < 2 && resendable(p.op));
            this.stats.resent += again.length;
            batch.filter((p) => !again.includes(p)).forEach((p) => p.reject(this.notResent(p, err as Error)));
            this.queue.unshift(...again);
          }
        } catch (err) {
          // Could not start the helper at all (unreachable, auth, sudo, install): every waiting caller learns why.
          this.queue.splice(0).forEach((p) => p.reject(err as Error));
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
    const request: Request = { v: PROTOCOL_VERSION, ops };
    open.ch.write(JSON.stringify(request) + "\n");
    const line = await open.lines.next();
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

  /** Why an operation lost with its channel was not re-sent, and what the user should do. */
  private notResent(p: Pending, cause: Error): Error {
    if (resendable(p.op)) return cause;
    return new DirectorError(
      "helper",
      this.session.target,
      `${cause.message.replace(/\.?$/, "")}; the ${p.op.op} (onExisting "fail") in flight was not re-sent, because it may already ` +
        `have been applied: run pulumi refresh, then retry.`,
    );
  }

  private helperError(what: string): DirectorError {
    return new DirectorError("helper", this.session.target, `ipvs-helper on ${this.session.target} ${what}; the provider and helper versions may differ (run npm run build).`);
  }

  /** The open serve channel, starting (and first installing) the helper when needed. */
  private async open(): Promise<{ ch: SshChannel; lines: LineReader }> {
    if (this.channel && !this.channel.lines.closed) return this.channel;
    const bins = locateHelper();
    for (let attempt = 1; attempt <= 2; attempt++) {
      const ch = await this.session.openChannel(startScript(bins));
      const lines = new LineReader(ch, (code, signal, stderr) => this.session.failure("ipvs-helper", { code, signal, stderr }));
      const [word, arg] = (await lines.next()).split(" ");
      if (word === "ready") {
        this.stats.starts++;
        this.channel = { ch, lines };
        return this.channel;
      }
      ch.end();
      if (word === "unsupported-arch") {
        throw new DirectorError("config", this.session.target, `${this.session.target} is ${arg}; ipvs-helper is built for x86_64 (amd64) and aarch64 (arm64) only.`);
      }
      if (word !== "install" || (arg !== "amd64" && arg !== "arm64")) throw this.helperError(`start script printed ${JSON.stringify(word)}`);
      if (attempt === 2) {
        throw new DirectorError(
          "helper",
          this.session.target,
          `the ipvs-helper installed at ${installPath(bins, arg)} on ${this.session.target} still fails verification (sha256 or a writable path) right after installing it.`,
        );
      }
      await this.install(bins, arg);
    }
    throw new Error("unreachable");
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

function settle(p: Pending, result: WireResult, session: DirectorSession): void {
  if (result.ok) {
    const { ok: _ok, ...fields } = result;
    p.resolve(fields);
  } else {
    p.reject(new HelperError(directorKey(session.director), result.error.code, result.error.message, result.error.errno));
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
