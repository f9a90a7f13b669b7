/**
 * The CounterNamespace status as a (structural) JSON Schema: the one source of the CRD's status schema and of the
 * `CounterNamespaceStatus` and `Condition` types (./types.ts derives them). Only the operator writes
 * status, through the /status subresource; the API server checks what it writes against this schema.
 */

export const CONDITION_STATUSES = ['True', 'False', 'Unknown'] as const;

/** metav1.Condition, with the bounds and patterns the Kubernetes API conventions give it. */
export const conditionSchema = {
  type: 'object',
  description: 'One aspect of the current state of the CounterNamespace (the standard Kubernetes condition).',
  required: ['type', 'status', 'lastTransitionTime', 'reason', 'message'],
  properties: {
    type: {
      type: 'string',
      maxLength: 316,
      pattern:
        '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$',
      description: 'Type of condition in CamelCase: Ready, KeyspaceReady, TablesReady, CacheConfigured, ...',
    },
    status: { type: 'string', enum: [...CONDITION_STATUSES], description: 'True, False or Unknown.' },
    observedGeneration: {
      type: 'integer',
      format: 'int64',
      minimum: 0,
      description: 'The .metadata.generation the condition was set from.',
    },
    lastTransitionTime: {
      type: 'string',
      format: 'date-time',
      description: 'When the condition last changed from one status to another.',
    },
    reason: {
      type: 'string',
      minLength: 1,
      maxLength: 1024,
      pattern: '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$',
      description: "Programmatic identifier (CamelCase) of the condition's last transition.",
    },
    message: {
      type: 'string',
      maxLength: 32768,
      description: 'Human-readable details about the transition; may be empty.',
    },
  },
} as const;

export const counterNamespaceStatusSchema = {
  type: 'object',
  description: 'Observed state of the counter namespace, written by the operator.',
  properties: {
    observedGeneration: {
      type: 'integer',
      format: 'int64',
      minimum: 0,
      description: 'The .metadata.generation the operator last reconciled.',
    },
    conditions: {
      type: 'array',
      description: 'Ready, plus one condition per reconcile step.',
      maxItems: 32,
      items: conditionSchema,
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['type'],
    },
    keyspace: { type: 'string', description: 'The Cassandra keyspace in use.' },
    createdKeyspace: {
      type: 'string',
      description:
        'The keyspace this CounterNamespace found missing and created: recorded before CREATE KEYSPACE, so it stays its own to drop (deletionPolicy Delete) even when the operator stopped before the rollups table recorded the owner.',
    },
    eventsTable: { type: 'string', description: 'The event-log table in the keyspace.' },
    rollupsTable: { type: 'string', description: 'The rollups table in the keyspace.' },
    configMapName: {
      type: 'string',
      description: 'The ConfigMap holding the resolved namespace configuration the runtime reads.',
    },
    cronJobName: { type: 'string', description: 'The CronJob running the rollup sweeper.' },
  },
} as const;
