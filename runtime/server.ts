import type { Server } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Client } from 'cassandra-driver';
import { Cache, cacheSettingsFromEnv } from './cache/memcached';
import { NearCache, type NearCacheLimits } from './cache/near-cache';
import { NamespaceRegistry } from './counter/registry';
import { createApp, type Readiness } from './http/app';
import { counterServer } from './http/counter-server';
import { kubernetesGuard, OPEN_ACCESS, type AuthSettings } from './http/auth';
import { createLimitedServer, httpLimitsFromEnv } from './http/limits';
import { ConnectionDrain } from './http/drain';
import type { NamespaceSource } from './namespace/source';
import { createLogger, type Logger } from '../lib/log';
import { messageOf } from '../lib/errors';
import { createRuntimeMetrics, type RuntimeMetrics } from './observability/metrics';
import { RecentErrors } from './observability/recent-errors';
import { cassandraSettingsFromEnv, createCassandraClient } from '../store/client';
import { measureClockOffset } from '../store/clock';
import { ClockGuard } from './clock/clock-guard';
import { clockOffsetBoundMs } from './rollup/rollup';

export interface RuntimeOptions {
  source: NamespaceSource;
  port: number;
  host?: string;
  provision?: boolean;
  env?: NodeJS.ProcessEnv;
  log?: Logger;
  now?: () => number;
  /** Authenticate and authorize callers with the cluster (http/auth.ts); without it everyone may do everything. */
  auth?: AuthSettings;
  /** Bounds of the process's near cache of Eventual checkpoints (default DEFAULT_NEAR_CACHE_LIMITS). */
  nearCache?: NearCacheLimits;
}

export interface Runtime {
  server: Server;
  port: number;
  registry: NamespaceRegistry;
  metrics: RuntimeMetrics;
  cassandra: Client;
  cache: Cache | undefined;
  /**
   * The graceful shutdown `tally serve` runs on SIGTERM. /readyz answers 503 at once, so the pod leaves the Service's
   * endpoints, but requests are still served for delayMs, every response with `Connection: close` (clients leave
   * their keep-alive connections after a complete response); then close(). Aborting `hurry` (a second stop signal)
   * cuts the delay short.
   */
  drain(delayMs: number, hurry?: AbortSignal): Promise<void>;
  /**
   * Shuts down without a delay: unready, stops accepting connections, lets in-flight requests finish (with
   * `Connection: close`), closes idle connections, flushes the rollups that are due, closes the stores. Each phase
   * is logged with how long it took. Calling it again returns the same promise.
   */
  close(): Promise<void>;
}

/** Readiness is asked often (probes, load balancers); Cassandra is pinged at most this often. */
const PING_EVERY_MS = 2000;

/** Wires the stores, the namespace registry and the HTTP API together and starts listening. */
export async function startRuntime(opts: RuntimeOptions): Promise<Runtime> {
  const env = opts.env ?? process.env;
  const log = opts.log ?? createLogger('tally-runtime');
  const metrics = createRuntimeMetrics();
  const recentErrors = new RecentErrors();
  const cassandraSettings = cassandraSettingsFromEnv(env);
  const httpLimits = httpLimitsFromEnv(env);
  const cassandra = createCassandraClient(cassandraSettings, { applicationName: 'tally-runtime' });
  const cacheSettings = cacheSettingsFromEnv(env);
  const cache = cacheSettings ? new Cache(cacheSettings) : undefined;
  if (!cache) log.warn('MEMCACHED_SERVERS is not set: BestEffort namespaces answer 503 and rollups are not cached');

  try {
    await cassandra.connect();
  } catch (err) {
    // Not fatal: the driver reconnects, /readyz reports it (still ready) and requests answer 503 until then.
    log.error({ err: messageOf(err) }, 'cannot reach Cassandra yet');
  }

  const now = opts.now ?? Date.now;
  const clock = new ClockGuard({
    measure: () => measureClockOffset(cassandra, now),
    log,
    gauges: { offset: metrics.clockOffset, uncertainty: metrics.clockOffsetUncertainty },
    now,
  });
  await clock.start();

  const registry = new NamespaceRegistry({
    cassandra,
    clock,
    cache,
    nearCache: new NearCache(opts.nearCache),
    metrics,
    log,
    recentErrors,
    provision: opts.provision ?? false,
    requestTimeoutMs: cassandraSettings.requestTimeoutMs,
    ...(opts.now ? { now: opts.now } : {}),
  });

  // Reported, not required (the process still serves reads and BestEffort): the tightest bound of the namespaces.
  const clockCheck = (): { ok: boolean; detail: string } => {
    const bounds = registry
      .list()
      .filter((s) => s.config.counterType !== 'BestEffort')
      .map((s) => ({ name: s.config.name, ms: clockOffsetBoundMs(s.config, cassandraSettings.requestTimeoutMs) }))
      .sort((a, b) => a.ms - b.ms);
    const tightest = bounds[0];
    return tightest
      ? clock.check(tightest.ms, `the ${tightest.ms} ms bound of namespace ${tightest.name}`)
      : clock.check(Infinity, 'any bound (no durable namespace served)');
  };
  const drain = new ConnectionDrain();
  let lastPing = { at: 0, ok: false, detail: 'not checked yet' };
  const readiness = async (): Promise<Readiness> => {
    if (Date.now() - lastPing.at > PING_EVERY_MS) {
      try {
        await cassandra.execute('SELECT release_version FROM system.local', [], { prepare: true });
        lastPing = { at: Date.now(), ok: true, detail: 'reachable' };
      } catch (err) {
        lastPing = { at: Date.now(), ok: false, detail: messageOf(err) };
      }
    }
    const checks: Readiness['checks'] = {
      cassandra: { ok: lastPing.ok, detail: lastPing.detail },
      clock: clockCheck(),
      namespaces: {
        ok: registry.loaded,
        detail: registry.loaded
          ? `${registry.list().filter((s) => s.ready).length} of ${registry.list().length} ready`
          : 'not loaded yet',
      },
      // Reported, not required: Eventual and Accurate counters work without the cache.
      memcached: {
        ok: cache?.available ?? false,
        detail: cache ? (cache.available ? 'no recent failure' : 'cooling down after a failure') : 'not configured',
      },
    };
    if (drain.draining) {
      checks.draining = { ok: false, detail: 'draining: shutting down, still serving until the drain delay is over' };
    }
    // Ready means "this process can answer": with Cassandra down it still answers every call (BestEffort counts, the
    // rest a 503 with Retry-After), where an unready pod would leave clients with connection errors.
    return { ready: checks.namespaces!.ok && !drain.draining, checks };
  };

  const guard = opts.auth
    ? kubernetesGuard(opts.auth, (review, result) => metrics.authReviews.inc({ review, result }))
    : OPEN_ACCESS;
  const app = createApp({ registry, metrics, log, readiness, recentErrors, guard });
  const handler = drain.wrap(counterServer({ registry, metrics, log, now, recentErrors, guard }, app));
  await opts.source.start((snapshot) => void registry.apply(snapshot));

  const server = await new Promise<Server>((resolve, reject) => {
    const s = createLimitedServer(handler, httpLimits);
    s.once('error', reject);
    s.listen(opts.port, opts.host ?? '0.0.0.0', () => resolve(s));
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : opts.port;
  log.info(
    { port, source: opts.source.description, auth: guard.enabled ? 'kubernetes' : 'none' },
    'tally runtime listening',
  );

  const depthTimer = setInterval(() => {
    for (const s of registry.list()) {
      const queues = (s.ops as { queues?: { depth: number } }).queues;
      if (queues) metrics.queueDepth.set({ namespace: s.config.name }, queues.depth);
    }
  }, 1000);
  depthTimer.unref();

  /** Runs one step of the shutdown and logs it with how long it took. */
  const phase = async (name: string, msg: string, step: () => Promise<void>): Promise<void> => {
    const started = Date.now();
    await step();
    log.info({ phase: name, ms: Date.now() - started }, msg);
  };
  let closing: Promise<void> | undefined;
  const closeNow = async (): Promise<void> => {
    const started = Date.now();
    drain.start();
    clearInterval(depthTimer);
    clock.stop();
    await phase('http', 'stopped accepting connections; in-flight requests finished', async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await closed;
    });
    await phase('namespaces', 'namespace source stopped; due rollups flushed', async () => {
      await opts.source.stop();
      await registry.close();
    });
    await phase('stores', 'Memcached and Cassandra connections closed', async () => {
      cache?.close();
      await cassandra.shutdown();
    });
    log.info({ ms: Date.now() - started }, 'tally runtime stopped');
  };
  const close = (): Promise<void> => (closing ??= closeNow());
  let draining: Promise<void> | undefined;
  const drainThenClose = async (delayMs: number, hurry?: AbortSignal): Promise<void> => {
    drain.start();
    log.info({ drainMs: delayMs }, 'draining: not ready, serving on with Connection: close until the delay is over');
    const started = Date.now();
    const hurried = await sleep(delayMs, undefined, hurry ? { signal: hurry } : {}).then(
      () => false,
      () => true,
    );
    log.info({ phase: 'drain', ms: Date.now() - started, hurried }, 'drain delay over');
    await close();
  };

  return {
    server,
    port,
    registry,
    metrics,
    cassandra,
    cache,
    drain: (delayMs, hurry) => (draining ??= closing ?? drainThenClose(delayMs, hurry)),
    close,
  };
}
