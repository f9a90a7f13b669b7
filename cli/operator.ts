import { parseArgs } from 'node:util';
import { createLogger } from '../lib/log';
import { untilStopSignal } from './options';

export const operatorHelp = `usage: tally operator [options]

Runs the Kubernetes operator: reconciles CounterNamespace resources (tally.dev/v1alpha1) into Cassandra keyspaces and
TWCS tables, a cache-config ConfigMap and a rollup CronJob each. Several replicas may run: one leads (a
coordination.k8s.io Lease), the others stand by.

options (each also settable by the environment variable in brackets):
  --watch-namespaces LIST  Kubernetes namespaces to watch, comma-separated (default: all)  [TALLY_WATCH_NAMESPACES]
  --port N                 HTTP port for /metrics, /healthz, /readyz (default 8081)       [TALLY_OPERATOR_PORT]
  -h, --help               this text

environment:
  KUBECONFIG                         the cluster (default: the pod's service account)
  CASSANDRA_CONTACT_POINTS, CASSANDRA_LOCAL_DC (required), CASSANDRA_USERNAME, CASSANDRA_PASSWORD
  CASSANDRA_CA_FILE                  TLS: PEM CA file for Cassandra's certificate (also handed to the rollup Jobs)
  TALLY_CASSANDRA_RUNTIME_ROLE       the runtime's Cassandra role, granted SELECT, MODIFY on each namespace's keyspace
  MEMCACHED_SERVERS                  written into each namespace's cache config and given to rollup Jobs
  TALLY_RUNTIME_IMAGE, TALLY_IMAGE_PULL_POLICY   the rollup CronJob's image (default tally-runtime:latest, IfNotPresent)
  TALLY_IMAGE_PULL_SECRETS           comma-separated Secret names the rollup Jobs pull the image with (default none)
  TALLY_LEASE_NAMESPACE (or POD_NAMESPACE), TALLY_LEASE_NAME (tally-operator), POD_NAME (identity)
  TALLY_OPERATOR_CONCURRENCY (4), TALLY_RESYNC_SECONDS (300), LOG_LEVEL
  TALLY_CACHE_SYNC_TIMEOUT_SECONDS (60)  a new leader whose informers cannot list within this exits (code 1)`;

export async function runOperator(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      'watch-namespaces': { type: 'string' },
      port: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${operatorHelp}\n`);
    return 0;
  }
  const env = {
    ...process.env,
    ...(values['watch-namespaces'] !== undefined ? { TALLY_WATCH_NAMESPACES: values['watch-namespaces'] } : {}),
    ...(values.port !== undefined ? { TALLY_OPERATOR_PORT: values.port } : {}),
  };
  // Loaded here, not at the top: `tally serve` and `tally rollup` never pay for the Kubernetes client.
  const { KubeConfig } = await import('@kubernetes/client-node');
  const { operatorConfigFromEnv } = await import('../operator/config');
  const { startOperator } = await import('../operator/operator');
  const config = operatorConfigFromEnv(env);
  const kc = new KubeConfig();
  kc.loadFromDefault();
  const log = createLogger('tally-operator');
  const operator = await startOperator({ config, kc, log });
  const failure = await Promise.race([untilStopSignal(log).then(() => undefined), operator.failed]);
  if (failure) {
    log.fatal(
      { err: failure.message },
      'the operator cannot reconcile (is the API server reachable, and does its RBAC allow list and watch?); releasing the Lease and exiting',
    );
  }
  // Releasing the Lease on the way out lets a standby take over at once.
  await operator.stop();
  return failure ? 1 : 0;
}
