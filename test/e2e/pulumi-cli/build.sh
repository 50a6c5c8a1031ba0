#!/usr/bin/env bash
# Builds the pinned pulumi CLI and its Node.js language host from Go sources into .pulumi-cli/bin (get.pulumi.com is
# not reachable here), and copies the dynamic-provider plugin script from the installed @pulumi/pulumi.
# Rebuilds only when an input changes: the Go module files, the language host source, this script, the Go version or
# the installed @pulumi/pulumi. Messages go to stderr so `npm run pulumi -- … --json` output stays clean.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
cli="$root/.pulumi-cli"
bin="$cli/bin"
plugin_script="$root/node_modules/@pulumi/pulumi/pulumi-resource-pulumi-nodejs"

# The CLI version is the pkg/v3 requirement in go.mod; it is stamped into the binary because the Automation API
# refuses a CLI that reports no version.
required() { sed -n "s#^[[:space:]]*github.com/pulumi/pulumi/$1 \(v[0-9][^ ]*\).*#\1#p" "$here/go.mod"; }
version="$(required pkg/v3)"
if [[ -z "$version" ]]; then
  echo "build.sh: cannot read the github.com/pulumi/pulumi/pkg/v3 version from $here/go.mod" >&2
  exit 1
fi
if [[ "$(required sdk/v3)" != "$version" ]]; then
  echo "build.sh: go.mod requires pkg/v3 $version but sdk/v3 $(required sdk/v3); the CLI needs both at one version" >&2
  exit 1
fi
if [[ ! -f "$plugin_script" ]]; then
  echo "build.sh: $plugin_script is missing; run npm install first" >&2
  exit 1
fi

mkdir -p "$cli"
# Tests may start several builds at once; one builds, the others wait and then find the stamp current.
exec 9>"$cli/build.lock"
flock 9

stamp="$(
  cd "$here"
  {
    go version
    sha256sum build.sh go.mod go.sum pulumi-language-nodejs/*.go
    sha256sum "$plugin_script"
  } | sha256sum | cut -d' ' -f1
)"
if [[ -f "$cli/stamp" && "$(cat "$cli/stamp")" == "$stamp" && -x "$bin/pulumi" && -x "$bin/pulumi-language-nodejs" ]]; then
  exit 0
fi

echo "build.sh: building pulumi $version and pulumi-language-nodejs into $bin …" >&2
start=$SECONDS
staging="$(mktemp -d "$cli/staging.XXXXXX")"
trap 'rm -rf "$staging"' EXIT
(
  cd "$here"
  # Same tags as upstream's release build; -mod=readonly so go.sum is the only source of module hashes.
  go build -mod=readonly -trimpath -tags osusergo,grpcnotrace \
    -ldflags "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$version" \
    -o "$staging/" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi ./pulumi-language-nodejs
)
cp "$plugin_script" "$staging/pulumi-resource-pulumi-nodejs"
chmod +x "$staging/pulumi-resource-pulumi-nodejs"

mkdir -p "$bin"
for f in pulumi pulumi-language-nodejs pulumi-resource-pulumi-nodejs; do
  mv -f "$staging/$f" "$bin/$f"
done
echo "$stamp" >"$cli/stamp"
echo "build.sh: built pulumi $version in $((SECONDS - start))s" >&2
