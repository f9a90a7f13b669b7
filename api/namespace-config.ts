import type { CounterType } from './spec-schema';
import { COUNTER_TYPES, CQL_IDENTIFIER_PATTERN, DATACENTER_PATTERN, KEY_PREFIX_PATTERN } from './spec-schema';

/** Version of the resolved document; bump it when a field changes meaning. */
export const CONFIG_API_VERSION = 'tally.dev/v1alpha1';
export const CONFIG_KIND = 'CounterNamespaceConfig';

/** Counter namespace names as they appear in API calls and as Kubernetes object names (DNS-1123 label). */
export const NAMESPACE_NAME_PATTERN = '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$';

export type Replication =
  | { class: 'SimpleStrategy'; replicationFactor: number }
  | { class: 'NetworkTopologyStrategy'; dataCenters: Record<string, number> };

/**
 * A namespace's resolved configuration: every default applied, every name decided. This is what the runtime serves
 * from and what the operator writes into the namespace's ConfigMap.
 */
export interface NamespaceConfig {
  apiVersion: typeof CONFIG_API_VERSION;
  kind: typeof CONFIG_KIND;
  name: string;
  counterType: CounterType;
  cassandra: {
    keyspace: string;
    replication: Replication;
    eventsTable: string;
    rollupsTable: string;
  };
  eventStorage: {
    secondsPerBucket: number;
    bucketsPerCounter: number;
    acceptLimitSeconds: number;
    maxFutureSkewSeconds: number;
    retentionSeconds: number;
  };
  rollup: {
    schedule: string;
    suspend: boolean;
    coalesceMs: number;
    queues: number;
    queueCapacity: number;
    batchSize: number;
    concurrency: number;
    settleMarginMs: number;
  };
  cache: {
    keyPrefix: string;
    ttlSeconds: number;
    /** How long a runtime serves an Eventual checkpoint from its own memory (0: not at all). */
    nearCacheSeconds: number;
    /** Filled in by the operator from its own configuration; a runtime uses its own MEMCACHED_SERVERS. */
    servers?: string;
  };
}

const int = (minimum: number, maximum: number) => ({ type: 'integer', minimum, maximum }) as const;

/** JSON Schema of the resolved document: strict, nothing optional, nothing unknown. */
export const namespaceConfigSchema = {
  type: 'object',
  required: ['apiVersion', 'kind', 'name', 'counterType', 'cassandra', 'eventStorage', 'rollup', 'cache'],
  additionalProperties: false,
  properties: {
    apiVersion: { const: CONFIG_API_VERSION },
    kind: { const: CONFIG_KIND },
    name: { type: 'string', pattern: NAMESPACE_NAME_PATTERN },
    counterType: { type: 'string', enum: [...COUNTER_TYPES] },
    cassandra: {
      type: 'object',
      required: ['keyspace', 'replication', 'eventsTable', 'rollupsTable'],
      additionalProperties: false,
      properties: {
        keyspace: { type: 'string', pattern: CQL_IDENTIFIER_PATTERN },
        eventsTable: { type: 'string', pattern: CQL_IDENTIFIER_PATTERN },
        rollupsTable: { type: 'string', pattern: CQL_IDENTIFIER_PATTERN },
        replication: {
          oneOf: [
            {
              type: 'object',
              required: ['class', 'replicationFactor'],
              additionalProperties: false,
              properties: { class: { const: 'SimpleStrategy' }, replicationFactor: int(1, 15) },
            },
            {
              type: 'object',
              required: ['class', 'dataCenters'],
              additionalProperties: false,
              properties: {
                class: { const: 'NetworkTopologyStrategy' },
                dataCenters: {
                  type: 'object',
                  minProperties: 1,
                  propertyNames: { pattern: DATACENTER_PATTERN },
                  additionalProperties: int(0, 15),
                },
              },
            },
          ],
        },
      },
    },
    eventStorage: {
      type: 'object',
      required: [
        'secondsPerBucket',
        'bucketsPerCounter',
        'acceptLimitSeconds',
        'maxFutureSkewSeconds',
        'retentionSeconds',
      ],
      additionalProperties: false,
      properties: {
        secondsPerBucket: int(60, 86400),
        bucketsPerCounter: int(1, 64),
        acceptLimitSeconds: int(1, 300),
        maxFutureSkewSeconds: int(0, 300),
        retentionSeconds: int(3600, 630720000),
      },
    },
    rollup: {
      type: 'object',
      required: [
        'schedule',
        'suspend',
        'coalesceMs',
        'queues',
        'queueCapacity',
        'batchSize',
        'concurrency',
        'settleMarginMs',
      ],
      additionalProperties: false,
      properties: {
        schedule: { type: 'string', minLength: 1 },
        suspend: { type: 'boolean' },
        coalesceMs: int(0, 600000),
        queues: int(1, 256),
        queueCapacity: int(16, 10000000),
        batchSize: int(1, 1024),
        concurrency: int(1, 256),
        settleMarginMs: int(0, 60000),
      },
    },
    cache: {
      type: 'object',
      required: ['keyPrefix', 'ttlSeconds', 'nearCacheSeconds'],
      additionalProperties: false,
      properties: {
        keyPrefix: { type: 'string', pattern: KEY_PREFIX_PATTERN },
        ttlSeconds: int(1, 2592000),
        nearCacheSeconds: int(0, 60),
        servers: { type: 'string', minLength: 1 },
      },
    },
  },
} as const;
