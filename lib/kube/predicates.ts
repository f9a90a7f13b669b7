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

/**
 * A CronJob update worth a reconcile although only its status changed: one of its runs ended (the active list
 * emptied) or succeeded (lastSuccessfulTime moved), which is what its owner's health follows. A run starting is not.
 */
export function cronJobRunEnded(obj: KubernetesObject, old: KubernetesObject): boolean {
  type CronJobStatus = { status?: { active?: unknown[]; lastSuccessfulTime?: unknown } };
  const a = (obj as CronJobStatus).status;
  const b = (old as CronJobStatus).status;
  const active = (s: CronJobStatus['status']): number => s?.active?.length ?? 0;
  // A listed object carries Dates, a watched one strings.
  const time = (v: unknown): number | undefined =>
    v instanceof Date ? v.getTime() : typeof v === 'string' ? Date.parse(v) : undefined;
  const ended = active(b) > 0 && active(a) === 0;
  return ended || time(a?.lastSuccessfulTime) !== time(b?.lastSuccessfulTime);
}
