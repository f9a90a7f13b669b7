import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { RollupHealth } from './reconcile/rollup-health';

/** The operator's metrics, named after controller-runtime's, prefixed tally_operator_. */
export function createOperatorMetrics(registry = new Registry()) {
  collectDefaultMetrics({ register: registry, prefix: 'tally_operator_process_' });
  return {
    registry,
    reconcileTotal: new Counter({
      name: 'tally_operator_reconcile_total',
      help: 'Reconciles by result: success (done), requeue, error.',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    reconcileErrors: new Counter({
      name: 'tally_operator_reconcile_errors_total',
      help: 'Reconciles that ended in an error (retried with backoff).',
      registers: [registry],
    }),
    reconcileTime: new Histogram({
      name: 'tally_operator_reconcile_time_seconds',
      help: 'How long one reconcile took.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [registry],
    }),
    queueDepth: new Gauge({
      name: 'tally_operator_workqueue_depth',
      help: 'CounterNamespaces waiting to be reconciled.',
      registers: [registry],
    }),
    // Rollup health, one series per CounterNamespace (label counternamespace="<namespace>/<name>"): the sweeper Jobs
    // are short-lived and never scraped, so the operator reports what their CronJob's status says.
    rollupHealthy: new Gauge({
      name: 'tally_operator_rollup_healthy',
      help: 'Whether the CounterNamespace\'s rollup CronJob succeeded recently (its RollupHealthy condition): 1 or 0.',
      labelNames: ['counternamespace'] as const,
      registers: [registry],
    }),
    rollupLastSuccess: new Gauge({
      name: 'tally_operator_rollup_last_success_timestamp_seconds',
      help: 'When the CounterNamespace\'s rollup CronJob last succeeded (Unix time; absent before the first success).',
      labelNames: ['counternamespace'] as const,
      registers: [registry],
    }),
    leader: new Gauge({
      name: 'tally_operator_leader',
      help: '1 while this process holds the leader lease.',
      registers: [registry],
    }),
  };
}

export type OperatorMetrics = ReturnType<typeof createOperatorMetrics>;

/** One CounterNamespace's rollup health as gauges: 1/0 while judged True/False, no series while Unknown or gone. */
export function reportRollupHealth(metrics: OperatorMetrics, key: string, health: RollupHealth | undefined): void {
  const labels = { counternamespace: key };
  if (health?.status === 'True' || health?.status === 'False')
    metrics.rollupHealthy.set(labels, health.status === 'True' ? 1 : 0);
  else metrics.rollupHealthy.remove(labels);
  if (health?.lastSuccess) metrics.rollupLastSuccess.set(labels, health.lastSuccess.getTime() / 1000);
  else metrics.rollupLastSuccess.remove(labels);
}
