#!/usr/bin/env bash
# Installs schemathesis (version: SCHEMATHESIS_VERSION in versions.sh), the API fuzzer of
# test/integration/runtime/fuzz.test.ts, from PyPI with pip into a Python venv in the cache outside the repository
#   ${TALLY_CACHE:-$HOME/.cache/tally}/schemathesis/$SCHEMATHESIS_VERSION-<hash of the constraints>/
# Its dependencies are pinned by schemathesis-constraints.txt beside this file (pip freeze of a working install), so a
# cold install gets the same versions everywhere; editing that file makes a new venv.
# Idempotent: returns at once (under a second) when the venv's `st --version` is the pinned one; a venv that is
# missing, half-built or broken is made again. Safe to run concurrently: one install at a time (flock), the others
# wait and then find it done. Prints progress lines prefixed "[stack] schemathesis:" on stderr and, on success, the
# path of the `st` binary on stdout.
#
# usage: install-schemathesis.sh
# env:   SCHEMATHESIS_BIN (use this `st` instead; nothing is installed), TALLY_CACHE (cache root),
#        PYTHON (default python3; 3.10 or later), SCHEMATHESIS_PIP_TIMEOUT (seconds, default 600)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=versions.sh
. "$here/versions.sh"
: "${SCHEMATHESIS_VERSION:?versions.sh must set SCHEMATHESIS_VERSION}"
log() { printf '[stack] schemathesis: %s\n' "$*" >&2; }

# `st --version` prints "st, version X.Y.Z".
version_of() { "$1" --version 2>/dev/null | sed -n 's/^st, version //p'; }

if [[ -n "${SCHEMATHESIS_BIN:-}" ]]; then
  found=$(version_of "$SCHEMATHESIS_BIN") || true
  if [[ -z "$found" ]]; then
    log "SCHEMATHESIS_BIN=$SCHEMATHESIS_BIN does not run (\`$SCHEMATHESIS_BIN --version\` failed)"
    exit 1
  fi
  [[ "$found" == "$SCHEMATHESIS_VERSION" ]] ||
    log "SCHEMATHESIS_BIN is version $found, not the pinned $SCHEMATHESIS_VERSION; using it anyway"
  printf '%s\n' "$SCHEMATHESIS_BIN"
  exit 0
fi

constraints=$here/schemathesis-constraints.txt
if ! grep -qx "schemathesis==$SCHEMATHESIS_VERSION" "$constraints"; then
  log "$constraints does not pin schemathesis==$SCHEMATHESIS_VERSION; regenerate it (see its header)"
  exit 1
fi
root=${TALLY_CACHE:-$HOME/.cache/tally}/schemathesis
dir=$root/$SCHEMATHESIS_VERSION-$(sha256sum "$constraints" | cut -c1-12)
st=$dir/bin/st

ready() { [[ -f "$dir/.installed" && "$(version_of "$st")" == "$SCHEMATHESIS_VERSION" ]]; }

if ready; then
  printf '%s\n' "$st"
  exit 0
fi

mkdir -p "$root"
exec 9>"$root/.lock"
if ! flock -n 9; then
  log "another install is running; waiting for it"
  flock 9
fi
# The install we waited for may have made it.
if ready; then
  printf '%s\n' "$st"
  exit 0
fi

python=${PYTHON:-python3}
command -v "$python" >/dev/null || { log "$python not found (Python 3.10+ is needed to run schemathesis)"; exit 1; }
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
  log "$python is $("$python" --version 2>&1); schemathesis $SCHEMATHESIS_VERSION needs Python 3.10 or later"
  exit 1
fi

start=$SECONDS
# Built in place (a venv cannot be moved: its scripts name its own path); the marker is written last, so a venv
# without it is an interrupted attempt and is made again.
rm -rf "$dir"
log "creating a Python venv with $("$python" --version 2>&1) in $dir"
if ! "$python" -m venv "$dir" >&2; then
  log "\`$python -m venv\` failed (on Debian's own Python: apt-get install python3-venv)"
  exit 1
fi
pip_log=$dir/pip.log
log "installing schemathesis $SCHEMATHESIS_VERSION and its pinned dependencies with pip (first time only, ~30 s)"
pip_rc=0
timeout "${SCHEMATHESIS_PIP_TIMEOUT:-600}" "$dir/bin/pip" install --disable-pip-version-check --no-input \
  --constraint "$constraints" "schemathesis==$SCHEMATHESIS_VERSION" >"$pip_log" 2>&1 || pip_rc=$?
if (( pip_rc != 0 )); then
  (( pip_rc == 124 )) && log "pip did not finish within ${SCHEMATHESIS_PIP_TIMEOUT:-600} s"
  log "pip failed (exit $pip_rc); last lines of $pip_log:"
  tail -n 30 "$pip_log" >&2
  exit 1
fi
found=$(version_of "$st")
if [[ "$found" != "$SCHEMATHESIS_VERSION" ]]; then
  log "$st --version says '${found:-nothing}', expected $SCHEMATHESIS_VERSION; see $pip_log"
  exit 1
fi
printf 'schemathesis %s installed %s\n' "$SCHEMATHESIS_VERSION" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$dir/.installed"
log "installed in $((SECONDS - start)) s: $st"
printf '%s\n' "$st"
