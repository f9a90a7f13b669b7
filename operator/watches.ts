import {
  BatchV1Api,
  CoreV1Api,
  CustomObjectsApi,
  Watch,
  type KubeConfig,
  type KubernetesObject,
  type V1ConfigMap,
  type V1CronJob,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { CRD_GROUP, CRD_PLURAL, CRD_VERSION, LABELS, MANAGED_BY } from '../api/names';
import type { CounterNamespace } from '../api/types';
import { customObjectLister } from '../lib/kube/custom-objects';
import { objectKey } from '../lib/kube/informer';
import { cronJobRunEnded, specOrMetadataChanged } from '../lib/kube/predicates';
import { ResourceInformer } from '../lib/kube/resource-informer';

/** What the leader watches: the CounterNamespaces, and the ConfigMaps and CronJobs it owns (to repair drift). */
export interface Watches {
  counterNamespaces: ResourceInformer<CounterNamespace & KubernetesObject>;
  owned: ResourceInformer<KubernetesObject>[];
  /** Also in `owned`: the CronJobs, whose runs ending wake their CounterNamespace (its RollupHealthy condition). */
  cronJobs: ResourceInformer<KubernetesObject>;
}

/** The label every owned object carries, so the owned-object watches see only the operator's own. */
const OWNED_SELECTOR = `${LABELS.managedBy}=${MANAGED_BY}`;

export function createWatches(kc: KubeConfig, namespaces: readonly string[], logger: Logger): Watches {
  const custom = kc.makeApiClient(CustomObjectsApi);
  const core = kc.makeApiClient(CoreV1Api);
  const batch = kc.makeApiClient(BatchV1Api);
  const watch = new Watch(kc);
  const crd = { group: CRD_GROUP, version: CRD_VERSION, plural: CRD_PLURAL };
  const counterNamespaces = new ResourceInformer<CounterNamespace & KubernetesObject>({
    resource: crd,
    namespaces,
    list: customObjectLister(custom, crd),
    watch,
    name: 'CounterNamespaces',
    logger,
  });
  const configMaps = new ResourceInformer<V1ConfigMap>({
    resource: { version: 'v1', plural: 'configmaps' },
    namespaces,
    list: (namespace, r) =>
      namespace
        ? core.listNamespacedConfigMap({ namespace, labelSelector: r.labelSelector }, r.options)
        : core.listConfigMapForAllNamespaces({ labelSelector: r.labelSelector }, r.options),
    watch,
    labelSelector: OWNED_SELECTOR,
    name: 'owned ConfigMaps',
    logger,
  });
  const cronJobs = new ResourceInformer<V1CronJob>({
    resource: { group: 'batch', version: 'v1', plural: 'cronjobs' },
    namespaces,
    list: (namespace, r) =>
      namespace
        ? batch.listNamespacedCronJob({ namespace, labelSelector: r.labelSelector }, r.options)
        : batch.listCronJobForAllNamespaces({ labelSelector: r.labelSelector }, r.options),
    watch,
    labelSelector: OWNED_SELECTOR,
    name: 'owned CronJobs',
    logger,
  });
  return {
    counterNamespaces,
    owned: [configMaps, cronJobs] as ResourceInformer<KubernetesObject>[],
    cronJobs,
  };
}

/**
 * Which events reconcile what: a CounterNamespace's own changes (a status-only update is ignored, so writing status
 * does not wake the reconcile), an owned object's change or deletion, which leads back to its CounterNamespace by
 * label so drift is repaired at once, and the end of a rollup run (for RollupHealthy).
 */
export function enqueueOnChange(watches: Watches, add: (key: string) => void): void {
  const own = (obj: KubernetesObject): void => add(objectKey(obj));
  const owner = (obj: KubernetesObject): void => {
    const name = obj.metadata?.labels?.[LABELS.counterNamespace];
    if (name && obj.metadata?.namespace) add(`${obj.metadata.namespace}/${name}`);
  };
  watches.counterNamespaces.on('add', own);
  watches.counterNamespaces.on('update', (obj, old) => specOrMetadataChanged(obj, old) && own(obj));
  watches.counterNamespaces.on('delete', own);
  for (const owned of watches.owned) {
    owned.on('update', (obj, old) => specOrMetadataChanged(obj, old) && owner(obj));
    owned.on('delete', owner);
  }
  watches.cronJobs.on(
    'update',
    (obj, old) => !specOrMetadataChanged(obj, old) && cronJobRunEnded(obj, old) && owner(obj),
  );
}

/** Every watch, for starting, waiting for and stopping them together. */
export function allInformers(
  watches: Watches,
): Pick<ResourceInformer<KubernetesObject>, 'start' | 'waitForSync' | 'stop'>[] {
  return [watches.counterNamespaces, ...watches.owned];
}
