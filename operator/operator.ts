import { CoordinationV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { LeaderElector } from '../lib/kube/leader-election';
import { createCassandraClient } from '../store/client';
import type { OperatorConfig } from './config';
import { startController, type Controller } from './controller';
import { startHealthServer } from './health-server';
import { KubeClient } from './kube-api';
import { createOperatorMetrics, type OperatorMetrics } from './metrics';
import { cassandraSchemaStore } from './schema-store';

export interface Operator {
  metrics: OperatorMetrics;
  port: number;
  readonly isLeader: boolean;
  /** Keys reconciled so far (tests use it to see reconciling settle). */
  readonly reconciles: number;
  /**
   * Resolves (never rejects) with the reason when the operator cannot go on: its informers did not sync within the
   * cache sync timeout after it became leader (the API unreachable, or RBAC refusing list/watch). The caller stops
   * the operator (releasing the Lease, so a standby may try) and exits, so Kubernetes restarts it with backoff and
   * the failure is visible, as controller-runtime does.
   */
  readonly failed: Promise<Error>;
  stop(): Promise<void>;
}

export interface OperatorOptions {
  config: OperatorConfig;
  kc: KubeConfig;
  log: Logger;
  /** Lease timings; tests shorten them. */
  lease?: { durationMs: number; renewDeadlineMs: number; retryPeriodMs: number };
}

/**
 * The operator process: leader election first; the leader runs the controller (operator/controller.ts: watches,
 * work queue, reconcile). A standby only serves /healthz and /metrics until it wins the Lease.
 */
export async function startOperator(opts: OperatorOptions): Promise<Operator> {
  const { config, kc, log } = opts;
  const metrics = createOperatorMetrics();
  const lease = { name: config.leaseName };
  metrics.leader.set(lease, 0); // a standby reports 0: "no leader" is then a sum of 0, not an absent series
  const cassandra = createCassandraClient(config.cassandra, { applicationName: 'tally-operator' });
  let reconciles = 0;
  let fail: (err: Error) => void = () => undefined;
  const failed = new Promise<Error>((resolve) => (fail = resolve));

  let controller: Controller | undefined;
  const lead = (): Controller =>
    startController({
      config,
      kc,
      kube: new KubeClient(kc),
      schema: cassandraSchemaStore(cassandra),
      metrics,
      log,
      onReconciled: () => reconciles++,
      onFatal: fail,
    });
  const elector = leaderElector(opts, {
    started: () => {
      metrics.leader.set(lease, 1);
      controller = lead();
    },
    // Awaited by the elector before it releases the Lease: no reconcile outlives our leadership.
    stopped: async () => {
      metrics.leader.set(lease, 0);
      const was = controller;
      controller = undefined;
      await was?.stop();
    },
  });

  const server = await startHealthServer(config.port, metrics, () => elector.isLeader);
  log.info(
    {
      port: server.port,
      identity: config.identity,
      watch: config.watchNamespaces.length ? config.watchNamespaces : 'all namespaces',
    },
    'tally operator started',
  );
  elector.start();

  return {
    metrics,
    port: server.port,
    get isLeader() {
      return elector.isLeader;
    },
    get reconciles() {
      return reconciles;
    },
    failed,
    async stop() {
      await elector.stop({ release: true });
      await controller?.stop();
      controller = undefined;
      await server.close();
      await cassandra.shutdown();
    },
  };
}

/** Leader election on the operator's Lease, logging each change of leadership. */
function leaderElector(
  { config, kc, log, lease = config.lease }: OperatorOptions,
  on: { started: () => void; stopped: () => Promise<void> },
): LeaderElector {
  return new LeaderElector({
    api: kc.makeApiClient(CoordinationV1Api),
    namespace: config.leaseNamespace,
    name: config.leaseName,
    identity: config.identity,
    ...(lease
      ? {
          leaseDurationMs: lease.durationMs,
          renewDeadlineMs: lease.renewDeadlineMs,
          retryPeriodMs: lease.retryPeriodMs,
        }
      : {}),
    logger: log,
    onStartedLeading: () => {
      log.info({ identity: config.identity }, 'became leader: reconciling');
      on.started();
    },
    onStoppedLeading: async () => {
      log.warn({ identity: config.identity }, 'leadership ended: stopping reconciles');
      await on.stopped();
    },
  });
}
