// The per-process pool: one DirectorSession per (director, user, connection settings), shared by every resource the
// dynamic-provider process serves. Settings are part of the key so two programs' different credentials for the same
// host never share a connection; the digest stays in memory only.

import { createHash } from "node:crypto";
import { directorKey, type Director } from "../director";
import { DirectorSession } from "./session";

const sessions = new Map<string, DirectorSession>();
let exitHookInstalled = false;

function poolKey(director: Director): string {
  const digest = createHash("sha256").update(JSON.stringify(director)).digest("hex").slice(0, 16);
  return `${director.user}@${directorKey(director)}#${digest}`;
}

/** The shared session for `director` (connects lazily, on first use). */
export function sessionFor(director: Director): DirectorSession {
  const key = poolKey(director);
  let session = sessions.get(key);
  if (!session) {
    session = new DirectorSession(director);
    sessions.set(key, session);
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      // Sockets left open would keep the plugin process alive and leave sshd sessions behind.
      process.once("exit", closeAllSessions);
    }
  }
  return session;
}

/** Closes every pooled connection (tests, process exit). Sessions re-dial on their next use. */
export function closeAllSessions(): void {
  for (const session of sessions.values()) session.close();
}
