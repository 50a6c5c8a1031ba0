// Issue #8, the fault matrix, through the real pulumi CLI on lab directors. Each fault ends in success (after the
// product's own retry) or in a clear error naming the director and the cause, never in a hang; after the documented
// recovery (fix the cause and `pulumi up`, or `pulumi up --refresh`) the kernel table (`ipvsadm -Sn`) equals what the
// stack's state says. One director serves every case that leaves its VM intact (each starts from an empty table and
// puts back what it broke); the VM-restart case boots its own. Only case 1 is large (200 real servers), to have an up
// that is long enough to interrupt; the rest use 3.
//
// Timing: nothing here asserts a duration. Faults are injected on observed conditions (a partly filled table), and
// the deadlines only turn a hang into a failure.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { installPath, locateHelper } from "../../provider/helperClient";
import { startDirector, type LabDirector } from "../lab/director";
import { ipvsadmSave } from "../lab/ipvsadm";
import { E2EStack, repoRoot } from "./harness";

const FIXTURE = path.join(repoRoot, "test", "e2e", "fixtures", "faults");
const VS_TYPE = "pulumi-nodejs:dynamic/ipvs:VirtualService";
const RS_TYPE = "pulumi-nodejs:dynamic/ipvs:RealServer";
/** Bound on one small CLI operation: generous, it only turns a hang into a failure. */
const HANG_BOUND_MS = 180_000;
/** The same bound for operations on the 200-real-server program. */
const BIG_HANG_BOUND_MS = 480_000;

interface ServiceConfig {
  vip: string;
  scheduler: string;
  count: number;
  weight: number;
}
const SERVICE: ServiceConfig = { vip: "192.0.2.80", scheduler: "rr", count: 3, weight: 1 };

/** The fixture's `director` config: the lab's ops user with its key file and the pinned host key, plus overrides. */
function directorConfig(d: LabDirector, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ host: d.host, port: d.port, user: d.user, privateKeyPath: d.privateKeyPath, hostKey: d.hostKey, ...extra });
}

/** Undo steps of the running case, run last-registered first after it (a fault is put back before its stack goes). */
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  const errors: unknown[] = [];
  while (cleanups.length > 0) await cleanups.pop()!().catch((e: unknown) => errors.push(e));
  if (errors.length > 0) throw errors[0];
});

async function newStack(d: LabDirector, service: Partial<ServiceConfig> = {}, director: Record<string, unknown> = {}): Promise<E2EStack> {
  const stack = await E2EStack.create({
    program: FIXTURE,
    config: { director: directorConfig(d, director), service: JSON.stringify({ ...SERVICE, ...service }) },
  });
  cleanups.push(() => stack.dispose());
  return stack;
}

/** `pulumi up --refresh`, the documented recovery when the kernel may hold something else than state says. */
function upRefresh(stack: E2EStack): Promise<unknown> {
  // --diff as in E2EStack.up(), so errors come out the same way (on stderr).
  return stack.cli(["up", "--yes", "--skip-preview", "--diff", "--refresh", "--non-interactive"]);
}

type Outcome = { ok: true } | { ok: false; error: Error };

/**
 * Waits for a CLI operation of `stack` already under way. A hang (no result within boundMs) kills the stack's pulumi
 * processes, so they cannot disturb later cases, and fails the test.
 */
async function settle(stack: E2EStack, what: string, run: Promise<unknown>, boundMs = HANG_BOUND_MS): Promise<Outcome> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<"hung">((resolve) => (timer = setTimeout(() => resolve("hung"), boundMs)));
  const result = await Promise.race([
    run.then(
      (): Outcome => ({ ok: true }),
      (error: Error): Outcome => ({ ok: false, error }),
    ),
    hung,
  ]);
  clearTimeout(timer);
  if (result === "hung") {
    killStackProcesses(stack);
    throw new Error(`${what} hung: no result within ${boundMs / 1000} s`);
  }
  return result;
}

/** SIGKILLs the stack's pulumi CLI (the one whose working directory is the stack's project dir) and all it started. */
function killStackProcesses(stack: E2EStack): void {
  const project = realpathSync(stack.projectDir);
  const procs = readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p))
    .flatMap((p) => {
      try {
        const stat = readFileSync(`/proc/${p}/stat`, "utf8");
        // "pid (comm) state ppid …": comm may hold spaces and parentheses, so split after the last ")".
        const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
        return [{ pid: Number(p), ppid, cwd: readlinkSync(`/proc/${p}/cwd`) }];
      } catch {
        return []; // gone meanwhile, or not ours to inspect
      }
    });
  const doomed = new Set(procs.filter((p) => p.cwd === project).map((p) => p.pid));
  for (let grew = true; grew; ) {
    grew = false;
    for (const p of procs) {
      if (doomed.has(p.ppid) && !doomed.has(p.pid)) {
        doomed.add(p.pid);
        grew = true;
      }
    }
  }
  for (const pid of doomed) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already exited
    }
  }
}

function expectSuccess(outcome: Outcome): void {
  if (!outcome.ok) throw outcome.error;
}

/** What the user reads: the CLI's errors, which a non-interactive run prints on stderr ("error: …" lines). */
function diagnosticsOf(err: Error): string {
  const marker = "\n--- stderr\n";
  const at = err.message.lastIndexOf(marker);
  if (at < 0) throw new Error(`not a failed CLI run: ${err.message}`);
  return err.message.slice(at + marker.length);
}

/** The operation failed, and its diagnostics name the director (host:port, its identity) and the cause. */
function expectClearError(outcome: Outcome, d: LabDirector, cause: RegExp): string {
  if (outcome.ok) throw new Error(`the operation succeeded; expected an error matching ${cause}`);
  const diagnostics = diagnosticsOf(outcome.error);
  expect(diagnostics).toContain(`127.0.0.1:${d.port}`);
  expect(diagnostics).toMatch(cause);
  return diagnostics;
}

/** The kernel table as sorted `ipvsadm -Sn` lines. */
async function kernelLines(d: LabDirector): Promise<string[]> {
  return (await ipvsadmSave(d))
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "")
    .sort();
}

const FORWARDING_FLAG: Record<string, string> = { nat: "-m", dr: "-g", tunnel: "-i" };

/** The `ipvsadm -Sn` lines of the entries the stack's state holds (the fixture's: TCP, no persistence or thresholds). */
async function stateLines(stack: E2EStack): Promise<string[]> {
  const { deployment } = await stack.exportState();
  const lines: string[] = [];
  for (const r of deployment.resources ?? []) {
    const o = r.outputs ?? {};
    if (r.type === VS_TYPE) lines.push(`-A -t ${o.address}:${o.port} -s ${o.scheduler}`);
    if (r.type === RS_TYPE) {
      // The service part of the id ("tcp/192.0.2.80:80/…"); the service output itself is a secret.
      const service = /^tcp\/([^/]+)\//.exec(r.id ?? "")?.[1];
      lines.push(`-a -t ${service} -r ${o.address}:${o.port} ${FORWARDING_FLAG[o.forwarding as string]} -w ${o.weight}`);
    }
  }
  return lines.sort();
}

/** State holds the whole program (`entries` = service + real servers) and the kernel holds exactly what state says. */
async function expectTableEqualsState(d: LabDirector, stack: E2EStack, entries: number): Promise<void> {
  const state = await stateLines(stack);
  expect(state).toHaveLength(entries);
  expect(await kernelLines(d)).toEqual(state);
}

/** Polls the table until it holds the service and some but not all of its `count` real servers. */
async function untilPartlyApplied(d: LabDirector, count: number, up: Promise<Outcome>): Promise<void> {
  let ended = false;
  void up.finally(() => (ended = true)).catch(() => undefined);
  let lines = 0;
  while (!ended) {
    lines = Number((await d.exec("ipvsadm -Sn | wc -l")).stdout.trim());
    if (lines >= 2 && lines <= count) return;
  }
  throw new Error(`the up ended before the table was seen partly applied (last seen: ${lines} lines)`);
}

describe("faults on a shared lab director", () => {
  let d: LabDirector;
  let scratch: string;
  let strangerHostKey: string;
  let helperFile: string;

  beforeAll(async () => {
    d = await startDirector();
    scratch = mkdtempSync(path.join(tmpdir(), "faults-"));
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path.join(scratch, "stranger")]);
    strangerHostKey = readFileSync(path.join(scratch, "stranger.pub"), "utf8").trim();
    helperFile = installPath(locateHelper(), "amd64");
  });

  afterAll(async () => {
    await d?.stop();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  beforeEach(async () => {
    await d.exec("ipvsadm -C");
  });

  const helperSha = async () => (await d.exec(`sha256sum < ${helperFile} | cut -c1-64`)).stdout.trim();

  it("(1) SSH connection killed in the middle of a 200-real-server up: success or a clear error; up --refresh converges", async () => {
    const count = 200;
    const stack = await newStack(d, { count });
    const up = settle(stack, "pulumi up", stack.up(), BIG_HANG_BOUND_MS);
    await untilPartlyApplied(d, count, up);
    await d.killSshSessions("ops");
    const first = await up;
    if (first.ok) {
      await expectTableEqualsState(d, stack, count + 1);
    } else {
      expectClearError(first, d, /lost its connection|killed by SIG|not sent again/i);
      expectSuccess(await settle(stack, "pulumi up --refresh", upRefresh(stack), BIG_HANG_BOUND_MS));
      await expectTableEqualsState(d, stack, count + 1);
    }
  }, 1_200_000);

  it("(3) helper binary deleted on the director between two ups: the next up re-installs it", async () => {
    const stack = await newStack(d);
    expectSuccess(await settle(stack, "pulumi up", stack.up()));
    await d.exec(`test -x ${helperFile} && rm -f ${helperFile}`);

    await stack.setConfig("service", JSON.stringify({ ...SERVICE, weight: 2 }));
    expectSuccess(await settle(stack, "pulumi up", stack.up()));
    expect(await helperSha()).toBe(locateHelper().sha256.amd64);
    await expectTableEqualsState(d, stack, 4);
    expect(await kernelLines(d)).toContain(`-a -t ${SERVICE.vip}:80 -r 10.30.0.1:8080 -m -w 2`);
  });

  it("(4) helper binary corrupted on the director between two ups: the next up replaces it", async () => {
    const stack = await newStack(d);
    expectSuccess(await settle(stack, "pulumi up", stack.up()));
    // A few bytes overwritten inside, size and mode unchanged: only the checksum can tell.
    await d.exec(`printf CORRUPTED | dd of=${helperFile} bs=1 seek=4096 conv=notrunc 2>/dev/null`);
    expect(await helperSha()).not.toBe(locateHelper().sha256.amd64);

    await stack.setConfig("service", JSON.stringify({ ...SERVICE, weight: 2 }));
    expectSuccess(await settle(stack, "pulumi up", stack.up()));
    expect(await helperSha()).toBe(locateHelper().sha256.amd64);
    await expectTableEqualsState(d, stack, 4);
  });

  it("(5) ip_vs modules missing: a clear error; after putting them back, up succeeds", async () => {
    const stack = await newStack(d);
    // Unload IPVS (schedulers first, they hold ip_vs) and hide its modules, as on a kernel built without them.
    const modules = "/lib/modules/$(uname -r)/kernel/net/netfilter/ipvs";
    await d.exec(
      `awk '$1 ~ /^ip_vs_/ {print $1}' /proc/modules | xargs -r rmmod; if grep -q '^ip_vs ' /proc/modules; then rmmod ip_vs; fi; ` +
        `mv ${modules} ${modules}.lab-hidden`,
    );
    const putBack = () => d.exec(`if [ -d ${modules}.lab-hidden ]; then mv ${modules}.lab-hidden ${modules}; fi`).then(() => undefined);
    cleanups.push(putBack);

    expectClearError(await settle(stack, "pulumi up", stack.up()), d, /ip_vs\b.*(could not be loaded|not found|not available)|IPVS is not available/i);
    await putBack();
    expectSuccess(await settle(stack, "pulumi up", stack.up()));
    await expectTableEqualsState(d, stack, 4);
  });

  it("(6) modprobe hanging: fails within operationTimeoutSeconds naming the deadline; after fixing modprobe, up succeeds", async () => {
    // ip_vs is loaded, the scheduler's module is not: creating the service makes the kernel (and the helper) run modprobe.
    await d.exec("modprobe ip_vs; if grep -q '^ip_vs_sed ' /proc/modules; then rmmod ip_vs_sed; fi");
    const stack = await newStack(d, { scheduler: "sed" }, { operationTimeoutSeconds: 10 });
    await d.exec("mv /sbin/modprobe /sbin/modprobe.lab-real && printf '#!/bin/sh\\nexec sleep 86399\\n' > /sbin/modprobe && chmod 755 /sbin/modprobe");
    // The fix: the real modprobe back, and the stuck ones (the kernel's and the helper's) killed.
    const fixModprobe = () =>
      d
        .exec(
          "if [ -e /sbin/modprobe.lab-real ]; then mv -f /sbin/modprobe.lab-real /sbin/modprobe; fi; " +
            `for p in /proc/[0-9]*; do [ "$(tr '\\0' ' ' < $p/cmdline 2>/dev/null)" = "sleep 86399 " ] && kill \${p#/proc/}; done; true`,
        )
        .then(() => undefined);
    cleanups.push(fixModprobe);

    const diagnostics = expectClearError(await settle(stack, "pulumi up", stack.up()), d, /no answer within \d+ s|timed out|deadline/i);
    expect(diagnostics).toContain("operationTimeoutSeconds");
    await fixModprobe();
    expectSuccess(await settle(stack, "pulumi up", stack.up()));
    await expectTableEqualsState(d, stack, 4);
  });

  it("(7) sudo asking for a password: a clear error; after granting NOPASSWD, up succeeds", async () => {
    await d.exec("cp -p /etc/sudoers /etc/sudoers.lab-saved");
    // Registered before the stack, so it runs after the stack's destroy (which still needs the grant).
    cleanups.push(() => d.exec("mv -f /etc/sudoers.lab-saved /etc/sudoers").then(() => undefined));
    const stack = await newStack(d, {}, { user: "needpw" });

    expectClearError(await settle(stack, "pulumi up", stack.up()), d, /sudo on needpw@127\.0\.0\.1:\d+ requires a password/);
    await d.exec(`echo 'needpw ALL=(ALL:ALL) NOPASSWD: ALL' >> /etc/sudoers`);
    expectSuccess(await settle(stack, "pulumi up", stack.up()));
    await expectTableEqualsState(d, stack, 4);
  });

  it("(8) wrong host key: refused with both fingerprints; after pinning the right key, up succeeds", async () => {
    const stack = await newStack(d, {}, { hostKey: strangerHostKey });

    expectClearError(await settle(stack, "pulumi up", stack.up()), d, /host key mismatch for ops@127\.0\.0\.1:\d+: it presented ssh-ed25519 SHA256:/);
    expect(await kernelLines(d)).toEqual([]);
    await stack.setConfig("director", directorConfig(d));
    expectSuccess(await settle(stack, "pulumi up", stack.up()));
    await expectTableEqualsState(d, stack, 4);
  });

  it("(9) chatty login shell (echo Welcome in ~/.bashrc): install and start still work, up succeeds", async () => {
    await d.exec("printf 'echo Welcome\\n' > /home/ops/.bashrc && chown ops:ops /home/ops/.bashrc");
    cleanups.push(() => d.exec("rm -f /home/ops/.bashrc").then(() => undefined));
    // No helper yet, as on a new director: the noise must not confuse the install step either.
    await d.exec(`rm -f ${helperFile}`);
    const stack = await newStack(d);

    expectSuccess(await settle(stack, "pulumi up", stack.up()));
    await expectTableEqualsState(d, stack, 4);
  });
});

describe("a director VM killed and restarted in the middle of an up", () => {
  let d: LabDirector;

  beforeAll(async () => {
    d = await startDirector();
  });

  afterAll(async () => {
    await d?.stop();
  });

  it("(2) ends in success or a clear error; up --refresh re-creates everything in the fresh kernel", async () => {
    const count = 60;
    const stack = await newStack(d, { count });
    const up = settle(stack, "pulumi up", stack.up(), BIG_HANG_BOUND_MS);
    await untilPartlyApplied(d, count, up);
    const [first] = await Promise.all([up, d.restart()]);
    // While the VM is down the director is unreachable; once it is back, its kernel lacks the service created before.
    if (!first.ok) expectClearError(first, d, /cannot reach|lost its connection|not sent again|is missing on this director/i);
    // The restarted kernel lost what the first up created: refresh finds out, up re-creates.
    expectSuccess(await settle(stack, "pulumi up --refresh", upRefresh(stack), BIG_HANG_BOUND_MS));
    await expectTableEqualsState(d, stack, count + 1);
  }, 1_200_000);
});
