import { createHash } from 'node:crypto';

/** The CounterNamespace resource's identity: its API group, version and names, everywhere they are needed. */
export const CRD_GROUP = 'tally.dev';
export const CRD_VERSION = 'v1alpha1';
export const CRD_API_VERSION = `${CRD_GROUP}/${CRD_VERSION}`;
export const CRD_KIND = 'CounterNamespace';
export const CRD_PLURAL = 'counternamespaces';
export const CRD_SINGULAR = 'counternamespace';
export const CRD_NAME = `${CRD_PLURAL}.${CRD_GROUP}`;
/**
 * The subresource the runtime authorizes counting on (SubjectAccessReview): `get` reads, `update` adds, `delete`
 * clears the counters of a CounterNamespace. The API server serves no such subresource; RBAC rules name it all the same.
 */
export const COUNTERS_SUBRESOURCE = 'counters';

export const FINALIZER = `${CRD_GROUP}/keyspace-cleanup`;
export const FIELD_MANAGER = 'tally-operator';

/** Labels on everything the operator owns; the runtime selects its ConfigMaps by the last one. */
export const LABELS = {
  managedBy: 'app.kubernetes.io/managed-by',
  partOf: 'app.kubernetes.io/part-of',
  counterNamespace: 'tally.dev/counter-namespace',
  config: 'tally.dev/config',
} as const;
export const MANAGED_BY = 'tally-operator';
/** Value of the `app.kubernetes.io/part-of` label on the CRD and on everything the operator owns. */
export const PART_OF = 'tally';
/** Value of the `tally.dev/config` label on ConfigMaps that hold a resolved namespace document. */
export const CONFIG_LABEL_VALUE = 'namespace';
/** The ConfigMap key holding the resolved CounterNamespaceConfig document. */
export const CONFIG_KEY = 'namespace.yaml';

/**
 * `prefix-name`, cut to `max` characters with a stable hash suffix when too long (CronJob names may have at most 52,
 * since the Jobs they create append 11).
 */
export function boundedName(prefix: string, name: string, max: number): string {
  const plain = `${prefix}-${name}`;
  if (plain.length <= max) return plain;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 8);
  return `${plain.slice(0, max - 9).replace(/-+$/, '')}-${hash}`;
}

export const configMapName = (name: string): string => boundedName('tally', name, 253);
export const cronJobName = (name: string): string => boundedName('tally-rollup', name, 52);
