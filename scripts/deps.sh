#!/usr/bin/env bash
# Installs node_modules with `npm ci` when missing or stale, so `npm test` and `npm run demo` work on a fresh clone.
set -euo pipefail
cd "$(dirname "$0")/.."
# node_modules/.package-lock.json is npm's record of what it installed; older than package-lock.json means stale.
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund
fi
