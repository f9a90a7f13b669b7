import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

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
    leader: new Gauge({
      name: 'tally_operator_leader',
      help: '1 while this process holds the leader lease.',
      registers: [registry],
    }),
  };
}

export type OperatorMetrics = ReturnType<typeof createOperatorMetrics>;
