import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { registerBuildInfo } from '../../lib/build-info';

/**
 * The runtime's Prometheus metrics, in one place. Names in base units with a tally_ prefix; labels low-cardinality
 * (never the counter name).
 */
export function createRuntimeMetrics(registry = new Registry()) {
  collectDefaultMetrics({ register: registry, prefix: 'tally_runtime_' });
  return {
    registry,
    buildInfo: registerBuildInfo(registry, 'tally_build_info', 'runtime'),
    requests: new Counter({
      name: 'tally_requests_total',
      help: 'Counter API requests by operation, namespace, HTTP status and API error code (OK for a success).',
      labelNames: ['op', 'namespace', 'status', 'code'] as const,
      registers: [registry],
    }),
    requestDuration: new Histogram({
      name: 'tally_request_duration_seconds',
      help: 'Counter API latency by operation.',
      labelNames: ['op'] as const,
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    batchRequests: new Counter({
      name: 'tally_batch_requests_total',
      help: 'AddCounts and GetCounts requests by HTTP status and API error code (their items are in tally_requests_total).',
      labelNames: ['op', 'status', 'code'] as const,
      registers: [registry],
    }),
    batchItems: new Histogram({
      name: 'tally_batch_items',
      help: 'Items per AddCounts or GetCounts request.',
      labelNames: ['op'] as const,
      buckets: [1, 5, 10, 25, 50, 100, 250, 500],
      registers: [registry],
    }),
    authReviews: new Counter({
      name: 'tally_auth_reviews_total',
      help: 'TokenReviews (review="token") and SubjectAccessReviews (review="access") asked of the Kubernetes API, by result: authenticated, unauthenticated, allowed, denied, error. Cached answers are not asked again.',
      labelNames: ['review', 'result'] as const,
      registers: [registry],
    }),
    cache: new Counter({
      name: 'tally_cache_requests_total',
      help: 'Rollup cache lookups by result: hit, miss or error.',
      labelNames: ['namespace', 'result'] as const,
      registers: [registry],
    }),
    nearCache: new Counter({
      name: 'tally_near_cache_requests_total',
      help: "Eventual reads by whether this process's near cache held the checkpoint: hit or miss (a miss asks the rollup cache).",
      labelNames: ['namespace', 'result'] as const,
      registers: [registry],
    }),
    rollups: new Counter({
      name: 'tally_rollups_total',
      help: 'Rollups by result: rolled (new checkpoint), current (nothing new), unknown-counter, held (clock offset too large), error.',
      labelNames: ['namespace', 'result'] as const,
      registers: [registry],
    }),
    rollupEvents: new Counter({
      name: 'tally_rollup_events_total',
      help: 'Events aggregated by rollups.',
      labelNames: ['namespace'] as const,
      registers: [registry],
    }),
    rollupLag: new Histogram({
      name: 'tally_rollup_lag_seconds',
      help: 'How far behind the immutable horizon a counter checkpoint was when it was rolled up.',
      labelNames: ['namespace'] as const,
      buckets: [0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 900, 3600],
      registers: [registry],
    }),
    queueDepth: new Gauge({
      name: 'tally_rollup_queue_depth',
      help: 'Counters waiting for a rollup, per namespace.',
      labelNames: ['namespace'] as const,
      registers: [registry],
    }),
    triggersDropped: new Counter({
      name: 'tally_rollup_triggers_dropped_total',
      help: 'Rollup triggers dropped because the queues were full.',
      labelNames: ['namespace'] as const,
      registers: [registry],
    }),
    namespaces: new Gauge({
      name: 'tally_namespaces',
      help: 'Namespaces served, by readiness.',
      labelNames: ['ready'] as const,
      registers: [registry],
    }),
    clockOffset: new Gauge({
      name: 'tally_clock_offset_seconds',
      help: "Cassandra's clock minus this process's, as last measured (durable writes and checkpoints wait while it exceeds a namespace's bound).",
      registers: [registry],
    }),
    clockOffsetUncertainty: new Gauge({
      name: 'tally_clock_offset_uncertainty_seconds',
      help: 'How far the measured clock offset may be off (half the best round trip).',
      registers: [registry],
    }),
    namespaceErrors: new Gauge({
      name: 'tally_namespace_config_errors',
      help: 'Namespace documents rejected at the last load.',
      registers: [registry],
    }),
  };
}

export type RuntimeMetrics = ReturnType<typeof createRuntimeMetrics>;
