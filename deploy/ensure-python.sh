#!/usr/bin/env bash
# Make sure uv is present and the project's locked environment is installed in .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/ensure-uv.sh
export PATH="$HOME/.local/bin:$PATH"
uv sync --frozen --quiet
