import { createServer, type Server } from 'node:http';
import {
  BatchV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  Watch,
  type KubeConfig,
  type KubernetesObject,
  type V1ConfigMap,
  type V1CronJob,
} from '@kubernetes/client-node';
import type { Client } from 'cassandra-driver';
import type { Logger } from 'pino';
import { createCassandraClient } from '../store/client';
import { CRD_GROUP, CRD_PLURAL, CRD_VERSION, LABELS, MANAGED_BY } from '../api/names';
import type { CounterNamespace } from '../api/types';
import type { OperatorConfig } from './config';
import { KubeClient } from './kube-api';
import { Informer, apiPath, objectKey } from '../lib/kube/informer';
import { LeaderElector } from '../lib/kube/leader-election';
import { specOrMetadataChanged } from '../lib/kube/predicates';
import { WorkQueue } from '../lib/kube/workqueue';
import { createOperatorMetrics, type OperatorMetrics } from './metrics';
import { Reconciler } from './reconcile/reconciler';
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
 * The operator process: leader election first; the leader lists and watches CounterNamespaces and the ConfigMaps and
 * CronJobs it owns, and reconciles through a de-duplicating work queue with per-key backoff. A standby only serves
 * /healthz and /metrics until it wins the Lease.
 */
export async function startOperator(opts: OperatorOptions): Promise<Operator> {
  const { config, kc, log } = opts;
  const metrics = createOperatorMetrics();
  const cassandra: Client = createCassandraClient(config.cassandra, { applicationName: 'tally-operator' });
  const kube = new KubeClient(kc);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const core = kc.makeApiClient(CoreV1Api);
  const batch = kc.makeApiClient(BatchV1Api);
  const watch = new Watch(kc);
  const scopes: (string | undefined)[] = config.watchNamespaces.length > 0 ? config.watchNamespaces : [undefined];
  const ownedSelector = `${LABELS.managedBy}=${MANAGED_BY}`;

  let reconciles = 0;
  let leading: { stop(): Promise<void> } | undefined;
  let fail: (err: Error) => void = () => undefined;
  const failed = new Promise<Error>((resolve) => (fail = resolve));

  /** Everything only the leader runs: informers, the queue and its workers, the periodic resync. */
  const lead = (): { stop(): Promise<void> } => {
    const counterNamespaces = scopes.map(
      (namespace) =>
        new Informer<CounterNamespace & KubernetesObject>({
          path: apiPath({
            group: CRD_GROUP,
            version: CRD_VERSION,
            plural: CRD_PLURAL,
            ...(namespace ? { namespace } : {}),
          }),
          list: async (r) =>
            (namespace
              ? await custom.listNamespacedCustomObject(
                  { group: CRD_GROUP, version: CRD_VERSION, plural: CRD_PLURAL, namespace },
                  r.options,
                )
              : await custom.listClusterCustomObject(
                  { group: CRD_GROUP, version: CRD_VERSION, plural: CRD_PLURAL },
                  r.options,
                )) as never,
          watch,
          name: `CounterNamespaces${namespace ? ` in ${namespace}` : ''}`,
          logger: log,
        }),
    );
    const ownedConfigMaps = scopes.map(
      (namespace) =>
        new Informer<V1ConfigMap>({
          path: apiPath({ version: 'v1', plural: 'configmaps', ...(namespace ? { namespace } : {}) }),
          list: (r) =>
            namespace
              ? core.listNamespacedConfigMap({ namespace, labelSelector: ownedSelector }, r.options)
              : core.listConfigMapForAllNamespaces({ labelSelector: ownedSelector }, r.options),
          watch,
          labelSelector: ownedSelector,
          name: `owned ConfigMaps${namespace ? ` in ${namespace}` : ''}`,
          logger: log,
        }),
    );
    const ownedCronJobs = scopes.map(
      (namespace) =>
        new Informer<V1CronJob>({
          path: apiPath({ group: 'batch', version: 'v1', plural: 'cronjobs', ...(namespace ? { namespace } : {}) }),
          list: (r) =>
            namespace
              ? batch.listNamespacedCronJob({ namespace, labelSelector: ownedSelector }, r.options)
              : batch.listCronJobForAllNamespaces({ labelSelector: ownedSelector }, r.options),
          watch,
          labelSelector: ownedSelector,
          name: `owned CronJobs${namespace ? ` in ${namespace}` : ''}`,
          logger: log,
        }),
    );

    const reconciler = new Reconciler({
      kube,
      schema: cassandraSchemaStore(cassandra),
      operator: config,
      log,
      // The informer's cache: what the watch has seen. A stale read only means one more reconcile.
      get: (namespace, name) => {
        for (const i of counterNamespaces) {
          const found = i.get(namespace, name);
          if (found) return Promise.resolve(structuredClone(found));
        }
        return Promise.resolve(undefined);
      },
    });
    const queue = new WorkQueue({
      concurrency: config.concurrency,
      logger: log,
      onProcessed: ({ result, durationMs }) => {
        reconciles++;
        metrics.reconcileTime.observe(durationMs / 1000);
        metrics.reconcileTotal.inc({ result: result.kind === 'done' ? 'success' : result.kind });
        if (result.kind === 'error') metrics.reconcileErrors.inc();
      },
    });
    const enqueue = (obj: KubernetesObject): void => queue.add(objectKey(obj));
    /** Owned objects lead back to their CounterNamespace by label, so drift is repaired at once. */
    const enqueueOwner = (obj: KubernetesObject): void => {
      const owner = obj.metadata?.labels?.[LABELS.counterNamespace];
      if (owner && obj.metadata?.namespace) queue.add(`${obj.metadata.namespace}/${owner}`);
    };
    for (const i of counterNamespaces) {
      i.on('add', enqueue);
      i.on('update', (obj, old) => specOrMetadataChanged(obj, old) && enqueue(obj));
      i.on('delete', enqueue);
    }
    for (const i of [...ownedConfigMaps, ...ownedCronJobs] as Informer<KubernetesObject>[]) {
      i.on('update', (obj, old) => specOrMetadataChanged(obj, old) && enqueueOwner(obj));
      i.on('delete', enqueueOwner);
    }
    const informers = [...counterNamespaces, ...ownedConfigMaps, ...ownedCronJobs] as Informer<KubernetesObject>[];
    informers.forEach((i) => i.start());
    // Workers start once the caches are filled, so the first reconciles see every object.
    let stopping = false;
    const started = Promise.all(informers.map((i) => i.waitForSync(config.cacheSyncTimeoutMs ?? 60_000))).then(
      () => queue.start((key) => reconciler.reconcile(key)),
      (err: Error) => {
        if (stopping) return; // Leadership ended before the caches filled: nothing is wrong.
        log.error({ err: err.message }, 'informers did not sync: cannot reconcile');
        fail(new Error(`informers did not sync: ${err.message}`));
      },
    );
    const resync = setInterval(() => counterNamespaces.forEach((i) => i.list().forEach(enqueue)), config.resyncMs);
    const depth = setInterval(() => metrics.queueDepth.set(queue.depth), 1000);
    return {
      async stop() {
        stopping = true;
        clearInterval(resync);
        clearInterval(depth);
        await started.catch(() => undefined);
        await queue.shutDown();
        await Promise.all(informers.map((i) => i.stop()));
      },
    };
  };

  const lease = opts.lease ?? config.lease;
  const elector = new LeaderElector({
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
      metrics.leader.set(1);
      leading = lead();
    },
    // Awaited by the elector before it releases the Lease: no reconcile outlives our leadership.
    onStoppedLeading: async () => {
      log.warn({ identity: config.identity }, 'leadership ended: stopping reconciles');
      metrics.leader.set(0);
      const was = leading;
      leading = undefined;
      await was?.stop();
    },
  });

  const server: Server = createServer((req, res) => {
    if (req.url === '/metrics') {
      metrics.registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': metrics.registry.contentType });
          res.end(text);
        },
        () => {
          res.writeHead(500);
          res.end();
        },
      );
      return;
    }
    if (req.url === '/healthz' || req.url === '/readyz') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ status: 'ok', leader: elector.isLeader }));
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { code: 'NOT_FOUND', message: `no route for ${req.method} ${req.url}` } }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, '0.0.0.0', resolve);
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  log.info(
    {
      port,
      identity: config.identity,
      watch: config.watchNamespaces.length ? config.watchNamespaces : 'all namespaces',
    },
    'tally operator started',
  );
  elector.start();

  return {
    metrics,
    port,
    get isLeader() {
      return elector.isLeader;
    },
    get reconciles() {
      return reconciles;
    },
    failed,
    async stop() {
      await elector.stop({ release: true });
      await leading?.stop();
      leading = undefined;
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await cassandra.shutdown();
    },
  };
}
