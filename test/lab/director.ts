// The API tests use to get a real IPVS director: a qemu VM with a Debian kernel, reachable over SSH on a loopback port.
import * as fs from "node:fs";
import { ensureImage, type LabImage } from "./image";
import { shellQuote, sshRun, type ExecResult } from "./ssh";
import { bootVm, consoleTail, killVm, readVm, restartVm, rootTarget, type VmRecord } from "./vm";

export interface LabDirector {
  name: string;
  host: string;
  port: number;
  /** Login user for the code under test ("ops"), which reaches root with `sudo -n`. */
  user: string;
  privateKeyPath: string;
  /** The director's OpenSSH public host key line. */
  hostKey: string;
  sudoUser: string;
  /** True when it has a persistent disk (startDirector({ persistentDisk: true })); see reboot(). */
  persistentDisk: boolean;
  /** Runs a shell command as root; by default throws (with stderr) on a non-zero exit. */
  exec(command: string, opts?: { check?: boolean; timeoutMs?: number; stdin?: string }): Promise<ExecResult>;
  /** Copies a local file to the director as root, atomically, with `mode` (default 0644). */
  copyTo(localPath: string, remotePath: string, mode?: number): Promise<void>;
  /** The last lines of the VM's serial console. */
  consoleTail(lines?: number): string;
  /**
   * Ends every SSH session `user` has on the director (kills the sshd processes serving them), as a dropped network
   * connection would; the lab's own root connection stays.
   */
  killSshSessions(user?: string): Promise<void>;
  /** Sends `signal` (default TERM) to every process whose command line matches the shell case pattern (the VM has no pkill). */
  killByCmdline(casePattern: string, signal?: string): Promise<void>;
  /**
   * Kills the VM (SIGKILL, like a power cut) and boots it again on the same port with the same host key. The guest
   * starts from its image: the kernel table is empty and nothing installed on it survives — unless the director has a
   * persistent disk, where restart() is reboot().
   */
  restart(): Promise<void>;
  /**
   * A real reboot after a crash: kills the VM (SIGKILL) and boots it again on the same port and the same persistent
   * disk. What lives on the disk survives — /var/lib (the helper's ledger), /etc/systemd/system and /usr/local (the
   * helper binary); the kernel table, /run, /tmp and the rest do not. /run/systemd/system exists on such a director,
   * and its init runs the ExecStart= of every unit enabled in /etc/systemd/system/multi-user.target.wants before the
   * VM reports ready (commands and exit codes in /var/log/boot-units.log), so this resolves after they ran; Type=simple
   * units (daemons) are started detached after the one-shot ones, in After= order (output in /var/log/<unit>.log).
   * Without a persistent disk it is the same as restart().
   */
  reboot(): Promise<void>;
  stop(): Promise<void>;
}

/** Env var set by test/lab/globalSetup.ts: the prebuilt image dir, so workers skip resolving the image key. */
export const IMAGE_ENV = "PULUMI_IPVS_LAB_IMAGE";
/** Env var set by test/lab/globalSetup.ts: directors started under it are killed at the run's teardown. */
export const RUN_ENV = "PULUMI_IPVS_LAB_RUN";

async function labImage(): Promise<LabImage> {
  const dir = process.env[IMAGE_ENV];
  if (!dir) return ensureImage();
  const hostKeyFile = `${dir}/host_ed25519_key.pub`;
  if (!fs.existsSync(hostKeyFile)) throw new Error(`${IMAGE_ENV}=${dir} is not a built lab image (no ${hostKeyFile})`);
  return {
    dir,
    vmlinuz: `${dir}/vmlinuz`,
    initrd: `${dir}/initrd.gz`,
    privateKeyPath: `${dir}/id_ed25519`,
    hostKey: fs.readFileSync(hostKeyFile, "utf8").trim(),
  };
}

function directorOf(rec: VmRecord): LabDirector {
  const root = rootTarget(rec);
  const where = `lab director "${rec.name}" (127.0.0.1:${rec.port})`;
  // A restart changes only the qemu pid; port, keys and the master's control path stay.
  let current = rec;
  const exec: LabDirector["exec"] = async (command, opts = {}) => {
    const res = await sshRun(root, command, { stdin: opts.stdin, timeoutMs: opts.timeoutMs });
    if ((opts.check ?? true) && res.code !== 0) {
      throw new Error(`${where}: \`${command}\` exited ${res.code}: ${res.stderr.trim() || res.stdout.trim()}`);
    }
    return res;
  };
  const killAndBoot = async () => {
    current = await restartVm(current);
  };
  return {
    name: rec.name,
    host: rec.host,
    port: rec.port,
    user: "ops",
    privateKeyPath: rec.privateKeyPath,
    hostKey: rec.hostKey,
    sudoUser: "ops",
    persistentDisk: rec.disk !== undefined,
    exec,
    async copyTo(localPath, remotePath, mode = 0o644) {
      const tmp = `${remotePath}.lab-copy-${process.pid}`;
      const res = await sshRun(
        root,
        `cat > ${shellQuote(tmp)} && chmod ${mode.toString(8)} ${shellQuote(tmp)} && mv -f ${shellQuote(tmp)} ${shellQuote(remotePath)}`,
        { stdin: fs.readFileSync(localPath) },
      );
      if (res.code !== 0) throw new Error(`${where}: copy ${localPath} -> ${remotePath} failed: ${res.stderr.trim()}`);
    },
    consoleTail: (lines) => consoleTail(rec.runDir, lines),
    async killByCmdline(casePattern, signal = "TERM") {
      await exec(`for p in /proc/[0-9]*; do case "$(tr '\\0' ' ' < $p/cmdline 2>/dev/null)" in ${casePattern}) kill -${signal} \${p#/proc/};; esac; done`);
    },
    async killSshSessions(user = "ops") {
      // sshd retitles the processes of a session "sshd: <user> [priv]" and "sshd: <user>@notty".
      await this.killByCmdline(`${shellQuote(`sshd: ${user}@`)}*|${shellQuote(`sshd: ${user} `)}*`);
    },
    // One operation: restartVm keeps the disk when there is one, so what survives depends only on how it was started.
    restart: killAndBoot,
    reboot: killAndBoot,
    stop: () => killVm(current),
  };
}

let counter = 0;

/**
 * Boots a new director. Without a name it gets a unique one, so test files can run in parallel. `persistentDisk` gives
 * it a new, empty disk for what a real director keeps across reboot() (see there); without it, it keeps nothing.
 */
export async function startDirector(
  opts: { name?: string; memoryMiB?: number; persistentDisk?: boolean } = {},
): Promise<LabDirector> {
  const image = await labImage();
  const name = opts.name ?? `t${process.pid}-${++counter}`;
  const rec = await bootVm(name, image, {
    memoryMiB: opts.memoryMiB ?? 768,
    runId: process.env[RUN_ENV],
    persistentDisk: opts.persistentDisk,
  });
  return directorOf(rec);
}

/** A director started earlier (e.g. by `npm run lab -- up`). */
export async function attachDirector(name: string): Promise<LabDirector> {
  const rec = readVm(name);
  if (!rec) throw new Error(`no running lab director named "${name}" (start one with: npm run lab -- up --name ${name})`);
  return directorOf(rec);
}
