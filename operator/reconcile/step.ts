/**
 * What a reconcile step tells the checklist (after k8ssandra-operator's result type): go on to the next step, stop
 * here because there is nothing more to do, come back later, or fail (retried with per-key backoff).
 */
export type StepResult =
  | { kind: 'continue' }
  | { kind: 'done' }
  | { kind: 'requeue'; afterMs: number; why: string }
  | { kind: 'error'; error: Error };

export const Continue: StepResult = { kind: 'continue' };
export const Done: StepResult = { kind: 'done' };
export const requeueAfter = (afterMs: number, why: string): StepResult => ({ kind: 'requeue', afterMs, why });
export const failed = (doing: string, cause: unknown): StepResult => ({
  kind: 'error',
  error: new Error(`while ${doing}: ${cause instanceof Error ? cause.message : String(cause)}`),
});
