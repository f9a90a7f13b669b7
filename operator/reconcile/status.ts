import { ConditionType, Reason, findCondition, type Condition } from '../../api/conditions';
import type { CounterNamespaceStatus } from '../../api/types';
import { httpStatus, whileCalling } from '../../lib/kube/request';
import { condition, type ReconcileContext } from './context';
import { failed, type ReconcileResult, type Step } from './step';

const CONDITION_TYPES = Object.values(ConditionType);

/** First visit: every condition starts Unknown, so `kubectl get` shows progress at once. */
export function initConditions(ctx: ReconcileContext): void {
  for (const type of CONDITION_TYPES) {
    if (!ctx.status.conditions?.some((c) => c.type === type))
      condition(ctx, type, 'Unknown', Reason.Reconciling, 'not checked yet');
  }
}

/**
 * A reconcile that stopped short never leaves an earlier Ready=True standing: when the step that stopped did not
 * say why itself, Ready=False takes the reason of the condition that step is about, or says which step failed.
 */
export function notReady(
  ctx: ReconcileContext,
  readyBefore: Condition | undefined,
  step: Step,
  result: ReconcileResult,
): void {
  const ready = findCondition(ctx.status.conditions, ConditionType.Ready);
  if (ready && ready !== readyBefore && ready.status === 'False') return; // The step set it.
  const own = step.reports ? findCondition(ctx.status.conditions, step.reports) : undefined;
  if (own && own.status !== 'True' && own.reason !== Reason.Reconciling) {
    condition(ctx, ConditionType.Ready, 'False', own.reason, own.message);
    return;
  }
  const why = result.kind === 'error' ? result.error.message : result.kind === 'requeue' ? result.why : 'stopped early';
  condition(
    ctx,
    ConditionType.Ready,
    'False',
    result.kind === 'error' ? Reason.ReconcileFailed : Reason.Reconciling,
    `${step.name}: ${why}`,
  );
}

function sameStatus(a: CounterNamespaceStatus | undefined, b: CounterNamespaceStatus): boolean {
  return JSON.stringify(a ?? {}) === JSON.stringify(b);
}

/**
 * Writes the built status through the status subresource, only when it differs from what the object had, so a
 * settled object's reconcile writes nothing and does not wake itself up. Undefined when written (or not needed).
 */
export async function writeStatus(
  ctx: ReconcileContext,
  before: CounterNamespaceStatus | undefined,
): Promise<ReconcileResult | undefined> {
  if (sameStatus(before, ctx.status)) return undefined;
  try {
    await ctx.kube.patchStatus(ctx.cns, ctx.status);
  } catch (err) {
    // 404: deleted meanwhile. Otherwise retry: a stale status misleads.
    if (httpStatus(err) !== 404) return failed(whileCalling('writing status', err));
  }
  return undefined;
}
