import { parseArgs } from 'node:util';
import { FileNamespaceSource } from '../runtime/namespace/file-source';
import type { NamespaceSource } from '../runtime/namespace/source';
import type { AuthSettings } from '../runtime/http/auth';
import { createLogger } from '../lib/log';
import { startRuntime } from '../runtime/server';
import { DEFAULT_NEAR_CACHE_LIMITS } from '../runtime/cache/near-cache';
import { boolOption, intOption, stringOption, untilStopSignal } from './options';

export const serveHelp = `usage: tally serve [options]

Serves the counter HTTP API for the namespaces it is given.

options (each also settable by the environment variable in brackets):
  --namespaces PATH   a CounterNamespace/CounterNamespaceConfig YAML file, or a directory of them; reloaded on
                      change                                                        [TALLY_NAMESPACES]
  --configmaps        instead, serve the namespaces the operator publishes as ConfigMaps (label
                      tally.dev/config=namespace), watched through the Kubernetes API (KUBECONFIG, or the
                      pod's service account)                                        [TALLY_NAMESPACE_SOURCE=configmaps]
  --watch-namespaces LIST  with --configmaps: the Kubernetes namespaces to watch, comma-separated (default: all)
                                                                                    [TALLY_WATCH_NAMESPACES]
  --provision         create missing keyspaces and tables at start-up (without the operator)  [TALLY_PROVISION=true]
  --port N            HTTP port (default 8080; 0 picks a free one)                  [TALLY_PORT]
  --host ADDR         address to listen on (default 0.0.0.0)                        [TALLY_HOST]
  --auth MODE         who may count: kubernetes (bearer tokens checked with TokenReview, each call authorized with a
                      SubjectAccessReview on counternamespaces/counters) or none; default kubernetes with
                      --configmaps, none with --namespaces (development)            [TALLY_AUTH]
  --auth-cache-seconds N  how long an identity or a decision is reused (default 10; 0: ask every time)
                                                                                    [TALLY_AUTH_CACHE_SECONDS]
  --auth-audiences LIST   the audiences a token must be for, comma-separated (default: the API server's)
                                                                                    [TALLY_AUTH_AUDIENCES]
  --drain-seconds N   on SIGTERM, go unready at once but keep serving for N seconds, every response with
                      Connection: close, before closing (default 5; 0: close at once; a second signal cuts
                      it short)                                                     [TALLY_DRAIN_SECONDS]
  --near-cache-entries N  how many Eventual checkpoints the process keeps in memory, over all its namespaces, for
                      their spec.cache.nearCacheSeconds (default 100000; 0: no near cache)
                                                                                    [TALLY_NEAR_CACHE_ENTRIES]
  --near-cache-mb N   at most about this many MiB of them (default 32)              [TALLY_NEAR_CACHE_MB]
  -h, --help          this text

environment:
  CASSANDRA_CONTACT_POINTS  host:port[,host:port...] (required)
  CASSANDRA_LOCAL_DC        the local datacenter (required)
  CASSANDRA_USERNAME, CASSANDRA_PASSWORD   credentials, if Cassandra requires them
  CASSANDRA_CA_FILE         TLS: PEM CA file Cassandra's certificate must chain to (unset: plain TCP)
  CASSANDRA_REQUEST_TIMEOUT_MS             per-request timeout (default 1000)
  MEMCACHED_SERVERS         host:port[,host:port...] (BestEffort counters and the rollup cache)
  LOG_LEVEL                 trace|debug|info|warn|error (default info); logs are JSON lines on stdout`;

/** An hour: longer than any sensible terminationGracePeriodSeconds. */
const MAX_DRAIN_SECONDS = 3600;
/** Ten million checkpoints or 16 GiB: beyond that a typo, not a cache size. */
const MAX_NEAR_CACHE_ENTRIES = 10_000_000;
const MAX_NEAR_CACHE_MB = 16384;
const MIB = 1024 * 1024;

export async function runServe(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      namespaces: { type: 'string' },
      configmaps: { type: 'boolean' },
      'watch-namespaces': { type: 'string' },
      provision: { type: 'boolean' },
      port: { type: 'string' },
      host: { type: 'string' },
      'drain-seconds': { type: 'string' },
      auth: { type: 'string' },
      'auth-cache-seconds': { type: 'string' },
      'auth-audiences': { type: 'string' },
      'near-cache-entries': { type: 'string' },
      'near-cache-mb': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${serveHelp}\n`);
    return 0;
  }
  const drainSeconds = intOption(
    values['drain-seconds'],
    'TALLY_DRAIN_SECONDS',
    5,
    '--drain-seconds',
    MAX_DRAIN_SECONDS,
  );
  const log = createLogger('tally-runtime');
  const source = await namespaceSource(values, log);
  const auth = await authSettings(values, source instanceof FileNamespaceSource, log);
  const runtime = await startRuntime({
    source,
    ...(auth ? { auth } : {}),
    port: intOption(values.port, 'TALLY_PORT', 8080, '--port'),
    host: stringOption(values.host, 'TALLY_HOST', '0.0.0.0')!,
    provision: boolOption(values.provision, 'TALLY_PROVISION'),
    nearCache: {
      entries: intOption(
        values['near-cache-entries'],
        'TALLY_NEAR_CACHE_ENTRIES',
        DEFAULT_NEAR_CACHE_LIMITS.entries,
        '--near-cache-entries',
        MAX_NEAR_CACHE_ENTRIES,
      ),
      bytes:
        intOption(
          values['near-cache-mb'],
          'TALLY_NEAR_CACHE_MB',
          DEFAULT_NEAR_CACHE_LIMITS.bytes / MIB,
          '--near-cache-mb',
          MAX_NEAR_CACHE_MB,
        ) * MIB,
    },
    log,
  });
  // On SIGTERM (Kubernetes) or SIGINT (a terminal): drain, finish in-flight requests and due rollups, and exit.
  // Kubernetes takes the pod out of the Service's endpoints only some time after the SIGTERM, and kube-proxy keeps
  // existing connections on it: the drain delay covers that time. A second signal skips the rest of the delay.
  const hurry = new AbortController();
  await untilStopSignal(log, () => hurry.abort());
  await runtime.drain(drainSeconds * 1000, hurry.signal);
  return 0;
}

async function namespaceSource(
  values: { namespaces?: string; configmaps?: boolean; 'watch-namespaces'?: string },
  log: ReturnType<typeof createLogger>,
): Promise<NamespaceSource> {
  const fromConfigMaps = values.configmaps ?? process.env.TALLY_NAMESPACE_SOURCE === 'configmaps';
  const path = stringOption(values.namespaces, 'TALLY_NAMESPACES');
  if (fromConfigMaps && values.namespaces) throw usage('use either --namespaces PATH or --configmaps, not both');
  if (fromConfigMaps) {
    const { KubeConfig } = await import('@kubernetes/client-node');
    const { ConfigMapNamespaceSource } = await import('../runtime/namespace/configmap-source');
    const kc = new KubeConfig();
    kc.loadFromDefault();
    const watch = (stringOption(values['watch-namespaces'], 'TALLY_WATCH_NAMESPACES') ?? '')
      .split(',')
      .map((n) => n.trim())
      .filter(Boolean);
    return new ConfigMapNamespaceSource(kc, watch, log);
  }
  if (!path) throw usage('--namespaces PATH (or TALLY_NAMESPACES) or --configmaps is required');
  return new FileNamespaceSource(path);
}

/** A review the API server does not answer in this time fails the call with a 503. */
const AUTH_REVIEW_TIMEOUT_MS = 5000;

/** Kubernetes authentication settings, or undefined for --auth none. */
async function authSettings(
  values: { auth?: string; 'auth-cache-seconds'?: string; 'auth-audiences'?: string },
  fromFiles: boolean,
  log: ReturnType<typeof createLogger>,
): Promise<AuthSettings | undefined> {
  const mode = stringOption(values.auth, 'TALLY_AUTH', fromFiles ? 'none' : 'kubernetes');
  if (mode === 'none') {
    log.warn('authentication is off (--auth none): anyone who reaches the port may count, clear and read metrics');
    return undefined;
  }
  if (mode !== 'kubernetes') throw usage(`--auth must be kubernetes or none, not "${mode}"`);
  const { KubeConfig } = await import('@kubernetes/client-node');
  const { kubernetesReviewApi } = await import('../lib/kube/access-review');
  const kc = new KubeConfig();
  kc.loadFromDefault();
  return {
    api: kubernetesReviewApi(kc, AUTH_REVIEW_TIMEOUT_MS),
    cacheMs:
      intOption(values['auth-cache-seconds'], 'TALLY_AUTH_CACHE_SECONDS', 10, '--auth-cache-seconds', 3600) * 1000,
    audiences: (stringOption(values['auth-audiences'], 'TALLY_AUTH_AUDIENCES') ?? '')
      .split(',')
      .map((a) => a.trim())
      .filter(Boolean),
  };
}

function usage(message: string): Error {
  return Object.assign(new Error(message), { code: 'ERR_PARSE_ARGS_USAGE' });
}
