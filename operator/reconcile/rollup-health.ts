import type { V1CronJob } from '@kubernetes/client-node';
import { CronExpressionParser } from 'cron-parser';
import { ConditionType, EventReason, Reason, findCondition } from '../../api/conditions';
import { condition, conditionChanges, type ReconcileContext, type RollupHealth } from './context';
import { Continue, type StepResult } from './step';

/** A sweeper that has not succeeded for this many of its schedules is overdue ("a few schedules"). */
export const MISSED_SCHEDULES = 3;
/** How long a scheduled run may take to start and finish before its schedule counts as missed. */
export const RUN_GRACE_MS = 5 * 60_000;

export interface RollupHealthInput {
  schedule: string;
  suspend: boolean;
  /** The CronJob as the API server has it (its status is the CronJob controller's). */
  cronJob: Pick<V1CronJob, 'metadata' | 'status'>;
  /** The condition as it stands, held while a run is in progress. */
  previous?: { status: string; reason: string; message: string } | undefined;
  now: Date;
}

const iso = (d: Date): string => d.toISOString().replace(/\.000Z$/, 'Z');

/**
 * Scheduled times in (after, until], at most `limit` of them. CronJobs without spec.timeZone run on the
 * controller-manager's zone, UTC in every distribution we know of.
 */
function fireTimes(schedule: string, after: Date, until: Date, limit: number): Date[] {
  const times: Date[] = [];
  if (until <= after) return times;
  const it = CronExpressionParser.parse(schedule, { currentDate: after, endDate: until, tz: 'UTC' });
  while (times.length < limit && it.hasNext()) times.push(it.next().toDate());
  return times;
}

/**
 * Judges a rollup CronJob from its status, as the CronJob controller keeps it: a run that ended without success
 * (lastScheduleTime after lastSuccessfulTime, none active) is a failure at once; no success for MISSED_SCHEDULES
 * schedules (runs never start, hang, or are skipped) is overdue. While a run is in progress the previous verdict
 * stands, so a failing sweeper does not flap between False and Unknown on every schedule.
 */
export function assessRollupHealth(input: RollupHealthInput): RollupHealth {
  const { schedule, suspend, cronJob, previous, now } = input;
  const name = cronJob.metadata?.name ?? 'the CronJob';
  if (suspend) {
    return {
      status: 'Unknown',
      reason: Reason.RollupSuspended,
      message: `CronJob ${name} is suspended: counters whose rollup triggers were lost are not rolled up`,
    };
  }
  const lastSchedule = cronJob.status?.lastScheduleTime ? new Date(cronJob.status.lastScheduleTime) : undefined;
  const lastSuccess = cronJob.status?.lastSuccessfulTime ? new Date(cronJob.status.lastSuccessfulTime) : undefined;
  const running = (cronJob.status?.active?.length ?? 0) > 0;
  const since =
    lastSuccess ?? (cronJob.metadata?.creationTimestamp ? new Date(cronJob.metadata.creationTimestamp) : now);
  const lastSuccessText = lastSuccess ? `last success ${iso(lastSuccess)}` : 'no success yet';

  if (!running && lastSchedule && (!lastSuccess || lastSchedule > lastSuccess)) {
    // The CronJob controller names each Job after its scheduled minute.
    const job = `${name}-${Math.floor(lastSchedule.getTime() / 60_000)}`;
    return {
      status: 'False',
      reason: Reason.RollupFailed,
      message: `the run scheduled at ${iso(lastSchedule)} (Job ${job}) did not succeed, ${lastSuccessText}: kubectl logs job/${job}`,
      lastSuccess,
    };
  }
  const missed = fireTimes(schedule, since, new Date(now.getTime() - RUN_GRACE_MS), MISSED_SCHEDULES);
  if (missed.length >= MISSED_SCHEDULES) {
    return {
      status: 'False',
      reason: Reason.RollupOverdue,
      message: `${missed.length} runs of "${schedule}" are due since ${iso(since)} and none succeeded (${lastSuccessText}${running ? ', one is still running' : ''})`,
      lastSuccess,
    };
  }
  if (running && previous && previous.reason !== Reason.Reconciling && previous.reason !== Reason.RollupSuspended) {
    return {
      status: previous.status as RollupHealth['status'],
      reason: previous.reason as Reason,
      message: previous.message,
      lastSuccess,
    };
  }
  if (lastSuccess) {
    return {
      status: 'True',
      reason: Reason.RollupSucceeded,
      message: `CronJob ${name}: ${lastSuccessText}`,
      lastSuccess,
    };
  }
  return {
    status: 'Unknown',
    reason: Reason.RollupPending,
    message: running
      ? `CronJob ${name}: the first run is in progress`
      : `CronJob ${name}: waiting for the first run of "${schedule}"`,
  };
}

/**
 * Sets RollupHealthy from the CronJob the previous step applied, and the operator's rollup-health metrics. Always
 * continues: Ready does not follow it (a sweeper that fails leaves counting and exact reads working; see
 * docs/operator.md). Re-judged when the CronJob's runs end (the owned-CronJob watch) and on every resync, which is
 * what notices an overdue sweeper whose runs never end.
 */
export async function checkRollupHealth(ctx: ReconcileContext): Promise<StepResult> {
  if (!ctx.cronJob) return Continue;
  const before = findCondition(ctx.status.conditions, ConditionType.RollupHealthy);
  const health = assessRollupHealth({
    schedule: ctx.config!.rollup.schedule,
    suspend: ctx.config!.rollup.suspend,
    cronJob: ctx.cronJob,
    previous: before,
    now: new Date(),
  });
  if (health.status === 'False' && conditionChanges(ctx, ConditionType.RollupHealthy, health.status, health.reason)) {
    await ctx.event('Warning', EventReason.RollupUnhealthy, health.message);
  }
  condition(ctx, ConditionType.RollupHealthy, health.status, health.reason, health.message);
  ctx.rollupHealth = health;
  return Continue;
}
