// The root shell scripts that verify, start and install the helper on a director (run through the director session).
// They run as root with /bin/sh (dash on Debian, busybox ash elsewhere): POSIX sh and busybox-compatible tools only.
//
// Trust rule: root runs or writes the helper only below a path no other user can change, judged component by
// component from / down with lstat semantics (a symlink is refused, never followed). Nothing that already exists is
// ever chowned or chmodded (that would let a planted symlink aim root at any file); only missing directories are
// created, by root under umask 022. The start script hashes the binary through the descriptor it then executes, so the
// bytes that run are the bytes that were verified.
import * as path from "node:path";
import { shQuote } from "../session";
import { INSTALL_ROOT, installPath, type Arch, type HelperBinaries } from "./binaries";

/** Prefix of every line the start script prints, so noise from the login shell (.bashrc, motd) before it is skipped. */
export const START_MARKER = "pulumi-ipvs-start:";

/** How much login-shell noise before the marker is tolerated before the start is given up as garbled. */
export const MAX_NOISE = { lines: 1000, bytes: 64 * 1024 };

/**
 * `comp PATH d|f own|sys` judges one path component: 0 safe, 2 missing, 1 unsafe (prints why and how to fix it).
 * "own" components (the install tree) may simply be removed; "sys" ones (/, /usr, …) must be fixed in place.
 * Callers go top-down, so each component's parent is already known to be changeable by root only.
 */
const COMP_FN = [
  // Owner and mode come from $S, one `stat` run over every component (walk sets it), else from a `stat` of the path
  // alone (the install script, or a directory created since). Each fork is a large share of the start's time on a
  // small or emulated director. Stale data is no hole: only root can change a component whose parents are root-only.
  `NL='`,
  `'`,
  `meta() { case "$S" in *"$NL$1 "*) r=\${S#*"$NL$1 "}; r=\${r%%"$NL"*};; *) r=$(stat -c '%u %A' "$1") || return 1;; esac; o=\${r%% *}; m=\${r#* }; }`,
  `comp() {`,
  `  if [ -L "$1" ]; then w="is a symbolic link"`,
  `  elif [ ! -e "$1" ]; then return 2`,
  `  elif [ "$2" = d ] && [ ! -d "$1" ]; then w="is not a directory"`,
  `  elif [ "$2" = f ] && [ ! -f "$1" ]; then w="is not a regular file"`,
  `  else`,
  `    meta "$1" || { echo "cannot stat $1"; return 1; }`,
  `    if [ "$o" != 0 ]; then w="is owned by uid $o, not root"`,
  // %A is like drwxr-xr-x: the 6th character is group write, the 9th others write.
  `    else case $m in ?????w*|????????w*) w="is writable by group or others ($m)";; *) return 0;; esac; fi`,
  `    [ "$3" = own ] && { echo "$1 $w: remove it (pulumi-ipvs recreates it) or \\\`chown root:root\\\` it and \\\`chmod 755\\\` it, then retry"; return 1; }`,
  `  fi`,
  `  if [ "$3" = own ]; then echo "$1 $w: remove it (pulumi-ipvs recreates it), then retry"`,
  `  else echo "$1 $w: the helper runs as root, so every directory above it must be a real directory owned by root that group and others cannot write; fix that, then retry"; fi`,
  `  return 1`,
  `}`,
].join("\n");

/**
 * Defines `sha256` (stdin to 64 hex digits) with the first tool the director has, or sets nosha=1. busybox is
 * probed by running its applet: a busybox built without sha256sum exists but cannot hash.
 */
const HASH_FN = [
  `if command -v sha256sum >/dev/null 2>&1; then H=sha256sum`,
  `elif busybox sha256sum </dev/null >/dev/null 2>&1; then H="busybox sha256sum"`,
  `elif openssl dgst -sha256 </dev/null >/dev/null 2>&1; then H="openssl dgst -sha256"`,
  `else nosha=1; fi`,
  // "HEX  -" (sha256sum) or "SHA2-256(stdin)= HEX" (openssl); $H is split into words on purpose.
  `sha256() { h=$($H) && h=\${h##*= } && echo "\${h%% *}"; }`,
].join("\n");

/** What the director needs when it has none of the hashing tools. */
export const NO_SHA256_FIX = "install coreutils (sha256sum), busybox or openssl";

interface Component {
  path: string;
  kind: "d" | "f";
  own: boolean;
}

/** Every component of the helper's path for `arch`, from / down: directories above the install root, then ours. */
export function components(bins: HelperBinaries, arch: Arch): Component[] {
  const file = installPath(bins, arch);
  const out: Component[] = [{ path: "/", kind: "d", own: false }];
  let p = "";
  for (const part of file.split("/").slice(1)) {
    p += `/${part}`;
    out.push({ path: p, kind: p === file ? "f" : "d", own: p === INSTALL_ROOT || p.startsWith(`${INSTALL_ROOT}/`) });
  }
  return out;
}

const compCall = (c: Component) => `comp ${shQuote(c.path)} ${c.kind} ${c.own ? "own" : "sys"}`;

/**
 * One exec that verifies and starts the helper. Every line it prints starts with START_MARKER, then one of:
 * "ready <arch>" (and it becomes `ipvs-helper serve <serveArgs>`), "install <arch>" (binary missing or altered),
 * "unsafe <arch> <why>" (a component of the path is unsafe: refused, never repaired), "no-sha256" or
 * "unsupported-arch <uname -m>".
 */
export function startScript(bins: HelperBinaries, serveArgs: string[]): string {
  const say = (what: string) => `echo "${START_MARKER} ${what}"`;
  const walk = (arch: Arch) => {
    const cs = components(bins, arch);
    // stat -c without -L reports the link itself (lstat), as comp judges; missing paths are left out of $S.
    const statAll = `S="$NL$(stat -c '%n %u %A' ${cs.map((c) => shQuote(c.path)).join(" ")} 2>/dev/null)$NL"`;
    return `walk() { ${statAll}; ${cs.map(compCall).join(" && ")}; }`;
  };
  return [
    COMP_FN,
    HASH_FN,
    `case "$(uname -m)" in x86_64|amd64) a=amd64 f=${shQuote(installPath(bins, "amd64"))} s=${shQuote(bins.sha256.amd64)}; ${walk("amd64")};;` +
      ` aarch64|arm64) a=arm64 f=${shQuote(installPath(bins, "arm64"))} s=${shQuote(bins.sha256.arm64)}; ${walk("arm64")};;` +
      ` *) ${say("unsupported-arch $(uname -m)")}; exit 0;; esac`,
    `[ -z "$nosha" ] || { ${say("no-sha256")}; exit 0; }`,
    `why=$(walk)`,
    `case $? in 0) ;; 2) ${say("install $a")}; exit 0;; *) ${say("unsafe $a $why")}; exit 0;; esac`,
    // Open once; hash and exec through the same descriptor, so swapping the file afterwards changes nothing.
    `exec 3<"$f"`,
    `if [ "$(sha256 <&3)" = "$s" ]; then ${say("ready $a")}; exec /proc/self/fd/3 serve${serveArgs.map((a) => " " + shQuote(a)).join("")}; fi`,
    say("install $a"),
  ].join("\n");
}

/**
 * Root script, binary on stdin: creates the missing directories of the path (refusing an unsafe one), writes a private
 * temp file in the final directory, verifies it, renames it into place. Exit 5: unsafe path, 6: hash mismatch,
 * 7: could not write, 8: no hashing tool. Messages go to stderr; an interrupted run removes its temp file.
 */
export function installScript(bins: HelperBinaries, arch: Arch): string {
  const file = installPath(bins, arch);
  const dir = path.posix.dirname(file);
  const sha = bins.sha256[arch];
  const dirs = components(bins, arch).filter((c) => c.kind === "d");
  return [
    "set -e",
    "umask 022",
    // Everything printed is for the error report; stdout is not read.
    "exec 1>&2",
    // The values below reach root only through these quoted assignments (installPath has checked them too).
    `d=${shQuote(dir)} f=${shQuote(file)} s=${shQuote(sha)}`,
    COMP_FN,
    HASH_FN,
    `[ -z "$nosha" ] || { echo "no SHA-256 tool: ${NO_SHA256_FIX}"; exit 8; }`,
    // A directory that appeared since its check (a concurrent install) is judged again, never trusted blindly.
    `need() { comp "$@" && return 0 || [ $? -eq 2 ] || exit 5; mkdir "$1" 2>/dev/null || true; comp "$@" && return 0 || [ $? -eq 2 ] || exit 5; echo "cannot create $1"; exit 7; }`,
    ...dirs.map((c) => `need ${shQuote(c.path)} d ${c.own ? "own" : "sys"}`),
    `comp "$f" f own || [ $? -eq 2 ] || exit 5`,
    `t=`,
    `trap 'rm -f "$t"' EXIT`,
    // PIPE too: once the channel is gone, the first message would otherwise kill the shell before its EXIT trap.
    // The handler ignores further signals first: sudo relays the TERM a group kill already delivered, and that second
    // one would otherwise kill the EXIT trap's rm (an ignored signal stays ignored across exec) and leave the file.
    `trap 'trap "" HUP INT TERM PIPE; exit 1' HUP INT TERM PIPE`,
    `t=$(mktemp "$d/.upload.XXXXXX") && [ -n "$t" ] || { echo "cannot create a temporary file in $d"; exit 7; }`,
    `cat > "$t" || { echo "cannot write $t"; exit 7; }`,
    `got=$(sha256 < "$t") || got=`,
    `[ "$got" = "$s" ] || { echo "uploaded helper has sha256 \${got:-(none)}, expected $s"; exit 6; }`,
    `chown 0:0 "$t"`,
    `chmod 0755 "$t"`,
    `mv -f "$t" "$f"`,
  ].join("\n");
}
