// Runs commands on a lab director with the real OpenSSH client, pinned to the director's host key.
import { spawn } from "node:child_process";

export interface SshTarget {
  host: string;
  port: number;
  user: string;
  privateKeyPath: string;
  /** known_hosts file holding exactly the director's host key. */
  knownHostsPath: string;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  code: number;
}

function sshArgs(t: SshTarget): string[] {
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
    `${t.user}@${t.host}`,
  ];
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
