#!/usr/bin/env bash
# Installs the npm dependencies from package-lock.json when node_modules is missing or older than the lock,
# so `npm run up` and `npm test` work on a fresh clone. Skips in milliseconds when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/../.."
stamp=node_modules/.tally-lock-stamp
if [[ -f "$stamp" && "$stamp" -nt package-lock.json ]]; then exit 0; fi
echo "[stack] installing npm dependencies (npm ci)" >&2
npm ci --no-audit --no-fund --loglevel=error
touch "$stamp"
