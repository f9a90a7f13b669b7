import type { Logger } from '../../lib/log';
import { ConditionType, findCondition } from '../../api/conditions';
import type { CounterNamespace, CounterNamespaceStatus } from '../../api/types';
import { splitKey } from '../../lib/kube/informer';
import { errorMessage } from '../../lib/kube/request';
import type { OperatorConfig } from '../config';
import type { KubeApi } from '../kube-api';
import type { SchemaStore } from '../schema-store';
import type { ReconcileContext } from './context';
import { applyRollupSecret, ensureRollupRole, grantRuntimeAccess } from './access';
import { ensureFinalizer, handleDeletion } from './deletion';
import { applyConfigMap, applyCronJob, markReady } from './owned-objects';
import { checkRollupHealth } from './rollup-health';
import type { RollupHealth } from './context';
import { ensureKeyspaceAndTables, resolveSpec } from './schema';
import { initConditions, notReady, writeStatus } from './status';
import { Done, type ReconcileResult, type Step } from './step';

/** The checklist, in order. Each step either lets the next one run or ends this reconcile with its result. */
const STEPS: Step[] = [
  { name: 'deletion', run: handleDeletion },
  { name: 'finalizer', run: ensureFinalizer },
  { name: 'spec', run: resolveSpec },
  { name: 'keyspace and tables', run: ensureKeyspaceAndTables, reports: ConditionType.KeyspaceReady },
  { name: 'runtime access', run: grantRuntimeAccess, reports: ConditionType.KeyspaceReady },
  { name: 'rollup role', run: ensureRollupRole, reports: ConditionType.KeyspaceReady },
  { name: 'cache config', run: applyConfigMap, reports: ConditionType.CacheConfigured },
  { name: 'rollup credentials', run: applyRollupSecret, reports: ConditionType.RollupScheduled },
  { name: 'rollup schedule', run: applyCronJob, reports: ConditionType.RollupScheduled },
  { name: 'ready', run: markReady },
  // After Ready on purpose: it never stops the checklist, and Ready does not follow it.
  { name: 'rollup health', run: checkRollupHealth },
];

export interface ReconcilerDeps {
  kube: KubeApi;
  schema: SchemaStore;
  operator: OperatorConfig;
  log: Logger;
  /** Where the reconciler reads the object: the informer's cache in the operator, the API in some tests. */
  get(namespace: string, name: string): Promise<CounterNamespace | undefined>;
  /** Told each CounterNamespace's rollup health after each reconcile; undefined once it is gone or not judged. */
  onRollupHealth?: (key: string, health: RollupHealth | undefined) => void;
}

/**
 * Reconciles one CounterNamespace: level-triggered (it never asks what event woke it) and idempotent (a second run
 * with nothing changed writes nothing). Status is written once, through the status subresource, and only when it
 * changed, so a Ready object's reconcile settles instead of waking itself up; the one exception is
 * status.createdKeyspace, written on its own before CREATE KEYSPACE (keyspaceCreation in ./schema.ts).
 */
export class Reconciler {
  constructor(private readonly deps: ReconcilerDeps) {}

  async reconcile(key: string): Promise<ReconcileResult> {
    const { namespace, name } = splitKey(key);
    const cns = await this.deps.get(namespace ?? '', name);
    if (!cns) {
      this.deps.onRollupHealth?.(key, undefined);
      return Done; // Deleted: the garbage collector takes the owned objects.
    }
    const log = this.deps.log.child({ counterNamespace: key, generation: cns.metadata.generation });
    const ctx: ReconcileContext = {
      cns: structuredClone(cns),
      status: structuredClone<CounterNamespaceStatus>(cns.status ?? {}),
      kube: this.deps.kube,
      schema: this.deps.schema,
      operator: this.deps.operator,
      log,
      event: async (type, reason, message) => {
        try {
          await this.deps.kube.recordEvent(cns, type, reason, message);
        } catch (err) {
          log.warn({ reason, err: errorMessage(err) }, 'recording an event failed');
        }
      },
    };
    initConditions(ctx);
    const readyBefore = findCondition(ctx.status.conditions, ConditionType.Ready);

    const stopped = await runSteps(ctx);
    this.deps.onRollupHealth?.(key, ctx.rollupHealth);
    const result = stopped?.result ?? Done;
    if (ctx.cns.metadata.deletionTimestamp !== undefined && result.kind === 'done') return result; // Released.
    if (stopped) notReady(ctx, readyBefore, stopped.step, result);
    // Only a finished checklist has observed this generation.
    else ctx.status.observedGeneration = cns.metadata.generation ?? 0;
    return (await writeStatus(ctx, cns.status)) ?? result;
  }
}

/** Runs the checklist until a step ends the reconcile; undefined when every step said continue. */
async function runSteps(ctx: ReconcileContext): Promise<{ step: Step; result: ReconcileResult } | undefined> {
  for (const step of STEPS) {
    const result = await step.run(ctx);
    if (result.kind === 'continue') continue;
    if (result.kind !== 'done') {
      const why = result.kind === 'error' ? result.error.message : result.why;
      ctx.log.info({ step: step.name, result: result.kind, why }, 'reconcile stopped');
    }
    return { step, result };
  }
  return undefined;
}
