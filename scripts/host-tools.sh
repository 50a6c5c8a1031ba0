#!/usr/bin/env bash
# Makes sure the host has the system tools the lab director and the builds need, before anything else runs:
#   qemu-system-x86_64 (qemu-system-x86) boots the director VM; cpio + depmod/modprobe (kmod) build its image from .debs;
#   ssh + ssh-keygen (openssh-client) reach it; ca-certificates lets Go fetch modules over TLS; systemd-analyze (systemd)
#   verifies the boot unit the helper installs (the lab director has no systemd).
# Nothing missing: silent. Missing and root on Debian/Ubuntu: installs them with apt-get, saying what. Otherwise: stops
# with the exact command to run, before anything was done. Node >= 20 and Go >= 1.26 are checked, not installed.
set -euo pipefail

missing=()
need() { # need PACKAGE TEST...: the package when none of the tests passes
  local pkg=$1; shift
  local t
  for t in "$@"; do eval "$t" >/dev/null 2>&1 && return 0; done
  missing+=("$pkg")
}
has() { command -v "$1" || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }
need qemu-system-x86 "has qemu-system-x86_64"
need cpio "has cpio"
need kmod "has depmod && has modprobe"
need openssh-client "has ssh && has ssh-keygen"
need ca-certificates "[ -s /etc/ssl/certs/ca-certificates.crt ]"
need systemd "has systemd-analyze"

problems=()
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
[ "$node_major" -ge 20 ] || problems+=("Node.js >= 20 is required (found: $(node --version 2>/dev/null || echo none))")
go_version=$(go env GOVERSION 2>/dev/null || echo none)
if [[ ! "$go_version" =~ ^go1\.([0-9]+) ]] || [ "${BASH_REMATCH[1]}" -lt 26 ]; then
  problems+=("Go >= 1.26 is required (found: $go_version)")
fi

if [ ${#missing[@]} -gt 0 ]; then
  line="apt-get install -y --no-install-recommends ${missing[*]}"
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "host-tools: installing ${missing[*]} (needed by the lab director and the builds)" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $line -qq >/dev/null
  elif command -v apt-get >/dev/null; then
    problems+=("missing system packages; run: sudo apt-get update && sudo $line")
  else
    problems+=("missing system packages (Debian names): ${missing[*]}; install their equivalents")
  fi
fi

if [ ${#problems[@]} -gt 0 ]; then
  printf 'host-tools: %s\n' "${problems[@]}" >&2
  exit 1
fi
