import type { Condition } from './types';

/**
 * Every condition type and reason the operator sets, in one place (after kubebuilder's conditions.go). Types are
 * adjectives that are True when things are well; reasons are CamelCase and stable: alerts and scripts match on them.
 */
export const ConditionType = {
  /** The namespace is usable: keyspace, tables, cache config and rollup schedule are all in place. */
  Ready: 'Ready',
  KeyspaceReady: 'KeyspaceReady',
  TablesReady: 'TablesReady',
  CacheConfigured: 'CacheConfigured',
  RollupScheduled: 'RollupScheduled',
  /**
   * The sweeper CronJob's runs succeed. Ready does not follow it: counting and exact reads go on without the sweeper,
   * which only rolls up counters whose rollup triggers were lost.
   */
  RollupHealthy: 'RollupHealthy',
} as const;
export type ConditionType = (typeof ConditionType)[keyof typeof ConditionType];

export const Reason = {
  /** First visit, or a step has not run yet. */
  Reconciling: 'Reconciling',
  Ready: 'Ready',
  KeyspaceCreated: 'KeyspaceCreated',
  KeyspaceExists: 'KeyspaceExists',
  ReplicationUpdated: 'ReplicationUpdated',
  TablesCreated: 'TablesCreated',
  TablesExist: 'TablesExist',
  RetentionUpdated: 'RetentionUpdated',
  ConfigMapApplied: 'ConfigMapApplied',
  CronJobApplied: 'CronJobApplied',
  RollupSuspended: 'RollupSuspended',
  /** The sweeper's last run succeeded. */
  RollupSucceeded: 'RollupSucceeded',
  /** The sweeper has not run yet (or its first run is in progress). */
  RollupPending: 'RollupPending',
  /** The sweeper's last run ended without success (its Job failed or was deleted). */
  RollupFailed: 'RollupFailed',
  /** No run of the sweeper succeeded for several schedules: runs do not start, hang, or are skipped. */
  RollupOverdue: 'RollupOverdue',
  /** Another CounterNamespace (or something outside Tally) already owns the keyspace; nothing was touched. */
  KeyspaceConflict: 'KeyspaceConflict',
  /** Cassandra could not be reached or answered with an error; retried with backoff. */
  CassandraUnavailable: 'CassandraUnavailable',
  /**
   * Cassandra refused a schema statement itself (a syntax error, an invalid request, a missing permission): not
   * retried until the CounterNamespace changes (or a long recheck).
   */
  CassandraRejected: 'CassandraRejected',
  /** Cassandra's nodes disagree on the schema version; DDL waits until they agree. */
  SchemaDisagreement: 'SchemaDisagreement',
  /** The spec cannot be resolved (the CRD's validation should have caught it). */
  InvalidSpec: 'InvalidSpec',
  /** The Kubernetes API refused to apply an owned object. */
  ApplyFailed: 'ApplyFailed',
  /**
   * The Kubernetes API rejected an owned object as invalid (400/422), e.g. a schedule the CronJob API does not
   * accept: permanent for this generation, so not retried until the CounterNamespace changes (or a long recheck).
   */
  ApplyRejected: 'ApplyRejected',
  /** A reconcile step failed and is retried with backoff; the message says which and why. */
  ReconcileFailed: 'ReconcileFailed',
  /** Deletion waits on cleanup outside Kubernetes (dropping the keyspace). */
  Deleting: 'Deleting',
} as const;
export type Reason = (typeof Reason)[keyof typeof Reason];

/** Event reasons (Normal unless said otherwise). */
export const EventReason = {
  KeyspaceCreated: 'KeyspaceCreated',
  ReplicationUpdated: 'ReplicationUpdated',
  TablesCreated: 'TablesCreated',
  RetentionUpdated: 'RetentionUpdated',
  KeyspaceDropped: 'KeyspaceDropped',
  KeyspaceRetained: 'KeyspaceRetained',
  /** A keyspace whose recorded owner (a runtime, or a CounterNamespace that no longer exists) was taken over. */
  KeyspaceAdopted: 'KeyspaceAdopted',
  /** Warning. */
  KeyspaceConflict: 'KeyspaceConflict',
  /** Warning. */
  CassandraUnavailable: 'CassandraUnavailable',
  /** Warning. */
  CassandraRejected: 'CassandraRejected',
  /** Warning. */
  DropFailed: 'DropFailed',
  /** Warning. */
  ApplyRejected: 'ApplyRejected',
  /** Warning: RollupHealthy turned False (RollupFailed or RollupOverdue). */
  RollupUnhealthy: 'RollupUnhealthy',
} as const;
export type EventReason = (typeof EventReason)[keyof typeof EventReason];

/** The condition shape of the CRD's status schema (metav1.Condition). */
export type { Condition };

/**
 * Sets a condition in a list keyed by type, keeping lastTransitionTime when the status does not change (the
 * Kubernetes API conventions). Returns a new list; the input is not modified.
 */
export function setCondition(
  conditions: Condition[] | undefined,
  next: Omit<Condition, 'lastTransitionTime'>,
  now: () => Date = () => new Date(),
): Condition[] {
  const list = [...(conditions ?? [])];
  const i = list.findIndex((c) => c.type === next.type);
  const previous = i >= 0 ? list[i] : undefined;
  const lastTransitionTime =
    previous && previous.status === next.status ? previous.lastTransitionTime : now().toISOString();
  const condition: Condition = { ...next, lastTransitionTime };
  if (i >= 0) list[i] = condition;
  else list.push(condition);
  return list;
}

export function findCondition(conditions: Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}
