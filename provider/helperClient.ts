// The helper on each director: installs the bundled ipvs-helper once per version (verified by sha256, root-owned path),
// keeps one `ipvs-helper serve` running per director session, and coalesces concurrent operations into one batch per
// round trip. Each caller gets its own result or HelperError.
//
// Failure rule: when the helper or the connection dies with a batch in flight, operations that are idempotent by design
// (get*, delete*, ensure* with onExisting "update", …) are re-sent once on a fresh channel; an ensure* with onExisting
// "fail" is not (a second try could report EXISTS for the entry the first try created), its caller gets the error.

import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { directorKey, type Director } from "./director";
import {
  HelperError,
  PROTOCOL_VERSION,
  type Dest,
  type DestKey,
  type DestSpec,
  type OnExisting,
  type Op,
  type OpResults,
  type Request,
  type Response,
  type ResultOf,
  type Service,
  type ServiceKey,
  type ServiceSpec,
  type WireResult,
} from "./protocol";
import { DirectorError, sessionFor, shQuote, type DirectorSession, type SshChannel } from "./session";

export type Arch = "amd64" | "arm64";

export interface HelperBinaries {
  /** Directory holding ipvs-helper-linux-<arch> and SHA256SUMS. */
  dir: string;
  /** The package version, part of the install path. */
  version: string;
  sha256: Record<Arch, string>;
}

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

export interface DirectorOps {
  /** user@host:port */
  readonly target: string;
  ensureService(service: ServiceSpec, onExisting?: OnExisting): Promise<OpResults["ensureService"]>;
  deleteService(service: ServiceKey): Promise<OpResults["deleteService"]>;
  getService(service: ServiceKey, withDests?: boolean): Promise<Service | null>;
  ensureDest(service: ServiceKey, dest: DestSpec, onExisting?: OnExisting): Promise<OpResults["ensureDest"]>;
  deleteDest(service: ServiceKey, dest: DestKey): Promise<OpResults["deleteDest"]>;
  getDest(service: ServiceKey, dest: DestKey): Promise<Dest | null>;
  dump(): Promise<Service[]>;
  /** Any protocol operation; resolves to its result fields, rejects with HelperError or DirectorError. */
  run<O extends Op>(op: O): Promise<ResultOf<O>>;
}

/** Operations on `director` through its pooled session and helper. */
export function directorOps(director: Director): DirectorOps {
  const client = helperClientFor(sessionFor(director));
  return {
    target: client.session.target,
    ensureService: (service, onExisting = "update") => client.run({ op: "ensureService", service, onExisting }),
    deleteService: (service) => client.run({ op: "deleteService", service }),
    getService: async (service, withDests = false) => (await client.run({ op: "getService", service, withDests })).service,
    ensureDest: (service, dest, onExisting = "update") => client.run({ op: "ensureDest", service, dest, onExisting }),
    deleteDest: (service, dest) => client.run({ op: "deleteDest", service, dest }),
    getDest: async (service, dest) => (await client.run({ op: "getDest", service, dest })).dest,
    dump: async () => (await client.run({ op: "dump" })).services,
    run: (op) => client.run(op),
  };
}

export function helperStats(director: Director): HelperStats {
  return { ...helperClientFor(sessionFor(director)).stats };
}

const INSTALL_ROOT = "/usr/local/lib/pulumi-ipvs";
/** Bounds one request line; a burst larger than this goes out in several consecutive batches. */
const MAX_BATCH = 500;

let located: HelperBinaries | undefined;

/** Finds the bundled binaries: the installed package first, then paths relative to this file (dist/ or source). */
export function locateHelper(): HelperBinaries {
  if (located) return located;
  const candidates: string[] = [];
  try {
    candidates.push(path.join(path.dirname(require.resolve("pulumi-ipvs/package.json")), "provider/helper/bin"));
  } catch {
    // Not resolvable by name (e.g. running from a checkout under another name): fall back to relative paths.
  }
  candidates.push(path.resolve(__dirname, "../../provider/helper/bin"), path.resolve(__dirname, "helper/bin"));
  const dir = candidates.find((d) => existsSync(path.join(d, "SHA256SUMS")));
  if (!dir) {
    throw new Error(`ipvs-helper binaries not found (looked in ${candidates.join(", ")}); run npm run build to build provider/helper/bin.`);
  }
  const sums = new Map<string, string>();
  for (const line of readFileSync(path.join(dir, "SHA256SUMS"), "utf8").split("\n")) {
    const m = /^([0-9a-f]{64})\s+\*?(\S+)$/.exec(line.trim());
    if (m) sums.set(path.basename(m[2]!), m[1]!);
  }
  const sha = (arch: Arch) => {
    const s = sums.get(`ipvs-helper-linux-${arch}`);
    if (!s) throw new Error(`${dir}/SHA256SUMS has no line for ipvs-helper-linux-${arch}; run npm run build.`);
    return s;
  };
  const pkg = JSON.parse(readFileSync(path.resolve(dir, "../../../package.json"), "utf8")) as { version: string };
  located = { dir, version: pkg.version, sha256: { amd64: sha("amd64"), arm64: sha("arm64") } };
  return located;
}

export function installPath(bins: HelperBinaries, arch: Arch): string {
  return `${INSTALL_ROOT}/${bins.version}-${bins.sha256[arch].slice(0, 12)}/ipvs-helper`;
}

// `safe P` succeeds when P and every directory above it is root-owned and not writable by group or others, so no
// other user can swap the binary we are about to run as root. stat -L: judge a symlinked directory by its target.
const SAFE_FN =
  `safe() { p=$1; while [ -n "$p" ]; do ` +
  `case "$(stat -L -c '%u %a' "$p" 2>/dev/null)" in "0 "*[0145][0145]) ;; *) echo "$p"; return 1;; esac; p=\${p%/*}; done; }`;

/**
 * One exec that verifies and starts the helper: prints "ready <arch>" and becomes `ipvs-helper serve`, or prints
 * "install <arch>" when the binary is missing, altered or on an unsafe path, or "unsupported-arch <uname -m>".
 */
function startScript(bins: HelperBinaries): string {
  const f = { amd64: installPath(bins, "amd64"), arm64: installPath(bins, "arm64") };
  return [
    SAFE_FN,
    `case "$(uname -m)" in x86_64|amd64) a=amd64 f=${shQuote(f.amd64)} s=${bins.sha256.amd64};;` +
      ` aarch64|arm64) a=arm64 f=${shQuote(f.arm64)} s=${bins.sha256.arm64};;` +
      ` *) echo "unsupported-arch $(uname -m)"; exit 0;; esac`,
    `if [ -f "$f" ] && safe "$f" >/dev/null && [ "$(sha256sum < "$f" | cut -c1-64)" = "$s" ]; then echo "ready $a"; exec "$f" serve; fi`,
    `echo "install $a"`,
  ].join("\n");
}

/** Root script, binary on stdin: write to a private temp file in the final directory, verify, rename into place. */
function installScript(bins: HelperBinaries, arch: Arch): string {
  const file = installPath(bins, arch);
  const dir = path.posix.dirname(file);
  return [
    "set -e",
    "umask 022",
    SAFE_FN,
    `mkdir -p ${shQuote(dir)}`,
    `chown 0:0 ${shQuote(INSTALL_ROOT)} ${shQuote(dir)}`,
    `chmod 0755 ${shQuote(INSTALL_ROOT)} ${shQuote(dir)}`,
    `if ! bad=$(safe ${shQuote(dir)}); then echo "$bad is not root-owned or is writable by others; fix its ownership/mode" >&2; exit 5; fi`,
    `t=$(mktemp ${shQuote(dir + "/.upload.XXXXXX")})`,
    `cat > "$t"`,
    `got=$(sha256sum < "$t" | cut -c1-64)`,
    `if [ "$got" != ${bins.sha256[arch]} ]; then rm -f "$t"; echo "uploaded helper has sha256 $got, expected ${bins.sha256[arch]}" >&2; exit 6; fi`,
    `chown 0:0 "$t"`,
    `chmod 0755 "$t"`,
    `mv -f "$t" ${shQuote(file)}`,
  ].join("\n");
}

/** Splits a channel's stdout into lines; a closed channel rejects every pending and later read. */
class LineReader {
  private buffer = "";
  private lines: string[] = [];
  private waiters: Array<{ resolve: (l: string) => void; reject: (e: Error) => void }> = [];
  private ended?: Error;
  private stderr = "";

  constructor(channel: SshChannel, onClose: (code: number | null, signal: string | undefined, stderr: string) => Error) {
    channel.setEncoding("utf8");
    channel.on("data", (chunk: string) => {
      this.buffer += chunk;
      let nl: number;
      while ((nl = this.buffer.indexOf("\n")) >= 0) {
        this.push(this.buffer.slice(0, nl));
        this.buffer = this.buffer.slice(nl + 1);
      }
    });
    // Keep only the tail: enough to explain a crash.
    channel.stderr.on("data", (chunk: Buffer) => (this.stderr = (this.stderr + chunk.toString("utf8")).slice(-4000)));
    let exit: { code: number | null; signal?: string } = { code: null };
    channel.on("exit", (code, signal) => (exit = { code, signal }));
    channel.on("close", () => {
      this.ended = onClose(exit.code, exit.signal, this.stderr);
      this.waiters.splice(0).forEach((w) => w.reject(this.ended!));
    });
  }

  get closed(): boolean {
    return this.ended !== undefined;
  }

  private push(line: string): void {
    const waiter = this.waiters.shift();
    if (waiter) waiter.resolve(line);
    else this.lines.push(line);
  }

  next(): Promise<string> {
    const line = this.lines.shift();
    if (line !== undefined) return Promise.resolve(line);
    if (this.ended) return Promise.reject(this.ended);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }
}

interface Pending {
  op: Op;
  sends: number;
  resolve: (r: unknown) => void;
  reject: (e: Error) => void;
}

function resendable(op: Op): boolean {
  return !((op.op === "ensureService" || op.op === "ensureDest") && op.onExisting === "fail");
}

class HelperClient {
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

function helperClientFor(session: DirectorSession): HelperClient {
  let client = clients.get(session);
  if (!client) {
    client = new HelperClient(session);
    clients.set(session, client);
  }
  return client;
}
