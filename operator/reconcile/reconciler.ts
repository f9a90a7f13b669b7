import type { Client } from 'cassandra-driver';
import type { Logger } from '../../lib/log';
import { ConditionType, Reason, findCondition, type Condition } from '../../api/conditions';
import type { CounterNamespace, CounterNamespaceStatus } from '../../api/types';
import type { OperatorConfig } from '../config';
import { apiMessage, type KubeApi } from '../kube-api';
import { condition, type ReconcileContext } from './context';
import { ensureFinalizer, handleDeletion } from './deletion';
import { applyConfigMap, applyCronJob, markReady } from './owned-objects';
import { ensureKeyspaceAndTables, resolveSpec } from './schema';
import { Done, type StepResult } from './step';

type Step = (ctx: ReconcileContext) => Promise<StepResult>;

/** The checklist, in order. Each step either lets the next one run or ends this reconcile with its result. */
const STEPS: [string, Step][] = [
  ['deletion', handleDeletion],
  ['finalizer', ensureFinalizer],
  ['spec', resolveSpec],
  ['keyspace and tables', ensureKeyspaceAndTables],
  ['cache config', applyConfigMap],
  ['rollup schedule', applyCronJob],
  ['ready', markReady],
];

const CONDITION_TYPES = Object.values(ConditionType);

/** The condition each step reports on, whose reason Ready takes when the step stops the checklist. */
const STEP_CONDITIONS: Record<string, ConditionType | undefined> = {
  'keyspace and tables': ConditionType.KeyspaceReady,
  'cache config': ConditionType.CacheConfigured,
  'rollup schedule': ConditionType.RollupScheduled,
};

export interface ReconcilerDeps {
  kube: KubeApi;
  cassandra: Client;
  operator: OperatorConfig;
  log: Logger;
  /** Where the reconciler reads the object: the informer's cache in the operator, the API in some tests. */
  get(namespace: string, name: string): Promise<CounterNamespace | undefined>;
}

/**
 * A reconcile that stopped short never leaves an earlier Ready=True standing: when the step that stopped did not
 * say why itself, Ready=False takes the reason of the condition that step is about, or says which step failed.
 */
function notReady(
  ctx: ReconcileContext,
  readyBefore: Condition | undefined,
  stepName: string,
  result: StepResult,
): void {
  const ready = findCondition(ctx.status.conditions, ConditionType.Ready);
  if (ready && ready !== readyBefore && ready.status === 'False') return; // The step set it.
  const owned = STEP_CONDITIONS[stepName];
  const own = owned ? findCondition(ctx.status.conditions, owned) : undefined;
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
    `${stepName}: ${why}`,
  );
}

function sameStatus(a: CounterNamespaceStatus | undefined, b: CounterNamespaceStatus): boolean {
  return JSON.stringify(a ?? {}) === JSON.stringify(b);
}

/**
 * Reconciles one CounterNamespace: level-triggered (it never asks what event woke it) and idempotent (a second run
 * with nothing changed writes nothing). Status is written once, through the status subresource, and only when it
 * changed, so a Ready object's reconcile settles instead of waking itself up.
 */
export class Reconciler {
  constructor(private readonly deps: ReconcilerDeps) {}

  async reconcile(key: string): Promise<StepResult> {
    const [namespace, name] = key.split('/') as [string, string];
    const cns = await this.deps.get(namespace, name);
    if (!cns) return Done; // Deleted: the garbage collector takes the owned objects.
    const log = this.deps.log.child({ counterNamespace: key, generation: cns.metadata.generation });
    const ctx: ReconcileContext = {
      cns: structuredClone(cns),
      status: structuredClone<CounterNamespaceStatus>(cns.status ?? {}),
      kube: this.deps.kube,
      cassandra: this.deps.cassandra,
      operator: this.deps.operator,
      log,
      event: async (type, reason, message) => {
        try {
          await this.deps.kube.recordEvent(cns, type, reason, message);
        } catch (err) {
          log.warn({ reason, err: apiMessage(err) }, 'recording an event failed');
        }
      },
    };
    // First visit: every condition starts Unknown, so `kubectl get` shows progress at once.
    for (const type of CONDITION_TYPES) {
      if (!ctx.status.conditions?.some((c) => c.type === type))
        condition(ctx, type, 'Unknown', Reason.Reconciling, 'not checked yet');
    }

    const readyBefore = findCondition(ctx.status.conditions, ConditionType.Ready);
    let result: StepResult = Done;
    let stoppedAt: string | undefined;
    for (const [stepName, step] of STEPS) {
      result = await step(ctx);
      if (result.kind !== 'continue') {
        stoppedAt = stepName;
        if (result.kind !== 'done')
          log.info(
            { step: stepName, result: result.kind, why: result.kind === 'error' ? result.error.message : result.why },
            'reconcile stopped',
          );
        break;
      }
    }
    if (result.kind === 'continue') result = Done;
    const completed = stoppedAt === undefined;

    const deleted = ctx.cns.metadata.deletionTimestamp !== undefined && result.kind === 'done';
    if (!deleted) {
      if (completed) {
        // Only a finished checklist has observed this generation.
        ctx.status.observedGeneration = cns.metadata.generation ?? 0;
      } else {
        notReady(ctx, readyBefore, stoppedAt!, result);
      }
      if (!sameStatus(cns.status, ctx.status)) {
        try {
          await this.deps.kube.patchStatus(ctx.cns, ctx.status);
        } catch (err) {
          // 404: deleted meanwhile. Otherwise retry: a stale status misleads.
          if ((err as { code?: number }).code !== 404)
            return { kind: 'error', error: new Error(`while writing status: ${apiMessage(err)}`) };
        }
      }
    }
    return result;
  }
}
