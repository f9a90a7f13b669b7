import { intFromEnv } from '../lib/env';
import * as os from 'node:os';
import { cassandraSettingsFromEnv, type CassandraSettings } from '../store/client';
import { ROLE_NAME_PATTERN } from '../store/roles';

/** The operator's own configuration: flags override environment variables (see `tally operator --help`). */
export interface OperatorConfig {
  cassandra: CassandraSettings;
  /**
   * The runtime's Cassandra role: granted SELECT and MODIFY on each CounterNamespace's keyspace as it is provisioned,
   * revoked as the CounterNamespace goes. Unset: no grants (Cassandra without authorization, or a runtime that logs
   * in as the operator).
   */
  runtimeRole?: string;
  memcachedServers?: string;
  /** Image and pull policy of the rollup CronJob (the runtime image, which has `tally rollup`). */
  runtimeImage: string;
  imagePullPolicy: 'Always' | 'IfNotPresent' | 'Never';
  /** Secrets (by name, in each CounterNamespace's namespace) the rollup Jobs pull the runtime image with. */
  imagePullSecrets?: string[];
  /** Namespaces to watch; empty = all. */
  watchNamespaces: string[];
  /** Where the leader-election Lease lives. */
  leaseNamespace: string;
  leaseName: string;
  identity: string;
  /** HTTP port for /metrics, /healthz, /readyz. */
  port: number;
  /** Reconciles running at once (different CounterNamespaces). */
  concurrency: number;
  /** Every CounterNamespace is reconciled again this often even without a change. */
  resyncMs: number;
  /** How long a new leader waits for its informers' first list before giving up (exiting). Default 60 s. */
  cacheSyncTimeoutMs?: number;
  /** Lease timings (defaults 15 s, 10 s, 2 s, as controller-runtime). */
  lease?: { durationMs: number; renewDeadlineMs: number; retryPeriodMs: number };
}

const PULL_POLICIES = ['Always', 'IfNotPresent', 'Never'] as const;

/** A comma-separated list; empty entries are ignored. */
const list = (raw: string | undefined): string[] =>
  (raw ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

function runtimeRole(name: string): string {
  if (!new RegExp(ROLE_NAME_PATTERN).test(name)) {
    throw new Error(
      `TALLY_CASSANDRA_RUNTIME_ROLE must be a lower-case Cassandra role name (${ROLE_NAME_PATTERN}), got "${name}"`,
    );
  }
  return name;
}

/** Rollup Jobs get a Cassandra role of their own when the operator itself logs in, i.e. Cassandra checks passwords. */
export function rollupCredentialsEnabled(op: OperatorConfig): boolean {
  return Boolean(op.cassandra.username);
}

/**
 * The operator keeps a Secret beside each rollup CronJob when the Job needs something from it: its own credentials,
 * or the CA that Cassandra's TLS certificate chains to (the operator's own CASSANDRA_CA_FILE).
 */
export function rollupSecretEnabled(op: OperatorConfig): boolean {
  return rollupCredentialsEnabled(op) || Boolean(op.cassandra.tls);
}

export function operatorConfigFromEnv(env: NodeJS.ProcessEnv = process.env): OperatorConfig {
  const pull = env.TALLY_IMAGE_PULL_POLICY ?? 'IfNotPresent';
  if (!(PULL_POLICIES as readonly string[]).includes(pull)) {
    throw new Error(`TALLY_IMAGE_PULL_POLICY must be one of ${PULL_POLICIES.join(', ')}, got "${pull}"`);
  }
  // Counts and seconds: a day is more than any of them needs.
  const int = (name: string, fallback: number, min: number, max = 86_400): number =>
    intFromEnv(env, name, fallback, { min, max });
  return {
    cassandra: cassandraSettingsFromEnv(env),
    ...(env.TALLY_CASSANDRA_RUNTIME_ROLE ? { runtimeRole: runtimeRole(env.TALLY_CASSANDRA_RUNTIME_ROLE) } : {}),
    ...(env.MEMCACHED_SERVERS ? { memcachedServers: env.MEMCACHED_SERVERS } : {}),
    runtimeImage: env.TALLY_RUNTIME_IMAGE ?? 'tally-runtime:latest',
    imagePullPolicy: pull as OperatorConfig['imagePullPolicy'],
    imagePullSecrets: list(env.TALLY_IMAGE_PULL_SECRETS),
    watchNamespaces: list(env.TALLY_WATCH_NAMESPACES),
    leaseNamespace: env.TALLY_LEASE_NAMESPACE ?? env.POD_NAMESPACE ?? 'default',
    leaseName: env.TALLY_LEASE_NAME ?? 'tally-operator',
    identity: env.POD_NAME ?? `${os.hostname()}-${process.pid}`,
    port: int('TALLY_OPERATOR_PORT', 8081, 0, 65535),
    concurrency: int('TALLY_OPERATOR_CONCURRENCY', 4, 1),
    resyncMs: int('TALLY_RESYNC_SECONDS', 300, 1) * 1000,
    cacheSyncTimeoutMs: int('TALLY_CACHE_SYNC_TIMEOUT_SECONDS', 60, 1) * 1000,
    lease: {
      durationMs: int('TALLY_LEASE_DURATION_SECONDS', 15, 2) * 1000,
      renewDeadlineMs: int('TALLY_LEASE_RENEW_DEADLINE_SECONDS', 10, 1) * 1000,
      retryPeriodMs: int('TALLY_LEASE_RETRY_SECONDS', 2, 1) * 1000,
    },
  };
}
