#!/usr/bin/env bash
# Installs Apache Cassandra (version: CASSANDRA_VERSION in versions.sh) for the local test stack, from Maven Central:
# every runtime jar of org.apache.cassandra:cassandra-all, fetched with plain `mvn` into a cache outside the repository
#   ${TALLY_CACHE:-$HOME/.cache/tally}/cassandra/$CASSANDRA_VERSION/lib/*.jar
# Then it starts and stops Cassandra once (cassandra-cmd.sh on free ports, ~15 s) to record a class-data-sharing
# archive under cds/, which makes every later start-up ~1.5 s faster; that step is optional and never fails the install.
# Idempotent: a marker file is written only after a complete, checked download, so an interrupted run is redone and a
# finished one returns at once (milliseconds). Prints progress lines prefixed "[stack] cassandra:" on stderr and, on
# success, nothing on stdout.
#
# usage: install-cassandra.sh
# env:   TALLY_CACHE (cache root), CASSANDRA_MVN_TIMEOUT (seconds, default 1200), CASSANDRA_CDS=0 (no archive)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=versions.sh
. "$here/versions.sh"
: "${CASSANDRA_VERSION:?versions.sh must set CASSANDRA_VERSION}"

dir=${TALLY_CACHE:-$HOME/.cache/tally}/cassandra/$CASSANDRA_VERSION
marker=$dir/.installed
log() { printf '[stack] cassandra: %s\n' "$*" >&2; }

# A port nothing listens on (connect refused); a random one, so parallel installs don't pick the same.
free_port() {
  local p
  for _ in $(seq 1 50); do
    p=$((30000 + RANDOM % 20000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then printf '%s' "$p"; return 0; fi
  done
  return 1
}

# Records the classes a start-up loads into an AppCDS archive (see cassandra-cmd.sh): start Cassandra once on free
# ports with -XX:ArchiveClassesAtExit, wait for CQL, SIGTERM it; the JVM writes the archive as it exits. Any failure
# leaves a .failed stamp (so later runs stay fast; delete it to retry) and Cassandra simply starts without the archive.
build_cds_archive() {
  local archive
  [[ "${CASSANDRA_CDS:-1}" != 0 ]] || return 0
  archive=$("$here/cassandra-cmd.sh" --cds-archive) || return 0 # JDK 11: no dynamic archives
  [[ -s "$archive" || -f "$archive.failed" ]] && return 0
  mkdir -p "$(dirname "$archive")"
  log "recording a class-data archive for faster start-ups (starts and stops Cassandra once, ~15-30 s)"
  local train p1 p2 p3 pid ready=0 t0=$SECONDS
  if ! { p1=$(free_port) && p2=$(free_port) && p3=$(free_port); } || [[ $p1 == "$p2" || $p1 == "$p3" || $p2 == "$p3" ]]; then
    log "no free ports; skipping the archive"
    return 0
  fi
  rm -rf "$dir"/cds-train.* # left over from an interrupted run
  train=$(mktemp -d "$dir/cds-train.XXXXXX")
  TALLY_CASSANDRA_CDS_DUMP="$archive.tmp" "$here/cassandra-cmd.sh" "$train" "$p1" "$p2" "$p3" \
    >"$train/console.log" 2>&1 &
  pid=$!
  trap 'kill -9 "$pid" 2>/dev/null || true; rm -rf "$train"' EXIT
  while (( SECONDS - t0 < 180 )) && kill -0 "$pid" 2>/dev/null; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p1") 2>/dev/null; then ready=1; break; fi
    sleep 0.5
  done
  kill -TERM "$pid" 2>/dev/null || true
  # SIGTERM: Cassandra drains (~3 s), then the JVM dumps the archive (~3 s) and exits with 143.
  local waited=0
  while kill -0 "$pid" 2>/dev/null && (( waited < 120 )); do sleep 0.5; waited=$((waited + 1)); done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  trap - EXIT
  if (( ready )) && [[ -s "$archive.tmp" ]]; then
    mv "$archive.tmp" "$archive"
    log "class-data archive ready in $((SECONDS - t0)) s: $archive"
  else
    rm -f "$archive.tmp"
    touch "$archive.failed"
    log "could not record the class-data archive (Cassandra will start without it); last lines of its log:"
    tail -n 20 "$train/logs/system.log" "$train/console.log" >&2 2>/dev/null || true
  fi
  rm -rf "$train"
}

# Fast path: the marker only exists after a verified, complete install.
if [[ -f "$marker" && -f "$dir/lib/cassandra-all-$CASSANDRA_VERSION.jar" ]]; then
  build_cds_archive # returns at once when the archive (or its .failed stamp) exists
  exit 0
fi

command -v mvn >/dev/null || { log "mvn not found (Maven is needed once to fetch Cassandra's jars)"; exit 1; }
command -v java >/dev/null || { log "java not found (Cassandra $CASSANDRA_VERSION needs JDK 11 or 17)"; exit 1; }

# Start from scratch: whatever is here is a half-finished earlier attempt (and an archive of other jars is useless).
rm -rf "${dir:?}/lib" "${dir:?}/build" "${dir:?}/cds" "$marker"
mkdir -p "$dir/build"
build=$dir/build

# A throw-away pom whose only dependency is cassandra-all; Maven resolves the whole runtime classpath from it.
cat >"$build/pom.xml" <<POM
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.tally.stack</groupId>
  <artifactId>cassandra-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.cassandra</groupId>
      <artifactId>cassandra-all</artifactId>
      <version>$CASSANDRA_VERSION</version>
    </dependency>
  </dependencies>
</project>
POM

log "fetching cassandra-all $CASSANDRA_VERSION and its runtime dependencies with Maven (first time only, ~70 MB)"
mvn_log=$build/mvn.log
start=$SECONDS
# -B -ntp: batch mode without per-file transfer progress; the full log goes to a file and is shown only on failure.
# The plugin version is pinned so the result doesn't depend on whatever version Maven would pick by itself.
mvn -B -ntp -Dstyle.color=never -f "$build/pom.xml" \
  org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies \
  -DincludeScope=runtime -DoutputDirectory="$build/lib" >"$mvn_log" 2>&1 &
mvn_pid=$!
# If this script is interrupted, don't leave Maven running on its own.
trap 'kill "$mvn_pid" 2>/dev/null || true' EXIT
timeout=${CASSANDRA_MVN_TIMEOUT:-1200}
while kill -0 "$mvn_pid" 2>/dev/null; do
  sleep 1
  elapsed=$((SECONDS - start))
  if (( elapsed > 0 && elapsed % 15 == 0 )) && kill -0 "$mvn_pid" 2>/dev/null; then
    log "still downloading (${elapsed} s)"
  fi
  if (( elapsed > timeout )); then
    log "Maven did not finish within ${timeout} s; giving up"
    kill "$mvn_pid" 2>/dev/null || true
  fi
done
rc=0
wait "$mvn_pid" || rc=$?
trap - EXIT

# Maven's exit status is what counts, not ERROR lines: reportedly some Cassandra parent POMs make Maven log ERRORs
# about system-scoped profiler artifacts while the build succeeds. (5.0.8 logs none, only WARNINGs that three
# org.perfkit.sjk.parsers POMs are invalid; Cassandra's own POM excludes those artifacts, so nothing is missing.)
if (( rc != 0 )) || ! grep -q 'BUILD SUCCESS' "$mvn_log"; then
  log "Maven failed (exit $rc); last lines of $mvn_log:"
  tail -n 40 "$mvn_log" >&2
  exit 1
fi
if grep -q '^\[ERROR\]' "$mvn_log"; then
  log "Maven logged ERROR lines but succeeded (see $mvn_log):"
  grep '^\[ERROR\]' "$mvn_log" | head -n 5 >&2
fi

# Check that the jars Cassandra can't start without are really there before declaring success.
for jar in "cassandra-all-$CASSANDRA_VERSION" jamm- logback-classic- netty-all- snakeyaml- jna-; do
  if ! compgen -G "$build/lib/$jar*.jar" >/dev/null; then
    log "expected jar $jar*.jar missing after Maven run; see $mvn_log"
    exit 1
  fi
done

mv "$build/lib" "$dir/lib"
cp "$build/pom.xml" "$dir/pom.xml"
rm -rf "$build"
printf 'cassandra-all %s installed %s\n' "$CASSANDRA_VERSION" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$marker"
log "installed $(find "$dir/lib" -name '*.jar' | wc -l) jars in $((SECONDS - start)) s -> $dir/lib"
build_cds_archive
