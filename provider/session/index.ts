// The director session: pooled, host-key-verified SSH (through jump hosts) that runs commands as root.
export { DirectorError, reachedNothing, type DirectorErrorKind } from "./errors";
export { closeAllSessions, sessionFor } from "./pool";
export { DirectorSession, shQuote, type ExecResult, type SessionStats } from "./session";
export type { SshChannel } from "./connect";
