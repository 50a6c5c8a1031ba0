#!/usr/bin/env bash
# What `npm test` runs: install dependencies when needed, build, then every vitest project (unit, lab, integration, e2e).
set -euo pipefail
cd "$(dirname "$0")/.."

# node_modules/.package-lock.json is npm's record of what it installed; older than package-lock.json means stale.
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci
fi

npm run build
npx vitest run
