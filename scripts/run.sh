#!/usr/bin/env bash
# Runs the app: builds the web app if it is missing or older than its
# sources, then builds and starts the server (which fetches the default
# model on first use) on http://127.0.0.1:8000. Extra arguments go to
# `logitlens serve` (e.g. --port 9000, --model org/name).
set -euo pipefail
cd "$(dirname "$0")/.."

build_frontend() {
  if ! command -v npm >/dev/null; then
    echo "npm not found: serving the API only (install Node.js to get the web app)" >&2
    return
  fi
  ( cd frontend
    if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then npm ci --no-audit --no-fund; fi
    npm run build )
}

stamp=frontend/dist/index.html
if [ ! -f "$stamp" ] || [ -n "$(find frontend/src frontend/index.html frontend/package.json frontend/vite.config.ts -newer "$stamp" -print -quit 2>/dev/null)" ]; then
  build_frontend
fi

exec cargo run --release -- serve "$@"
