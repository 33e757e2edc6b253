#!/usr/bin/env bash
# Make sure `uv` is on PATH (in ~/.local/bin when this script installs it).
set -euo pipefail
export PATH="$HOME/.local/bin:$PATH"
command -v uv >/dev/null 2>&1 && exit 0
# A pyenv or venv Python takes a plain pip install; Debian's own Python is "externally managed"
# (PEP 668) and may lack pip altogether, so fall back to a private venv that holds only uv.
if python3 -m pip install --quiet uv 2>/dev/null && command -v uv >/dev/null 2>&1; then
  exit 0
fi
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv python3-pip >/dev/null
fi
python3 -m venv "$HOME/.local/share/onex-uv"
"$HOME/.local/share/onex-uv/bin/pip" install --quiet uv
mkdir -p "$HOME/.local/bin"
ln -sf "$HOME/.local/share/onex-uv/bin/uv" "$HOME/.local/bin/uv"
