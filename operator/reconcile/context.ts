import type { V1CronJob } from '@kubernetes/client-node';
import type { NamespaceConfig } from '../../api/namespace-config';
import type { Logger } from '../../lib/log';
import { setCondition, type Condition, type Reason } from '../../api/conditions';
import type { CounterNamespace, CounterNamespaceStatus } from '../../api/types';
import type { OperatorConfig } from '../config';
import type { KubeApi } from '../kube-api';
import type { SchemaStore } from '../schema-store';

/** The verdict on a CounterNamespace's sweeper (./rollup-health.ts), kept for the operator's metrics. */
export interface RollupHealth {
  status: 'True' | 'False' | 'Unknown';
  reason: Reason;
  message: string;
  lastSuccess?: Date | undefined;
}

/** What the reconcile steps share for one CounterNamespace. */
export interface ReconcileContext {
  cns: CounterNamespace;
  /** The status being built; written once at the end if it differs from what the object has. */
  status: CounterNamespaceStatus;
  /** Set by the resolve step. */
  config?: NamespaceConfig;
  /** The rollup CronJob as applied (with the CronJob controller's status); set by the rollup schedule step. */
  cronJob?: V1CronJob;
  /** The rollup health verdict; set by the rollup health step, reported to the operator's metrics. */
  rollupHealth?: RollupHealth;
  kube: KubeApi;
  schema: SchemaStore;
  operator: OperatorConfig;
  log: Logger;
  /** Events are recorded sparingly: only when a condition changes or something is created, changed or dropped. */
  event(type: 'Normal' | 'Warning', reason: string, message: string): Promise<void>;
}

/** Sets a condition on the draft status, observed at the object's generation. */
export function condition(
  ctx: ReconcileContext,
  type: string,
  status: Condition['status'],
  reason: string,
  message: string,
): void {
  ctx.status.conditions = setCondition(ctx.status.conditions, {
    type,
    status,
    reason,
    message,
    observedGeneration: ctx.cns.metadata?.generation ?? 0,
  });
}

/** True when the condition's status or reason would change: the moment worth an Event. */
export function conditionChanges(
  ctx: ReconcileContext,
  type: string,
  status: Condition['status'],
  reason: string,
): boolean {
  const current = ctx.cns.status?.conditions?.find((c) => c.type === type);
  return current?.status !== status || current.reason !== reason;
}
