import { Client, policies, types } from 'cassandra-driver';
import * as fs from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { intFromEnv } from '../lib/env';

export interface CassandraSettings {
  /** host or host:port, comma-separated in CASSANDRA_CONTACT_POINTS. */
  contactPoints: string[];
  localDataCenter: string;
  username?: string;
  password?: string;
  /** Per-request timeout; kept well below the rollup settle margin so a write never lands after its window closed. */
  requestTimeoutMs: number;
  /**
   * TLS: the CA certificates (PEM) Cassandra's certificate must chain to, read from CASSANDRA_CA_FILE at start-up.
   * Set, every connection is TLS, verified against them and against the contact point's address or name; unset, the
   * connections are plain TCP.
   */
  tls?: { caFile: string; ca: string };
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The CA bundle at `file`, checked now so a wrong path or a key file fails the start, not the first connection. */
export function readCaBundle(file: string, what = 'CASSANDRA_CA_FILE'): string {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`${what}: cannot read the CA certificates at ${file}`, { cause: err });
  }
  const certs = text.match(PEM_CERTIFICATE) ?? [];
  if (certs.length === 0) throw new Error(`${what}: ${file} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  for (const pem of certs) {
    try {
      new X509Certificate(pem);
    } catch (err) {
      throw new Error(`${what}: ${file} holds a certificate that does not parse`, { cause: err });
    }
  }
  return certs.join('\n') + '\n';
}

export function cassandraSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): CassandraSettings {
  const points = (env.CASSANDRA_CONTACT_POINTS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (points.length === 0) throw new Error('CASSANDRA_CONTACT_POINTS is not set (comma-separated host:port list)');
  const localDataCenter = env.CASSANDRA_LOCAL_DC;
  if (!localDataCenter) throw new Error('CASSANDRA_LOCAL_DC is not set (the datacenter this process is in)');
  const timeout = intFromEnv(env, 'CASSANDRA_REQUEST_TIMEOUT_MS', 1000, { min: 50, max: 600_000 });
  return {
    contactPoints: points,
    localDataCenter,
    ...(env.CASSANDRA_USERNAME ? { username: env.CASSANDRA_USERNAME, password: env.CASSANDRA_PASSWORD ?? '' } : {}),
    requestTimeoutMs: timeout,
    ...(env.CASSANDRA_CA_FILE
      ? { tls: { caFile: env.CASSANDRA_CA_FILE, ca: readCaBundle(env.CASSANDRA_CA_FILE) } }
      : {}),
  };
}

/**
 * A driver client tuned for Tally: LOCAL_QUORUM, BigInt for bigint columns (counts must stay exact), and no schema
 * metadata sync (with many namespaces it costs start-up time and memory, and prepared statements don't need it).
 */
export function createCassandraClient(settings: CassandraSettings, opts: { applicationName?: string } = {}): Client {
  return new Client({
    contactPoints: settings.contactPoints,
    localDataCenter: settings.localDataCenter,
    ...(settings.username ? { credentials: { username: settings.username, password: settings.password ?? '' } } : {}),
    applicationName: opts.applicationName ?? 'tally',
    isMetadataSyncEnabled: false,
    encoding: { useBigIntAsLong: true },
    queryOptions: { consistency: types.consistencies.localQuorum, prepare: true },
    socketOptions: { readTimeout: settings.requestTimeoutMs, connectTimeout: 3000 },
    protocolOptions: { maxSchemaAgreementWaitSeconds: 20 },
    pooling: { heartBeatInterval: 10000 },
    // The driver's default backs off to 10 minutes; a counter service should notice a recovered node within seconds.
    policies: { reconnection: new policies.reconnection.ExponentialReconnectionPolicy(500, 10_000, false) },
    // The driver's own default is rejectUnauthorized: false (TLS without verification): always verify.
    ...(settings.tls ? { sslOptions: { ca: [settings.tls.ca], rejectUnauthorized: true } } : {}),
  });
}

/**
 * True for Cassandra refusing the statement itself (a syntax error, an invalid request, a configuration error, a
 * missing permission): sending it again will not help until something changes.
 */
export function isRefused(err: unknown): boolean {
  return [
    types.responseErrorCodes.syntaxError,
    types.responseErrorCodes.invalid,
    types.responseErrorCodes.configError,
    types.responseErrorCodes.unauthorized,
  ].includes((err as { code?: number })?.code ?? -1);
}

/** True for driver errors that mean "Cassandra is unreachable or overloaded now" (answer 503, retry later). */
export function isUnavailable(err: unknown): boolean {
  const name = (err as { name?: string })?.name ?? '';
  return (
    ['NoHostAvailableError', 'OperationTimedOutError', 'BusyConnectionError', 'DriverError'].includes(name) ||
    [
      types.responseErrorCodes.unavailableException,
      types.responseErrorCodes.writeTimeout,
      types.responseErrorCodes.readTimeout,
      types.responseErrorCodes.overloaded,
      // Replicas that failed the read or write, or a node still joining: transient, like a timeout.
      types.responseErrorCodes.readFailure,
      types.responseErrorCodes.writeFailure,
      types.responseErrorCodes.isBootstrapping,
    ].includes((err as { code?: number })?.code ?? -1)
  );
}

/**
 * True when Cassandra says a table or keyspace the statement names does not exist ("table events does not exist" in
 * 5.0, "unconfigured table" before): dropped under a running process, or not created yet. The namespace cannot be
 * served until its schema is back, which is the operator's to do.
 */
export function isMissingSchema(err: unknown): boolean {
  const e = err as { code?: number; message?: string } | undefined;
  return (
    e?.code === types.responseErrorCodes.invalid &&
    /unconfigured table|(table|keyspace) \S+ does not exist/i.test(e.message ?? '')
  );
}
