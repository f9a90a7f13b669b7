import { createHash } from 'node:crypto';

export const FINALIZER = 'tally.dev/keyspace-cleanup';
export const FIELD_MANAGER = 'tally-operator';
export const PLURAL = 'counternamespaces';

/** Labels on everything the operator owns; the runtime selects its ConfigMaps by the last one. */
export const LABELS = {
  managedBy: 'app.kubernetes.io/managed-by',
  partOf: 'app.kubernetes.io/part-of',
  counterNamespace: 'tally.dev/counter-namespace',
  config: 'tally.dev/config',
} as const;
export const MANAGED_BY = 'tally-operator';
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
