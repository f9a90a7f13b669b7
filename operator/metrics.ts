import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { registerBuildInfo } from '../lib/build-info';
import type { ProcessedInfo, WorkQueueMetrics } from '../lib/kube/workqueue';
import type { RollupHealth } from './reconcile/context';

/** The controller label of the reconcile metrics and the name label of its work queue's, as controller-runtime names them. */
export const CONTROLLER = 'counternamespace';

/** client-go's workqueue duration buckets: 10 ns to 10 s, a factor of 10 apart. */
const WORKQUEUE_BUCKETS = [1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 0.01, 0.1, 1, 10];

/**
 * The operator's metrics. The controller's are named as controller-runtime and client-go name them
 * (controller_runtime_reconcile_*{controller}, workqueue_*{name}, leader_election_master_status{name}), so the
 * dashboards and alerts written for Go operators apply; Tally's own carry a tally_ prefix.
 */
export function createOperatorMetrics(registry = new Registry()) {
  collectDefaultMetrics({ register: registry, prefix: 'tally_operator_process_' });
  return {
    registry,
    buildInfo: registerBuildInfo(registry, 'tally_build_info', 'operator'),
    reconcileTotal: new Counter({
      name: 'controller_runtime_reconcile_total',
      help: 'Total number of reconciliations per controller, by result: success, error, requeue, requeue_after.',
      labelNames: ['controller', 'result'] as const,
      registers: [registry],
    }),
    reconcileErrors: new Counter({
      name: 'controller_runtime_reconcile_errors_total',
      help: 'Total number of reconciliation errors per controller (each retried with backoff).',
      labelNames: ['controller'] as const,
      registers: [registry],
    }),
    reconcileTime: new Histogram({
      name: 'controller_runtime_reconcile_time_seconds',
      help: 'Length of time per reconciliation per controller.',
      labelNames: ['controller'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [registry],
    }),
    queueDepth: new Gauge({
      name: 'workqueue_depth',
      help: 'Current depth of workqueue.',
      labelNames: ['name'] as const,
      registers: [registry],
    }),
    queueAdds: new Counter({
      name: 'workqueue_adds_total',
      help: 'Total number of adds handled by workqueue.',
      labelNames: ['name'] as const,
      registers: [registry],
    }),
    queueRetries: new Counter({
      name: 'workqueue_retries_total',
      help: 'Total number of retries handled by workqueue.',
      labelNames: ['name'] as const,
      registers: [registry],
    }),
    queueDuration: new Histogram({
      name: 'workqueue_queue_duration_seconds',
      help: 'How long in seconds an item stays in workqueue before being requested.',
      labelNames: ['name'] as const,
      buckets: WORKQUEUE_BUCKETS,
      registers: [registry],
    }),
    workDuration: new Histogram({
      name: 'workqueue_work_duration_seconds',
      help: 'How long in seconds processing an item from workqueue takes.',
      labelNames: ['name'] as const,
      buckets: WORKQUEUE_BUCKETS,
      registers: [registry],
    }),
    // Rollup health, one series per CounterNamespace (label counternamespace="<namespace>/<name>"): the sweeper Jobs
    // are short-lived and never scraped, so the operator reports what their CronJob's status says.
    rollupHealthy: new Gauge({
      name: 'tally_operator_rollup_healthy',
      help: "Whether the CounterNamespace's rollup CronJob succeeded recently (its RollupHealthy condition): 1 or 0.",
      labelNames: ['counternamespace'] as const,
      registers: [registry],
    }),
    rollupLastSuccess: new Gauge({
      name: 'tally_operator_rollup_last_success_timestamp_seconds',
      help: "When the CounterNamespace's rollup CronJob last succeeded (Unix time; absent before the first success).",
      labelNames: ['counternamespace'] as const,
      registers: [registry],
    }),
    leader: new Gauge({
      name: 'leader_election_master_status',
      help: 'Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master.',
      labelNames: ['name'] as const,
      registers: [registry],
    }),
  };
}

export type OperatorMetrics = ReturnType<typeof createOperatorMetrics>;

/** controller-runtime's result label: a requeue with a delay is requeue_after. */
function resultLabel(result: ProcessedInfo['result']): string {
  if (result.kind === 'done') return 'success';
  if (result.kind === 'requeue') return result.afterMs > 0 ? 'requeue_after' : 'requeue';
  return 'error';
}

/**
 * The controller's reconcile and work-queue metrics, for one WorkQueue. Every series starts at 0, as
 * controller-runtime's do, so an error rate is 0 rather than missing before the first error.
 */
export function controllerMetrics(
  metrics: OperatorMetrics,
  controller = CONTROLLER,
): { onProcessed: (info: ProcessedInfo) => void; queue: WorkQueueMetrics } {
  for (const result of ['success', 'error', 'requeue', 'requeue_after'])
    metrics.reconcileTotal.inc({ controller, result }, 0);
  metrics.reconcileErrors.inc({ controller }, 0);
  const name = { name: controller };
  metrics.queueAdds.inc(name, 0);
  metrics.queueRetries.inc(name, 0);
  metrics.queueDepth.set(name, 0);
  return {
    onProcessed: ({ result, durationMs }) => {
      metrics.reconcileTime.observe({ controller }, durationMs / 1000);
      metrics.reconcileTotal.inc({ controller, result: resultLabel(result) });
      if (result.kind === 'error') metrics.reconcileErrors.inc({ controller });
    },
    queue: {
      added: () => metrics.queueAdds.inc(name),
      retried: () => metrics.queueRetries.inc(name),
      queued: (seconds) => metrics.queueDuration.observe(name, seconds),
      worked: (seconds) => metrics.workDuration.observe(name, seconds),
      depth: (keys) => metrics.queueDepth.set(name, keys),
    },
  };
}

/** One CounterNamespace's rollup health as gauges: 1/0 while judged True/False, no series while Unknown or gone. */
export function reportRollupHealth(metrics: OperatorMetrics, key: string, health: RollupHealth | undefined): void {
  const labels = { counternamespace: key };
  if (health?.status === 'True' || health?.status === 'False')
    metrics.rollupHealthy.set(labels, health.status === 'True' ? 1 : 0);
  else metrics.rollupHealthy.remove(labels);
  if (health?.lastSuccess) metrics.rollupLastSuccess.set(labels, health.lastSuccess.getTime() / 1000);
  else metrics.rollupLastSuccess.remove(labels);
}
