import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { messageOf } from '../lib/errors';
import { objectKey } from '../lib/kube/informer';
import { WorkQueue } from '../lib/kube/workqueue';
import type { OperatorConfig } from './config';
import type { KubeApi } from './kube-api';
import { controllerMetrics, reportRollupHealth, type OperatorMetrics } from './metrics';
import { Reconciler } from './reconcile/reconciler';
import type { SchemaStore } from './schema-store';
import { allInformers, createWatches, enqueueOnChange } from './watches';

export interface ControllerDeps {
  config: OperatorConfig;
  kc: KubeConfig;
  kube: KubeApi;
  schema: SchemaStore;
  metrics: OperatorMetrics;
  log: Logger;
  /** Counts every processed key (the operator's `reconciles`). */
  onReconciled: () => void;
  /** Called when the controller cannot go on: its caches did not fill within the cache sync timeout. */
  onFatal: (err: Error) => void;
}

export interface Controller {
  stop(): Promise<void>;
}

/**
 * Everything only the leader runs: the watches, the work queue and its workers, the periodic resync. Workers start
 * once the caches are filled, so the first reconciles see every object.
 */
export function startController(deps: ControllerDeps): Controller {
  const { config, metrics, log } = deps;
  const watches = createWatches(deps.kc, config.watchNamespaces, log);
  const reconciler = new Reconciler({
    kube: deps.kube,
    schema: deps.schema,
    operator: config,
    log,
    // The informer's cache: what the watch has seen. A stale read only means one more reconcile.
    get: (namespace, name) => {
      const found = watches.counterNamespaces.get(namespace, name);
      return Promise.resolve(found ? structuredClone(found) : undefined);
    },
    onRollupHealth: (key, health) => reportRollupHealth(metrics, key, health),
  });
  const observed = controllerMetrics(metrics);
  const queue = new WorkQueue({
    concurrency: config.concurrency,
    logger: log,
    metrics: observed.queue,
    onProcessed: (info) => {
      deps.onReconciled();
      observed.onProcessed(info);
    },
  });
  enqueueOnChange(watches, (key) => queue.add(key));

  const informers = allInformers(watches);
  informers.forEach((i) => i.start());
  let stopping = false;
  const started = Promise.all(informers.map((i) => i.waitForSync(config.cacheSyncTimeoutMs ?? 60_000))).then(
    () => queue.start((key) => reconciler.reconcile(key)),
    (err: unknown) => {
      if (stopping) return; // Leadership ended before the caches filled: nothing is wrong.
      log.error({ err: messageOf(err) }, 'informers did not sync: cannot reconcile');
      deps.onFatal(new Error(`informers did not sync: ${messageOf(err)}`, { cause: err }));
    },
  );
  const resync = setInterval(
    () => watches.counterNamespaces.list().forEach((cns) => queue.add(objectKey(cns))),
    config.resyncMs,
  );
  return {
    async stop() {
      stopping = true;
      clearInterval(resync);
      await started.catch(() => undefined);
      await queue.shutDown();
      await Promise.all(informers.map((i) => i.stop()));
    },
  };
}
