import type { KubernetesObject } from '@kubernetes/client-node';
import { ConditionType, EventReason, Reason } from '../../api/conditions';
import { errorMessage, httpStatus, whileCalling } from '../../lib/kube/request';
import { desiredConfigMap } from './configmap';
import { condition, conditionChanges, type ReconcileContext } from './context';
import { desiredCronJob } from './cronjob';
import { Continue, failed, requeueAfter, type StepResult } from './step';

/**
 * An owned object the API rejects as invalid stays invalid until the CounterNamespace changes (which wakes the
 * reconcile at once): looked at again only this rarely, never in a hot retry loop.
 */
export const REJECTED_RECHECK_MS = 10 * 60_000;

/**
 * A failed apply: 400/422 (the object is invalid) is permanent for this generation: Ready=False saying so, a
 * Warning Event, and a long recheck. Anything else (API down, 403, 409, 429, 5xx) is retried with backoff.
 */
export async function applyFailed(
  ctx: ReconcileContext,
  type: string,
  obj: KubernetesObject,
  err: unknown,
): Promise<StepResult> {
  const what = `${obj.kind} ${obj.metadata!.name}`;
  const status = httpStatus(err);
  if (status === 400 || status === 422) {
    const message = `the Kubernetes API rejected ${what}: ${errorMessage(err)}`;
    if (conditionChanges(ctx, ConditionType.Ready, 'False', Reason.ApplyRejected)) {
      await ctx.event('Warning', EventReason.ApplyRejected, message);
    }
    condition(ctx, type, 'False', Reason.ApplyRejected, message);
    condition(ctx, ConditionType.Ready, 'False', Reason.ApplyRejected, message);
    return requeueAfter(REJECTED_RECHECK_MS, `${what} rejected as invalid`);
  }
  condition(ctx, type, 'False', Reason.ApplyFailed, errorMessage(err));
  condition(ctx, ConditionType.Ready, 'False', Reason.ApplyFailed, `applying ${what} failed: ${errorMessage(err)}`);
  return failed(whileCalling(`applying ${what}`, err));
}

/**
 * Server-side apply of the owned ConfigMap: level-triggered, so an edited or deleted one is put back on the next
 * reconcile (the operator watches its owned objects).
 */
export async function applyConfigMap(ctx: ReconcileContext): Promise<StepResult> {
  const desired = desiredConfigMap(ctx.cns, ctx.config!, ctx.operator.memcachedServers);
  try {
    await ctx.kube.apply(desired);
  } catch (err) {
    return applyFailed(ctx, ConditionType.CacheConfigured, desired, err);
  }
  ctx.status.configMapName = desired.metadata!.name!;
  const servers = ctx.operator.memcachedServers
    ? `Memcached ${ctx.operator.memcachedServers}`
    : 'no Memcached configured';
  condition(
    ctx,
    ConditionType.CacheConfigured,
    'True',
    Reason.ConfigMapApplied,
    `ConfigMap ${desired.metadata!.name} (${servers})`,
  );
  return Continue;
}

export async function applyCronJob(ctx: ReconcileContext): Promise<StepResult> {
  const desired = desiredCronJob(ctx.cns, ctx.config!, ctx.operator);
  try {
    ctx.cronJob = await ctx.kube.apply(desired);
  } catch (err) {
    return applyFailed(ctx, ConditionType.RollupScheduled, desired, err);
  }
  ctx.status.cronJobName = desired.metadata!.name!;
  const { schedule, suspend } = ctx.config!.rollup;
  condition(
    ctx,
    ConditionType.RollupScheduled,
    'True',
    suspend ? Reason.RollupSuspended : Reason.CronJobApplied,
    `CronJob ${desired.metadata!.name} ${suspend ? 'is suspended' : `runs "${schedule}"`}`,
  );
  return Continue;
}

export function markReady(ctx: ReconcileContext): Promise<StepResult> {
  condition(
    ctx,
    ConditionType.Ready,
    'True',
    Reason.Ready,
    `counters of type ${ctx.config!.counterType} are served from keyspace ${ctx.config!.cassandra.keyspace}`,
  );
  return Promise.resolve(Continue);
}
