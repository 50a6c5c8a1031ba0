// The helper on each director, seen from the provider: binaries and install path (binaries.ts), the root scripts that
// verify, start and install it (scripts.ts), line framing (lineReader.ts), batching and re-sending (client.ts), and the
// typed operations the providers call (directorOps.ts).
export { installPath, locateHelper, type Arch, type HelperBinaries } from "./binaries";
export type { HelperStats } from "./client";
export { directorOps, forgetTables, helperStats, type DirectorOps, type DirectorTable } from "./directorOps";
