# Shared by scripts/up and scripts/test: make sure uv and the project's environment exist.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Python comes from the machine; uv must never try to download one.
export UV_PYTHON_DOWNLOADS=never
export PATH="$HOME/.local/bin:$PATH"

if ! command -v uv >/dev/null 2>&1; then
  echo "installing uv (first run)…" >&2
  python3 -m pip install --quiet --user uv 2>/dev/null || python3 -m pip install --quiet uv
  hash -r
fi
command -v uv >/dev/null 2>&1 || { echo "uv could not be installed" >&2; exit 1; }

# The local EVM node for the embedded mode and the tests: npm's @foundry-rs/anvil ships the
# binary in a per-platform package, so nothing is downloaded at run time.
ANVIL_VERSION=1.7.1
if ! ls .tools/node_modules/@foundry-rs/anvil-*/bin/anvil >/dev/null 2>&1 \
   || ! grep -q "\"version\": \"$ANVIL_VERSION\"" .tools/node_modules/@foundry-rs/anvil/package.json 2>/dev/null; then
  if command -v npm >/dev/null 2>&1; then
    echo "installing anvil $ANVIL_VERSION (npm @foundry-rs/anvil) under .tools/…" >&2
    npm install --silent --no-audit --no-fund --prefix .tools "@foundry-rs/anvil@$ANVIL_VERSION" >/dev/null
  else
    echo "npm is missing: install Node.js, or set MORNET_CHAIN_RPC_URL to an EVM node" >&2
  fi
fi
