#!/usr/bin/env bash
# Runs one local, single-node Apache Cassandra (version: CASSANDRA_VERSION in versions.sh) for Tally's tests, in the
# FOREGROUND: after writing its config the script `exec`s java, so the pid a supervisor started is Cassandra's JVM pid
# and SIGTERM to it stops Cassandra cleanly (it drains and exits; allow ~10 s before escalating to SIGKILL).
#
# usage: cassandra-cmd.sh <state-dir> <native_port> <storage_port> <jmx_port> [<cql_address>]
#        cassandra-cmd.sh --cds-archive   (prints the class-data archive path for the JDK it would use; installer's)
#   state-dir     created if missing; holds conf/, data/ (all of Cassandra's data), logs/system.log, tmp/
#   native_port   CQL port on <cql_address> (the driver's contact point is <cql_address>:<native_port>, local DC "dc1")
#   storage_port  inter-node (gossip) port on 127.0.0.1; unused by clients but must be free
#   jmx_port      JMX on 127.0.0.1 (nodetool -p <jmx_port>)
#   cql_address   the address CQL listens on (default 127.0.0.1); the stack gives the node's bridge address, where
#                 pods reach it (only the host and the bridge can: node-network.ts)
# env:
#   CASSANDRA_HEAP        heap size for -Xms/-Xmx (default 1G)
#   CASSANDRA_JAVA_HOME   JDK to use (Cassandra 5.0 runs on JDK 11 or 17 only; default: JDK 17 found on the machine)
#   TALLY_CACHE           cache root used by install-cassandra.sh (default ~/.cache/tally)
#   CASSANDRA_CDS=0       don't use the class-data-sharing archive that install-cassandra.sh builds (~1.5 s slower)
#   CASSANDRA_JVM_EXTRA_OPTS  extra JVM flags, split on whitespace (debugging)
#   CASSANDRA_TLS_DIR     a directory made by cassandra-certs.sh: CQL then accepts TLS connections only, served with
#                         its keystore.p12 (clients verify against its ca.crt); unset, CQL is plain TCP
#
# The script itself prints nothing. Cassandra logs INFO and above to <state-dir>/logs/system.log and only WARN and
# above to the console. Readiness = the CQL port accepts a connection and answers a query (the port opens only at the
# very end of start-up, after "Startup complete" in system.log).
#
# LOCAL TEST STACK ONLY: JMX without authentication. Clients authenticate (PasswordAuthenticator) and are authorized
# (CassandraAuthorizer); the default superuser cassandra/cassandra is created at once, for the stack to replace
# (components/cassandra.ts makes its own superuser and roles, then drops it). Writes
# and schema changes are durable when acknowledged (batch commit log, no -Dcassandra.unsafesystem): the fault suite
# kills Cassandra with SIGKILL and expects every acknowledged write back after the commit log replay. Everything listens on 127.0.0.1 only, CQL on <cql_address>.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=versions.sh
. "$here/versions.sh"
: "${CASSANDRA_VERSION:?versions.sh must set CASSANDRA_VERSION}"

home=${TALLY_CACHE:-$HOME/.cache/tally}/cassandra/$CASSANDRA_VERSION
if [[ ! -f "$home/.installed" ]]; then
  echo "cassandra-cmd.sh: Cassandra $CASSANDRA_VERSION is not installed; run $here/install-cassandra.sh first" >&2
  exit 1
fi

# --- Java: Cassandra 5.0 refuses anything but 11 or 17, and the machine also has a newer JDK, so pick explicitly. ---
java_major() { # prints the major version of the JDK at $1, read from its release file (no JVM start)
  local v
  v=$(sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$1/release" 2>/dev/null || true)
  printf '%s' "${v:-0}"
}
jdk=""
for cand in "${CASSANDRA_JAVA_HOME:-}" "${JAVA_HOME:-}" /usr/lib/jvm/java-17-openjdk-amd64 /usr/lib/jvm/java-17-openjdk-arm64 \
  /usr/lib/jvm/java-11-openjdk-amd64 /usr/lib/jvm/java-11-openjdk-arm64; do
  [[ -n "$cand" && -x "$cand/bin/java" ]] || continue
  case $(java_major "$cand") in 11 | 17) jdk=$cand; break ;; esac
done
if [[ -z "$jdk" ]] && command -v java >/dev/null; then
  cand=$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")
  case $(java_major "$cand") in 11 | 17) jdk=$cand ;; esac
fi
if [[ -z "$jdk" ]]; then
  echo "cassandra-cmd.sh: no JDK 11 or 17 found (set CASSANDRA_JAVA_HOME); Cassandra $CASSANDRA_VERSION runs on no other" >&2
  exit 1
fi

# Class-data sharing (AppCDS): install-cassandra.sh records the classes loaded during a start-up in an archive,
# which cuts JVM start-up by ~1.5 s (of ~5). An archive only fits the exact JDK build that wrote it, hence the name.
# Dynamic archives need JDK 13+, so none on JDK 11.
jdk_build=$(sed -n 's/^JAVA_RUNTIME_VERSION="\(.*\)"/\1/p' "$jdk/release")
cds_archive=$home/cds/jdk-${jdk_build//[^A-Za-z0-9._-]/_}.jsa
if [[ "${1:-}" == --cds-archive ]]; then
  if [[ $(java_major "$jdk") == 11 ]]; then exit 1; fi
  printf '%s\n' "$cds_archive"
  exit 0
fi

if (( $# != 4 && $# != 5 )); then
  echo "usage: $(basename "$0") <state-dir> <native_port> <storage_port> <jmx_port> [<cql_address>]" >&2
  exit 2
fi
for p in "$2" "$3" "$4"; do
  if ! [[ "$p" =~ ^[0-9]+$ ]] || (( p < 1 || p > 65535 )); then
    echo "cassandra-cmd.sh: not a port: $p" >&2
    exit 2
  fi
done
native_port=$2 storage_port=$3 jmx_port=$4 cql_address=${5:-127.0.0.1}
if ! [[ "$cql_address" =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]]; then
  echo "cassandra-cmd.sh: not an IPv4 address: $cql_address" >&2
  exit 2
fi

# --- State directory layout ---
mkdir -p "$1"
state=$(cd "$1" && pwd)
conf=$state/conf
mkdir -p "$conf/triggers" "$state/data" "$state/logs" "$state/tmp"

# cassandra.yaml: only keys that 5.0's Config knows (unknown keys abort start-up). Directories are not set here:
# with -Dcassandra.storagedir they default to <state>/data/{data,commitlog,hints,saved_caches,cdc_raw}.
cat >"$conf/cassandra.yaml" <<YAML
# Written by test/stack/cassandra-cmd.sh on every start: LOCAL TEST STACK ONLY, do not use elsewhere.
cluster_name: tally-local
# One fixed token: a single node owns the whole ring anyway, and a fixed token avoids the random-token warning.
num_tokens: 1
initial_token: 0
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: GossipingPropertyFileSnitch
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "127.0.0.1:$storage_port"
listen_address: 127.0.0.1
rpc_address: $cql_address
storage_port: $storage_port
native_transport_port: $native_port
start_native_transport: true
# Roles with passwords and permissions, as in production: the operator, the runtime and each rollup Job log in as
# roles of their own (components/cassandra.ts creates the first two). 5.0 reads these as class names
# (ParameterizedClass: the short form or "class_name: ...").
authenticator: PasswordAuthenticator
authorizer: CassandraAuthorizer
role_manager: CassandraRoleManager
network_authorizer: AllowAllNetworkAuthorizer
# A write is acknowledged once its commit log entry is on disk (batch): a single node is every replica, and with the
# default (periodic) a SIGKILL loses the last ~100 ms of acknowledged writes, which the fault suite would count as
# lost adds. No snapshots on DROP/TRUNCATE, no hints for a single node.
commitlog_sync: batch
auto_snapshot: false
hinted_handoff_enabled: false
incremental_backups: false
memtable_allocation_type: heap_buffers
disk_access_mode: standard
# A fresh data directory, always written by this script: no need for 4.x-compatible sstables, and NONE lifts the
# 2038 cap on TTL expiry (with CASSANDRA_4, a TTL expiring after 2038-01-19 is rejected).
storage_compatibility_mode: NONE
# Tally needs neither.
materialized_views_enabled: false
user_defined_functions_enabled: false
YAML

if [[ -n "${CASSANDRA_TLS_DIR:-}" ]]; then
  tls=$(cd "$CASSANDRA_TLS_DIR" && pwd)
  [[ -f "$tls/keystore.p12" && -f "$tls/keystore.password" ]] || {
    echo "cassandra-cmd.sh: CASSANDRA_TLS_DIR=$tls has no keystore.p12 and keystore.password (cassandra-certs.sh)" >&2
    exit 1
  }
  # Clients must speak TLS (optional: false); they are not asked for certificates of their own (they log in).
  cat >>"$conf/cassandra.yaml" <<YAML
client_encryption_options:
  enabled: true
  optional: false
  keystore: $tls/keystore.p12
  keystore_password: "$(cat "$tls/keystore.password")"
  store_type: PKCS12
  require_client_auth: false
  protocol: TLS
  accepted_protocols: [TLSv1.2, TLSv1.3]
YAML
fi

# GossipingPropertyFileSnitch reads this (-Dcassandra-rackdc.properties below): it gives the node a named datacenter for
# NetworkTopologyStrategy and for the driver's localDataCenter.
cat >"$conf/cassandra-rackdc.properties" <<'PROPS'
dc=dc1
rack=rack1
PROPS

cat >"$conf/logback.xml" <<XML
<!-- Written by test/stack/cassandra-cmd.sh: INFO to logs/system.log, only WARN+ to the console. -->
<configuration scan="false">
  <appender name="FILE" class="ch.qos.logback.core.rolling.RollingFileAppender">
    <file>$state/logs/system.log</file>
    <rollingPolicy class="ch.qos.logback.core.rolling.SizeAndTimeBasedRollingPolicy">
      <fileNamePattern>$state/logs/system.log.%d{yyyy-MM-dd}.%i.zip</fileNamePattern>
      <maxFileSize>50MB</maxFileSize>
      <maxHistory>3</maxHistory>
      <totalSizeCap>200MB</totalSizeCap>
    </rollingPolicy>
    <encoder>
      <pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern>
    </encoder>
  </appender>
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <filter class="ch.qos.logback.classic.filter.ThresholdFilter">
      <level>WARN</level>
    </filter>
    <encoder>
      <pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern>
    </encoder>
  </appender>
  <root level="INFO">
    <appender-ref ref="FILE"/>
    <appender-ref ref="STDOUT"/>
  </root>
</configuration>
XML

lib=$home/lib
heap=${CASSANDRA_HEAP:-1G}

# Flags: from Cassandra's conf/jvm-server.options, jvm17-server.options and cassandra-env.sh, which the jar does
# not carry. The JPMS --add-exports/--add-opens are required on JDK 17 (a missing one kills the JVM at start-up);
# on JDK 11 they are accepted as well.
jvm=(
  -Xms"$heap" -Xmx"$heap" -Xss256k
  -XX:+UseG1GC -XX:+ParallelRefProcEnabled -XX:MaxTenuringThreshold=1 -XX:G1RSetUpdatingPauseTimePercent=5
  -XX:MaxGCPauseMillis=300 -XX:InitiatingHeapOccupancyPercent=70
  -XX:+UseThreadPriorities -XX:+UseTLAB -XX:+ResizeTLAB
  # No /tmp/hsperfdata mmap (also keeps the JVM out of `jps`, which nobody here needs).
  -XX:+PerfDisableSharedMem
  # A test node that ran out of heap should die visibly rather than limp on (Cassandra warns without one of these).
  -XX:+ExitOnOutOfMemoryError
  -ea -da:net.openhft...
  # No -javaagent:jamm.jar (Cassandra's own launcher passes one): 5.0 sizes objects with jamm's
  # INSTRUMENTATION_AND_SPECIFICATION strategy and falls back to UNSAFE without the agent (verified: starts, reads,
  # writes and flushes normally). Leaving it out keeps the CDS archive usable without diagnostic flags and warnings.
  -Djdk.attach.allowAttachSelf=true
  --add-exports java.base/jdk.internal.misc=ALL-UNNAMED
  --add-exports java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED
  --add-exports java.rmi/sun.rmi.registry=ALL-UNNAMED
  --add-exports java.rmi/sun.rmi.server=ALL-UNNAMED
  --add-exports java.sql/java.sql=ALL-UNNAMED
  --add-exports java.base/java.lang.ref=ALL-UNNAMED
  --add-exports jdk.unsupported/sun.misc=ALL-UNNAMED
  --add-exports jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED
  --add-exports jdk.attach/sun.tools.attach=ALL-UNNAMED
  --add-exports java.management/com.sun.jmx.remote.security=ALL-UNNAMED
  --add-opens java.base/java.lang.module=ALL-UNNAMED
  --add-opens java.base/jdk.internal.loader=ALL-UNNAMED
  --add-opens java.base/jdk.internal.ref=ALL-UNNAMED
  --add-opens java.base/jdk.internal.reflect=ALL-UNNAMED
  --add-opens java.base/jdk.internal.math=ALL-UNNAMED
  --add-opens java.base/jdk.internal.module=ALL-UNNAMED
  --add-opens java.base/jdk.internal.util.jar=ALL-UNNAMED
  --add-opens jdk.management/com.sun.management.internal=ALL-UNNAMED
  --add-opens java.base/sun.nio.ch=ALL-UNNAMED
  --add-opens java.base/java.io=ALL-UNNAMED
  --add-opens java.base/java.lang.reflect=ALL-UNNAMED
  --add-opens jdk.compiler/com.sun.tools.javac=ALL-UNNAMED
  --add-opens java.base/java.lang=ALL-UNNAMED
  --add-opens java.base/java.util=ALL-UNNAMED
  --add-opens java.base/java.nio=ALL-UNNAMED
  -Dio.netty.tryReflectionSetAccessible=true
  -Dio.netty.allocator.useCacheForAllThreads=true
  -Dio.netty.allocator.maxOrder=11
  -Djava.net.preferIPv4Stack=true
  # JNA and netty unpack native libraries into the temp dir; /tmp may be mounted noexec, the state dir is ours.
  -Djava.io.tmpdir="$state/tmp" -Djna.tmpdir="$state/tmp"
  # Local-only JMX (bound to 127.0.0.1, no auth) so nodetool works: nodetool -h 127.0.0.1 -p <jmx_port>.
  -Dcassandra.jmx.local.port="$jmx_port" -Dcom.sun.management.jmxremote.authenticate=false
  -Djava.rmi.server.hostname=127.0.0.1
  -Dcassandra.config="file://$conf/cassandra.yaml"
  -Dcassandra-rackdc.properties="file://$conf/cassandra-rackdc.properties"
  -Dlogback.configurationFile="file://$conf/logback.xml"
  -Dcassandra.logdir="$state/logs"
  -Dcassandra.triggers_dir="$conf/triggers"
  -Dcassandra.storagedir="$state/data"
  # Keep stdout/stderr open (without it Cassandra closes them, as a daemon would).
  -Dcassandra-foreground=yes
  # Single node: nothing to wait for (gossip settling, ring delay before joining).
  -Dcassandra.skip_wait_for_gossip_to_settle=0
  -Dcassandra.ring_delay_ms=1000
  # Skip the ~1-2 s start-up measurement of the memtable row overhead; 5.0.8 measures 180-181 on JDK 17 here.
  -Dcassandra.memtable.row_overhead_size=181
  # Single node: nobody to tell that we are going down (saves 2 s on SIGTERM).
  -Dcassandra.shutdown_announce_in_ms=100
  # The default superuser (on a data directory without roles) is created at once instead of 10 s after start-up.
  -Dcassandra.superuser_setup_delay_ms=0
  # bcrypt's cheapest cost for password hashes: tests create a role per CounterNamespace (the default, 10, is ~64x
  # the work per hash and per uncached login). LOCAL ONLY.
  -Dcassandra.auth_bcrypt_gensalt_log2_rounds=4
)

# -Xlog:cds=off: a dump lists hundreds of skipped classes on stdout, and an archive that doesn't fit (JDK update,
# changed jars) is just ignored with a warning; neither is worth a console line.
if [[ -n "${TALLY_CASSANDRA_CDS_DUMP:-}" ]]; then
  # Internal, used by install-cassandra.sh: write the archive when this JVM exits.
  jvm+=(-XX:ArchiveClassesAtExit="$TALLY_CASSANDRA_CDS_DUMP" -Xlog:cds=off -Xlog:cds+dynamic=off)
elif [[ "${CASSANDRA_CDS:-1}" != 0 && -s "$cds_archive" && $(java_major "$jdk") != 11 ]]; then
  jvm+=(-XX:SharedArchiveFile="$cds_archive" -Xlog:cds=off -Xlog:cds+dynamic=off)
fi

# Extra JVM flags for experiments/debugging, split on whitespace (e.g. CASSANDRA_JVM_EXTRA_OPTS="-Xlog:gc").
read -r -a extra <<<"${CASSANDRA_JVM_EXTRA_OPTS:-}"
cmd=("$jdk/bin/java" "${jvm[@]}" "${extra[@]}" -cp "$lib/*" org.apache.cassandra.service.CassandraDaemon)

cd "$state"
# Cassandra always calls mlockall(MCL_CURRENT) at start; as root (CAP_IPC_LOCK ignores RLIMIT_MEMLOCK) that succeeds
# and faults in the whole -Xms heap: seconds of start-up on a fresh VM and ~1.4 GB resident from the first second.
# Dropping the capability makes mlockall fail harmlessly (one WARN "Unable to lock JVM memory (ENOMEM)").
# setpriv execs in place, so the pid stays the JVM's.
if [[ $(id -u) == 0 ]] && command -v setpriv >/dev/null; then
  exec setpriv --inh-caps=-ipc_lock --bounding-set=-ipc_lock -- "${cmd[@]}"
fi
exec "${cmd[@]}"
