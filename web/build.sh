#!/usr/bin/env bash
# Builds the web client into web/dist (served by the gateway at /). Called by `make web` and `make up`.
# Installs exactly the locked dependencies (npm ci) only when they are missing or the lock file changed.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v npm >/dev/null 2>&1; then
  echo "web: npm not found (Node.js 20.19+ or 22.12+ is required to build the web client)" >&2
  exit 1
fi
stamp=node_modules/.package-lock.json
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
# Rebuild only when a source is newer than the last build.
if [ -f dist/index.html ] && [ -z "$(find src index.html vite.config.js package-lock.json -newer dist/index.html -print -quit)" ]; then
  echo "web: dist is up to date"
  exit 0
fi
npm run build --silent
echo "web: built $(pwd)/dist"
