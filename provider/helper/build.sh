#!/usr/bin/env bash
# Builds the static ipvs-helper binaries for linux/amd64 and linux/arm64 into bin/, with SHA256SUMS.
# Reproducible: no cgo, no VCS stamp, no build id, trimmed paths; the version comes from package.json.
# Rebuilds are cheap: Go's build cache is reused.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
version="$(node -p "require('$root/package.json').version" 2>/dev/null || sed -n 's/^  "version": "\(.*\)",$/\1/p' "$root/package.json")"
[ -n "$version" ] || { echo "build.sh: cannot read the version from $root/package.json" >&2; exit 1; }
cd "$here"
mkdir -p bin
for arch in amd64 arm64; do
  CGO_ENABLED=0 GOOS=linux GOARCH="$arch" go build -mod=readonly -trimpath -buildvcs=false \
    -ldflags "-s -w -buildid= -X main.version=$version" -o "bin/ipvs-helper-linux-$arch.tmp" .
  mv "bin/ipvs-helper-linux-$arch.tmp" "bin/ipvs-helper-linux-$arch"
done
(cd bin && sha256sum ipvs-helper-linux-amd64 ipvs-helper-linux-arm64 > SHA256SUMS)
echo "ipvs-helper $version built:" && cat bin/SHA256SUMS
