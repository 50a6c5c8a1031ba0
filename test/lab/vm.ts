// Lab director VM processes: boots qemu detached (so CLI-started directors outlive the CLI), one runtime directory per
// director name under the lab cache dir (pid, console log, known_hosts, director.json, the optional persistent disk),
// readiness, and killing.
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { labCacheDir, type LabImage } from "./image";
import { sshRun, startMaster, stopMaster, type SshTarget } from "./ssh";

const execFileP = promisify(execFile);

export type Accel = "kvm" | "tcg";

/** What is known about a running director; stored as director.json in its runtime dir. */
export interface VmRecord {
  name: string;
  host: string;
  port: number;
  pid: number;
  accel: Accel;
  memoryMiB: number;
  runDir: string;
  imageDir: string;
  privateKeyPath: string;
  hostKey: string;
  /** The raw disk image the guest mounts for what survives a reboot (rcS); absent for a director without one. */
  disk?: string;
  /** The test run that started it (PULUMI_IPVS_LAB_RUN), so that run's teardown can kill it; absent for the CLI. */
  runId?: string;
}

const READY_MARK = "LAB-READY";
/** Size of the persistent disk; sparse, so it costs only what the guest writes. */
const DISK_BYTES = 64 * 1024 * 1024;

function runRoot(): string {
  return path.join(labCacheDir(), "run");
}

export function runDirOf(name: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(name)) {
    throw new Error(`lab director name "${name}" is invalid: use letters, digits, "_", "." and "-" (max 63)`);
  }
  return path.join(runRoot(), name);
}

export function consoleTail(runDir: string, lines = 40): string {
  const file = path.join(runDir, "console.log");
  if (!fs.existsSync(file)) return "(no console output)";
  return fs.readFileSync(file, "utf8").split("\n").slice(-lines).join("\n");
}

/** True when pid is alive and is the qemu of this runtime dir (guards against pid reuse). */
function isOurQemu(pid: number, runDir: string): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(path.join(runDir, "console.log"));
  } catch {
    return false;
  }
}

function readPid(runDir: string): number | undefined {
  const f = path.join(runDir, "qemu.pid");
  if (!fs.existsSync(f)) return undefined;
  const pid = Number(fs.readFileSync(f, "utf8").trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** The record of a running director, or undefined when none of that name runs. */
export function readVm(name: string): VmRecord | undefined {
  const runDir = runDirOf(name);
  const recFile = path.join(runDir, "director.json");
  if (!fs.existsSync(recFile)) return undefined;
  const rec = JSON.parse(fs.readFileSync(recFile, "utf8")) as VmRecord;
  return isOurQemu(rec.pid, runDir) ? rec : undefined;
}

export function listVms(): VmRecord[] {
  if (!fs.existsSync(runRoot())) return [];
  return fs
    .readdirSync(runRoot())
    .sort()
    .flatMap((name) => readVm(name) ?? []);
}

/** How to reach the director as root, through the master connection bootVm started. */
export function rootTarget(rec: VmRecord): SshTarget & { controlPath: string } {
  return {
    host: rec.host,
    port: rec.port,
    user: "root",
    privateKeyPath: rec.privateKeyPath,
    knownHostsPath: path.join(rec.runDir, "known_hosts"),
    controlPath: path.join(rec.runDir, "ssh-root.sock"),
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function qemuArgs(image: LabImage, runDir: string, port: number, accel: Accel, memoryMiB: number, disk?: string): string[] {
  return [
    "-name", `pulumi-ipvs-lab-${path.basename(runDir)}`,
    "-accel", accel,
    "-cpu", accel === "kvm" ? "host" : "max",
    "-smp", "1",
    "-m", String(memoryMiB),
    "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
    "-kernel", image.vmlinuz,
    "-initrd", image.initrd,
    "-append", "console=ttyS0 panic=-1 loglevel=4",
    "-serial", `file:${path.join(runDir, "console.log")}`,
    "-netdev", `user,id=n0,hostfwd=tcp:127.0.0.1:${port}-:22`,
    "-device", "virtio-net-pci,netdev=n0",
    "-device", "virtio-rng-pci",
    // The guest formats it on first boot; commas in the path would end qemu's option value, so none are allowed.
    ...(disk ? ["-drive", `file=${disk},if=virtio,format=raw`] : []),
    "-pidfile", path.join(runDir, "qemu.pid"),
    "-daemonize",
  ];
}

/**
 * Starts qemu in the background; retries on a lost race for the loopback port (or, on a restart, for the old qemu's
 * pid file). With `fixedPort` (a restart) the port is kept, so a race is waited out instead of moving to another port.
 */
async function launch(
  image: LabImage,
  runDir: string,
  accel: Accel,
  memoryMiB: number,
  disk: string | undefined,
  fixedPort?: number,
): Promise<{ pid: number; port: number }> {
  for (let attempt = 1; ; attempt++) {
    const port = fixedPort ?? (await freePort());
    fs.rmSync(path.join(runDir, "console.log"), { force: true });
    try {
      // -daemonize: qemu returns once the VM runs, or fails with its reason on stderr.
      await execFileP("qemu-system-x86_64", qemuArgs(image, runDir, port, accel, memoryMiB, disk));
    } catch (e) {
      const stderr = String((e as { stderr?: string }).stderr ?? e).trim();
      // A restart can also find the old qemu's pid file still locked, if its last threads have not ended yet.
      if (attempt < 5 && /host forwarding|Address already in use|Cannot lock pid file/i.test(stderr)) {
        if (fixedPort) await new Promise((r) => setTimeout(r, 1000));
        continue;
      }
      throw new Error(`lab director ${path.basename(runDir)}: qemu (${accel}) failed to start: ${stderr}`);
    }
    const pid = readPid(runDir);
    if (!pid) throw new Error(`lab director ${path.basename(runDir)}: qemu started but wrote no pid file`);
    return { pid, port };
  }
}

/** Waits for the guest's ready line on the serial console; false when qemu died or the deadline passed. */
async function waitReady(runDir: string, pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  const consoleFile = path.join(runDir, "console.log");
  while (Date.now() < deadline) {
    if (!isOurQemu(pid, runDir)) return false;
    if (fs.existsSync(consoleFile) && fs.readFileSync(consoleFile, "utf8").includes(READY_MARK)) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}

/** How long a SIGKILLed qemu may take to end (freeing its guest memory) before restartVm gives up. */
const KILL_TIMEOUT_MS = 30_000;

/** A process's state and start time (fields 3 and 22 of /proc/<pid>/stat), undefined when it is gone. */
export function procStat(pid: number): { state: string; started: string } | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name, which is in parentheses and may hold spaces.
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { state: rest[0], started: rest[19] };
  } catch {
    return undefined;
  }
}

/**
 * Whether the process that started at `started` (which tells it from a reused pid) still holds its files: alive, or a
 * zombie whose other threads are still exiting (a thread group's leader turns zombie first, and its files, the pid
 * file's lock among them, go with the last thread).
 */
function holdsFiles(pid: number, started: string | undefined): boolean {
  const stat = procStat(pid);
  if (stat === undefined || started === undefined || stat.started !== started) return false;
  if (stat.state !== "Z") return true;
  try {
    return fs.readdirSync(`/proc/${pid}/task`).length > 1;
  } catch {
    return false;
  }
}

/** Resolves once the process that started at `started` has closed its files (exited, or a zombie). */
export async function untilExited(pid: number, started: string | undefined, timeoutMs: number, name: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (holdsFiles(pid, started)) {
    if (Date.now() > deadline) throw new Error(`lab director ${name}: qemu (pid ${pid}) still running ${timeoutMs / 1000} s after SIGKILL`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function killPid(pid: number, runDir: string): Promise<void> {
  if (!isOurQemu(pid, runDir)) return;
  process.kill(pid, "SIGTERM");
  for (let i = 0; i < 50 && isOurQemu(pid, runDir); i++) await new Promise((r) => setTimeout(r, 100));
  if (isOurQemu(pid, runDir)) process.kill(pid, "SIGKILL");
}

function canOpenKvm(): boolean {
  try {
    fs.closeSync(fs.openSync("/dev/kvm", "r+"));
    return true;
  } catch {
    return false;
  }
}

// KVM when it works, else TCG. /dev/kvm opening is not enough (nested setups can fail or hang the guest), so the first
// boot on a host tries KVM with a short deadline and the verdict is remembered per host kernel + qemu binary.
// PULUMI_IPVS_LAB_ACCEL=kvm|tcg forces a choice.
function accelVerdictFile(): string {
  const qemu = fs.statSync("/usr/bin/qemu-system-x86_64", { throwIfNoEntry: false });
  return path.join(labCacheDir(), `accel-${os.release()}-${qemu?.size ?? 0}-${qemu?.mtimeMs ?? 0}`);
}

const KVM_PROBE_MS = 25_000;
const BOOT_TIMEOUT_MS = Number(process.env.PULUMI_IPVS_LAB_BOOT_TIMEOUT_MS ?? 150_000);

/**
 * Boots a director named `name`; resolves once root can run a command over SSH. With `persistentDisk` it gets a new,
 * empty disk in its runtime dir that restartVm keeps.
 */
export async function bootVm(
  name: string,
  image: LabImage,
  opts: { memoryMiB: number; runId?: string; persistentDisk?: boolean },
): Promise<VmRecord> {
  const { memoryMiB, runId } = opts;
  const runDir = runDirOf(name);
  const running = readVm(name);
  if (running) throw new Error(`lab director "${name}" is already running (pid ${running.pid}, port ${running.port}); stop it first`);
  fs.rmSync(runDir, { recursive: true, force: true });
  fs.mkdirSync(runDir, { recursive: true });
  const disk = opts.persistentDisk ? path.join(runDir, "persist.img") : undefined;
  if (disk?.includes(",")) throw new Error(`lab director "${name}": the lab dir ${labCacheDir()} must not contain "," (qemu -drive)`);
  // Empty (all zeros) again before each first boot, so a KVM probe killed mid-format leaves nothing half made.
  const blankDisk = () => {
    if (!disk) return;
    fs.writeFileSync(disk, "");
    fs.truncateSync(disk, DISK_BYTES);
  };
  blankDisk();

  const forced = process.env.PULUMI_IPVS_LAB_ACCEL as Accel | undefined;
  if (forced && forced !== "kvm" && forced !== "tcg") throw new Error(`PULUMI_IPVS_LAB_ACCEL must be kvm or tcg, not "${forced}"`);
  const verdictFile = accelVerdictFile();
  const remembered = fs.existsSync(verdictFile) ? (fs.readFileSync(verdictFile, "utf8").trim() as Accel) : undefined;
  let accel: Accel = forced ?? remembered ?? (canOpenKvm() ? "kvm" : "tcg");
  const probing = !forced && !remembered && accel === "kvm";

  let { pid, port } = await launch(image, runDir, accel, memoryMiB, disk).catch((e) => {
    if (!probing) throw e;
    return { pid: 0, port: 0 };
  });
  let ready = pid !== 0 && (await waitReady(runDir, pid, probing ? KVM_PROBE_MS : BOOT_TIMEOUT_MS));
  if (probing) {
    if (!ready) {
      if (pid) await killPid(pid, runDir);
      blankDisk();
      accel = "tcg";
      ({ pid, port } = await launch(image, runDir, accel, memoryMiB, disk));
      ready = await waitReady(runDir, pid, BOOT_TIMEOUT_MS);
    }
    fs.writeFileSync(verdictFile, accel);
  }
  const rec: VmRecord = {
    name, host: "127.0.0.1", port, pid, accel, memoryMiB, runDir,
    imageDir: image.dir, privateKeyPath: image.privateKeyPath, hostKey: image.hostKey, disk, runId,
  };
  return connectRoot(rec, ready);
}

/** Once the guest said it is ready: records the director and starts the root SSH master, or kills the VM and says why. */
async function connectRoot(rec: VmRecord, ready: boolean): Promise<VmRecord> {
  const { name, accel, pid, port, runDir } = rec;
  const fail = async (why: string): Promise<never> => {
    const tail = consoleTail(runDir);
    await killPid(pid, runDir);
    throw new Error(`lab director "${name}" (${accel}) did not come up: ${why}\n--- console tail ---\n${tail}`);
  };
  if (!ready) {
    return fail(isOurQemu(pid, runDir) ? `no "${READY_MARK}" on the console within ${BOOT_TIMEOUT_MS} ms` : "qemu exited");
  }
  fs.writeFileSync(path.join(runDir, "known_hosts"), `[${rec.host}]:${port} ${rec.hostKey}\n`);
  fs.writeFileSync(path.join(runDir, "director.json"), JSON.stringify(rec, null, 2));
  // sshd listens before the ready line is printed; retry only covers the guest being slow to accept under load.
  let last = "";
  for (let i = 0; i < 5; i++) {
    const started = await startMaster(rootTarget(rec), path.join(runDir, "ssh-master.log")).then(() => "", (e: Error) => e.message);
    if (!started) {
      const r = await sshRun(rootTarget(rec), "true", { timeoutMs: 60_000 });
      if (r.code === 0) return rec;
      last = r.stderr.trim();
    } else {
      last = started;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
  return fail(`SSH as root on 127.0.0.1:${port} failed: ${last}`);
}

/**
 * Kills the director's qemu as a crash would (SIGKILL, no shutdown) and boots the same image again on the same
 * loopback port with the same accelerator: same host key and credentials, a fresh initramfs and an empty IPVS table.
 * Without a persistent disk nothing done in the guest survives (no installed helper); with one, what rcS keeps on it
 * (/var/lib, /etc/systemd/system, /usr/local) does, and its enabled units run at boot. Resolves with the new record
 * once root SSH works again.
 */
export async function restartVm(rec: VmRecord): Promise<VmRecord> {
  const started = procStat(rec.pid)?.started;
  if (isOurQemu(rec.pid, rec.runDir)) process.kill(rec.pid, "SIGKILL");
  // The new qemu takes the same pid file lock and loopback port, which the old one holds until it has closed its
  // files: its cmdline reads empty before that (its memory goes first), so wait for the process itself to end.
  await untilExited(rec.pid, started, KILL_TIMEOUT_MS, path.basename(rec.runDir));
  // The master died with the connection; this only clears its control socket.
  await stopMaster(rootTarget(rec));
  fs.rmSync(rootTarget(rec).controlPath, { force: true });
  const image: LabImage = {
    dir: rec.imageDir,
    vmlinuz: path.join(rec.imageDir, "vmlinuz"),
    initrd: path.join(rec.imageDir, "initrd.gz"),
    privateKeyPath: rec.privateKeyPath,
    hostKey: rec.hostKey,
  };
  const { pid } = await launch(image, rec.runDir, rec.accel, rec.memoryMiB, rec.disk, rec.port);
  const ready = await waitReady(rec.runDir, pid, BOOT_TIMEOUT_MS);
  return connectRoot({ ...rec, pid }, ready);
}

/** Ends the SSH master, kills the director's qemu and removes its runtime directory. */
export async function killVm(rec: VmRecord): Promise<void> {
  await stopMaster(rootTarget(rec));
  await killPid(rec.pid, rec.runDir);
  fs.rmSync(rec.runDir, { recursive: true, force: true });
}
