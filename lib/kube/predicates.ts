import type { KubernetesObject } from '@kubernetes/client-node';

/**
 * Which watch updates are worth a reconcile (controller-runtime's predicates). Status-only updates are not: our own
 * status writes would wake every object once more, and the CronJob controller updates a CronJob's status each time it
 * starts a Job. The periodic resync still visits everything.
 */
export function specOrMetadataChanged(obj: KubernetesObject, old: KubernetesObject): boolean {
  const a = obj.metadata;
  const b = old.metadata;
  if (a?.generation !== undefined && a.generation !== b?.generation) return true;
  if (a?.deletionTimestamp !== b?.deletionTimestamp) return true;
  const same = (x: unknown, y: unknown): boolean => JSON.stringify(x ?? null) === JSON.stringify(y ?? null);
  if (
    !same(a?.finalizers, b?.finalizers) ||
    !same(a?.labels, b?.labels) ||
    !same(a?.ownerReferences, b?.ownerReferences)
  )
    return true;
  // Objects without a generation (ConfigMaps) change through their data.
  if (a?.generation === undefined) return !same((obj as { data?: unknown }).data, (old as { data?: unknown }).data);
  return false;
}
