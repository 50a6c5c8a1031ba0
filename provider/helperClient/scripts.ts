// The root shell scripts that verify, start and install the helper on a director (run through the director session).
import * as path from "node:path";
import { shQuote } from "../session";
import { INSTALL_ROOT, installPath, type Arch, type HelperBinaries } from "./binaries";

// `safe P` succeeds when P and every directory above it is root-owned and not writable by group or others, so no
// other user can swap the binary we are about to run as root. stat -L: judge a symlinked directory by its target.
const SAFE_FN =
  `safe() { p=$1; while [ -n "$p" ]; do ` +
  `case "$(stat -L -c '%u %a' "$p" 2>/dev/null)" in "0 "*[0145][0145]) ;; *) echo "$p"; return 1;; esac; p=\${p%/*}; done; }`;

/**
 * One exec that verifies and starts the helper: prints "ready <arch>" and becomes `ipvs-helper serve`, or prints
 * "install <arch>" when the binary is missing, altered or on an unsafe path, or "unsupported-arch <uname -m>".
 */
export function startScript(bins: HelperBinaries): string {
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
export function installScript(bins: HelperBinaries, arch: Arch): string {
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
