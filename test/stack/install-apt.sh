#!/usr/bin/env bash
# Installs a Debian package when its command is missing: install-apt.sh <command> <package>...
# Skips at once when the command is already on PATH.
set -euo pipefail
cmd=$1; shift
if command -v "$cmd" >/dev/null 2>&1; then exit 0; fi
# One apt-get at a time: the stack installs in parallel, and a second apt-get fails at once on dpkg's lock.
exec 9>"${TMPDIR:-/tmp}/tally-install-apt.lock"
flock 9
if command -v "$cmd" >/dev/null 2>&1; then exit 0; fi
echo "[stack] $cmd: installing Debian package(s) $* with apt-get" >&2
sudo_=""
if [[ $(id -u) -ne 0 ]]; then sudo_="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo_ apt-get update -qq >&2
$sudo_ apt-get install -y -qq --no-install-recommends "$@" >&2
command -v "$cmd" >/dev/null || { echo "[stack] $cmd: still missing after installing $*" >&2; exit 1; }
