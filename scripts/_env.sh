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
