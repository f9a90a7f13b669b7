import type { ConditionType } from '../../api/conditions';
import type { QueueResult } from '../../lib/kube/workqueue';
import type { ReconcileContext } from './context';

/**
 * What a reconcile step tells the checklist (after k8ssandra-operator's result type): go on to the next step, or end
 * the reconcile with what the work queue does next: done (nothing more to do), requeue (come back later) or error
 * (retried with per-key backoff). The reconcile's own result is that queue result, as it is.
 */
export type StepResult = { kind: 'continue' } | ReconcileResult;

/** How a reconcile ended: the work queue's result, with a reason on every requeue and an Error on every failure. */
export type ReconcileResult =
  | Extract<QueueResult, { kind: 'done' }>
  | { kind: 'requeue'; afterMs: number; why: string }
  | { kind: 'error'; error: Error };

/** One item of the checklist; `reports` is the condition it is about, whose reason Ready takes when it stops. */
export interface Step {
  name: string;
  run: (ctx: ReconcileContext) => Promise<StepResult>;
  reports?: ConditionType;
}

export const Continue: StepResult = { kind: 'continue' };
export const Done: ReconcileResult = { kind: 'done' };
export const requeueAfter = (afterMs: number, why: string): ReconcileResult => ({ kind: 'requeue', afterMs, why });
/** A failed step; `error` says what was being done and keeps the cause (lib/errors.ts whileDoing, whileCalling). */
export const failed = (error: Error): ReconcileResult => ({ kind: 'error', error });
