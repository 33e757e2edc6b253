#!/usr/bin/env bash
# Make sure uv is present and the project's locked environment is installed in .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v uv >/dev/null 2>&1; then
  python3 -m pip install --quiet uv || pip install --quiet uv
fi
uv sync --frozen --quiet
