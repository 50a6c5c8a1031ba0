#!/usr/bin/env bash
# What `npm test` runs: install dependencies when needed, build, then every vitest project (unit, lab, integration, e2e).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/host-tools.sh
bash scripts/deps.sh

npm run build
# Type-check everything that is not part of the build (tests, examples, scripts) and run the helper's Go unit tests;
# vet for macOS too, where contributors run those tests: Linux-only code must stay behind its build tags.
npx tsc -p tsconfig.test.json
(cd provider/helper && go vet ./... && GOOS=darwin go vet ./... && go test ./...)
# The pulumi CLI for e2e tests, built offline from the Go module proxy: ~18 min cold, seconds when nothing changed.
# Done here, not in a test hook, because a cold build outlasts any sensible hook timeout.
bash test/e2e/pulumi-cli/build.sh
npx vitest run
