#!/usr/bin/env bash
# `npm run pulumi -- <args…>`: the pinned pulumi CLI built from source, run offline and self-contained:
#   state in <repo>/.pulumi-state (file backend), CLI home in <repo>/.pulumi-cli/home, no update check, no plugin
#   downloads. Secrets are encrypted with PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE) from your
#   environment; when neither is set the development passphrase "pulumi-ipvs-dev" is used — fine for the lab, not for
#   anything real. If you already have a pulumi CLI, use it directly instead.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"

bash "$here/build.sh"

node_bin="$(dirname "$(command -v node)")"
export PATH="$root/.pulumi-cli/bin:$node_bin:$PATH"
export PULUMI_HOME="$root/.pulumi-cli/home"
export PULUMI_BACKEND_URL="file://$root/.pulumi-state"
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
if [[ -z "${PULUMI_CONFIG_PASSPHRASE:-}" && -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]]; then
  export PULUMI_CONFIG_PASSPHRASE="pulumi-ipvs-dev"
fi
mkdir -p "$root/.pulumi-state" "$PULUMI_HOME"

# npm runs scripts from the package root; run pulumi where the user typed the command so its Pulumi.yaml is used.
cd "${INIT_CWD:-$PWD}"
exec pulumi "$@"
