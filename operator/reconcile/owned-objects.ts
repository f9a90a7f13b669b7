import { ConditionType, Reason } from '../api/conditions';
import { apiMessage } from '../kube/api';
import { desiredConfigMap } from './configmap';
import { condition, type ReconcileContext } from './context';
import { desiredCronJob } from './cronjob';
import { Continue, failed, type StepResult } from './step';

/**
 * Server-side apply of the owned ConfigMap: level-triggered, so an edited or deleted one is put back on the next
 * reconcile (the operator watches its owned objects).
 */
export async function applyConfigMap(ctx: ReconcileContext): Promise<StepResult> {
  const desired = desiredConfigMap(ctx.cns, ctx.config!, ctx.operator.memcachedServers);
  try {
    await ctx.kube.apply(desired);
  } catch (err) {
    condition(ctx, ConditionType.CacheConfigured, 'False', Reason.ApplyFailed, apiMessage(err));
    return failed(`applying ConfigMap ${desired.metadata!.name}`, apiMessage(err));
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
    await ctx.kube.apply(desired);
  } catch (err) {
    condition(ctx, ConditionType.RollupScheduled, 'False', Reason.ApplyFailed, apiMessage(err));
    return failed(`applying CronJob ${desired.metadata!.name}`, apiMessage(err));
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
