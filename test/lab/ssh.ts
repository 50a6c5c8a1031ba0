// Runs commands on a lab director with the real OpenSSH client, pinned to the director's host key.
import { spawn } from "node:child_process";
import * as fs from "node:fs";

export interface SshTarget {
  host: string;
  port: number;
  user: string;
  privateKeyPath: string;
  /** known_hosts file holding exactly the director's host key. */
  knownHostsPath: string;
  /** Socket of a master connection to reuse (see startMaster); without a live master ssh connects directly. */
  controlPath?: string;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  code: number;
}

function sshArgs(t: SshTarget, controlMaster: "yes" | "no" = "no"): string[] {
  return [
    "-F", "/dev/null",
    "-i", t.privateKeyPath,
    "-p", String(t.port),
    "-o", "IdentitiesOnly=yes",
    "-o", "BatchMode=yes",
    "-o", "StrictHostKeyChecking=yes",
    "-o", `UserKnownHostsFile=${t.knownHostsPath}`,
    "-o", "GlobalKnownHostsFile=/dev/null",
    "-o", "ConnectTimeout=30",
    "-o", "LogLevel=ERROR",
    // A dead VM must end the master and any session instead of leaving them hanging.
    "-o", "ServerAliveInterval=5",
    "-o", "ServerAliveCountMax=6",
    ...(t.controlPath ? ["-o", `ControlMaster=${controlMaster}`, "-o", `ControlPath=${t.controlPath}`] : []),
    `${t.user}@${t.host}`,
  ];
}

/**
 * Starts a background master connection on t.controlPath: every later sshRun reuses it, which saves the key exchange
 * that costs seconds in an emulated guest. It ends with stopMaster or when the VM goes away.
 */
export function startMaster(t: SshTarget & { controlPath: string }, logPath: string): Promise<void> {
  // The backgrounded master keeps its stdio, so stderr goes to a file rather than a pipe that would never close.
  const log = fs.openSync(logPath, "w");
  return new Promise<void>((resolve, reject) => {
    const child = spawn("ssh", ["-N", "-f", "-o", "ControlPersist=yes", ...sshArgs(t, "yes")], { stdio: ["ignore", "ignore", log] });
    child.on("error", reject);
    child.on("exit", (code) =>
      code === 0
        ? resolve()
        : reject(new Error(`ssh master to ${t.user}@${t.host}:${t.port} failed (exit ${code}): ${fs.readFileSync(logPath, "utf8").trim()}`)),
    );
  }).finally(() => fs.closeSync(log));
}

/** Ends the master connection, if one runs. */
export function stopMaster(t: SshTarget & { controlPath: string }): Promise<void> {
  return new Promise((resolve) => {
    const child = spawn("ssh", ["-O", "exit", ...sshArgs(t)], { stdio: "ignore" });
    child.on("error", () => resolve());
    child.on("close", () => resolve());
  });
}

/** Quotes s as one POSIX shell word. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Runs `command` through the remote login shell; resolves with its exit code (ssh's own failures are code 255). */
export function sshRun(
  t: SshTarget,
  command: string,
  opts: { stdin?: string | Buffer; timeoutMs?: number } = {},
): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn("ssh", [...sshArgs(t), command], { stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (c: Buffer) => out.push(c));
    child.stderr.on("data", (c: Buffer) => err.push(c));
    let timedOut = false;
    const timer = opts.timeoutMs
      ? setTimeout(() => {
          timedOut = true;
          child.kill("SIGKILL");
        }, opts.timeoutMs)
      : undefined;
    child.on("error", (e) => reject(new Error(`ssh ${t.user}@${t.host}:${t.port}: cannot run ssh: ${e.message}`)));
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const res = { stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), code: code ?? 255 };
      if (timedOut) {
        reject(new Error(`ssh ${t.user}@${t.host}:${t.port}: \`${command}\` timed out after ${opts.timeoutMs} ms; stderr: ${res.stderr.trim()}`));
      } else if (signal) {
        reject(new Error(`ssh ${t.user}@${t.host}:${t.port}: killed by ${signal} while running \`${command}\``));
      } else {
        resolve(res);
      }
    });
    child.stdin.on("error", () => {}); // the remote side may exit before reading all of stdin; its exit code tells
    child.stdin.end(opts.stdin ?? "");
  });
}
