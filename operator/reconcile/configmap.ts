import type { V1ConfigMap } from '@kubernetes/client-node';
import * as yaml from 'js-yaml';
import type { NamespaceConfig } from '../../api/namespace-config';
import type { CounterNamespace } from '../../api/types';
import { CONFIG_KEY, CONFIG_LABEL_VALUE, LABELS, configMapName } from '../../api/names';
import { ownedLabels, ownerReference } from './owned';

/**
 * The namespace's cache configuration for the runtime: the resolved CounterNamespaceConfig document (the format
 * `tally serve` reads), with the Memcached servers from the operator's configuration. The runtime watches these
 * ConfigMaps by label; the rollup CronJob mounts it.
 */
export function desiredConfigMap(
  cns: CounterNamespace,
  config: NamespaceConfig,
  memcachedServers: string | undefined,
): V1ConfigMap {
  const document: NamespaceConfig = memcachedServers
    ? { ...config, cache: { ...config.cache, servers: memcachedServers } }
    : config;
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: configMapName(cns.metadata.name!),
      namespace: cns.metadata.namespace!,
      labels: { ...ownedLabels(cns), [LABELS.config]: CONFIG_LABEL_VALUE },
      ownerReferences: [ownerReference(cns)],
    },
    data: { [CONFIG_KEY]: yaml.dump(document, { sortKeys: false, lineWidth: 120 }) },
  };
}
