/**
 * The CounterNamespace spec as a JSON Schema: the one source for the CRD's OpenAPI schema (crds/ is generated from
 * it), for the defaults the API server applies, and for file mode, where the runtime applies the same defaults with
 * Ajv. Every field is typed and there is no $ref; ./crd.ts makes it structural for Kubernetes (drops
 * `additionalProperties: false`, turns `propertyNames` into CEL) and adds the CEL rules (immutability, fields that may only go down, cross-field).
 */

export const COUNTER_TYPES = ['BestEffort', 'Eventual', 'Accurate'] as const;
export type CounterType = (typeof COUNTER_TYPES)[number];

/** Cassandra identifiers we create: lower case, so they never need quoting, and within Cassandra's 48-character limit. */
export const CQL_IDENTIFIER_PATTERN = '^[a-z][a-z0-9_]{0,47}$';
/**
 * A CQL identifier that does not start with `system` (system, system_auth, system_schema, ...: Cassandra's own
 * keyspaces). Spelt out prefix by prefix, since the API server's regular expressions (RE2) have no lookahead.
 */
export const KEYSPACE_PATTERN = notStartingWith('system');

function notStartingWith(prefix: string): string {
  /** a-z without one letter, as ranges: "a-rt-z" for s. */
  const lettersBut = (c: string) => {
    const before = c === 'a' ? '' : c === 'b' ? 'a' : `a-${String.fromCharCode(c.charCodeAt(0) - 1)}`;
    const after = c === 'z' ? '' : c === 'y' ? 'z' : `${String.fromCharCode(c.charCodeAt(0) + 1)}-z`;
    return before + after;
  };
  const alternatives = [`[${lettersBut(prefix[0]!)}][a-z0-9_]{0,47}`];
  for (let i = 1; i < prefix.length; i++) {
    alternatives.push(`${prefix.slice(0, i)}(?:[${lettersBut(prefix[i]!)}0-9_][a-z0-9_]{0,${47 - i}})?`);
  }
  return `^(?:${alternatives.join('|')})$`;
}

/** Datacenter names as Cassandra snitches report them; used as map keys in NetworkTopologyStrategy options. */
export const DATACENTER_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$';
/** memcached keys may not contain whitespace or control characters. */
export const KEY_PREFIX_PATTERN = '^[A-Za-z0-9_.:-]{1,32}$';
/**
 * Five-field cron, as CronJob accepts, or a @macro: minute and hour take digits and * / , -; day of month also ?;
 * month and day of week also names (JAN, MON). No TZ= prefix (CronJob wants its timeZone field for that). Ranges
 * (minute 61) are left to the CronJob API, whose rejection the operator reports as Ready=False, ApplyRejected.
 */
export const CRON_PATTERN =
  '^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|' +
  '[0-9*/,-]+\\s+[0-9*/,-]+\\s+[0-9*/,?-]+\\s+[0-9A-Za-z*/,-]+\\s+[0-9A-Za-z*/,?-]+)$';

export const DEFAULTS = {
  counterType: 'Eventual' as CounterType,
  replication: { class: 'SimpleStrategy', replicationFactor: 1 },
  secondsPerBucket: 600,
  bucketsPerCounter: 4,
  acceptLimitSeconds: 5,
  maxFutureSkewSeconds: 5,
  retentionSeconds: 7 * 24 * 3600,
  rollupSchedule: '*/5 * * * *',
  coalesceMs: 10000,
  queues: 8,
  queueCapacity: 100000,
  batchSize: 32,
  concurrency: 8,
  settleMarginMs: 2000,
  cacheTtlSeconds: 3600,
  nearCacheSeconds: 1,
  keyPrefix: 'tally',
  deletionPolicy: 'Retain',
} as const;

export const counterNamespaceSpecSchema = {
  type: 'object',
  description: 'Desired state of a counter namespace: its counter type, storage, rollup and cache settings.',
  properties: {
    counterType: {
      type: 'string',
      enum: [...COUNTER_TYPES],
      default: DEFAULTS.counterType,
      description:
        'BestEffort: Memcached only, fast, approximate. Eventual: durable event log + rollups, reads lag by seconds. Accurate: last rollup + live deltas, exact at read time.',
    },
    cassandra: {
      type: 'object',
      default: {},
      properties: {
        keyspace: {
          type: 'string',
          pattern: KEYSPACE_PATTERN,
          maxLength: 48,
          description:
            'Keyspace for this namespace: a lower-case CQL identifier not starting with system (those are Cassandra keyspaces) and not a CQL reserved word. Default: tally_ + the object name with - and . as _. Immutable.',
        },
        replication: {
          type: 'object',
          default: DEFAULTS.replication,
          properties: {
            class: { type: 'string', enum: ['SimpleStrategy', 'NetworkTopologyStrategy'], default: 'SimpleStrategy' },
            replicationFactor: { type: 'integer', minimum: 1, maximum: 15, description: 'For SimpleStrategy.' },
            dataCenters: {
              type: 'object',
              description: 'For NetworkTopologyStrategy: datacenter name to replication factor.',
              propertyNames: { pattern: DATACENTER_PATTERN },
              additionalProperties: { type: 'integer', minimum: 0, maximum: 15 },
              maxProperties: 16,
              minProperties: 1,
            },
          },
          required: ['class'],
          additionalProperties: false,
        },
      },
      additionalProperties: false,
    },
    eventStorage: {
      type: 'object',
      default: {},
      properties: {
        secondsPerBucket: {
          type: 'integer',
          minimum: 60,
          maximum: 86400,
          default: DEFAULTS.secondsPerBucket,
          description:
            'Width of an event-log time bucket (one partition per counter, bucket and event bucket). Immutable.',
        },
        bucketsPerCounter: {
          type: 'integer',
          minimum: 1,
          maximum: 64,
          default: DEFAULTS.bucketsPerCounter,
          description:
            'Event buckets a counter is spread over in each time bucket, by a hash of the idempotency token. Immutable.',
        },
        acceptLimitSeconds: {
          type: 'integer',
          minimum: 1,
          maximum: 300,
          default: DEFAULTS.acceptLimitSeconds,
          description:
            'Events older than this are rejected, so windows older than it are immutable and safe to roll up. May be lowered, not raised, after creation (rollups have passed the times a larger limit would accept).',
        },
        maxFutureSkewSeconds: {
          type: 'integer',
          minimum: 0,
          maximum: 300,
          default: DEFAULTS.maxFutureSkewSeconds,
          description: 'How far in the future an idempotency token generation_time may be (client clock skew).',
        },
        retentionSeconds: {
          type: 'integer',
          minimum: 3600,
          maximum: 630720000,
          default: DEFAULTS.retentionSeconds,
          description: 'How long events are kept (table TTL). Rollups outlive it.',
        },
      },
      additionalProperties: false,
    },
    rollup: {
      type: 'object',
      default: {},
      properties: {
        schedule: {
          type: 'string',
          pattern: CRON_PATTERN,
          default: DEFAULTS.rollupSchedule,
          description: 'Cron schedule of the sweeper that rolls up counters whose triggers were lost.',
        },
        suspend: { type: 'boolean', default: false, description: 'Suspends the sweeper CronJob.' },
        coalesceMs: {
          type: 'integer',
          minimum: 0,
          maximum: 600000,
          default: DEFAULTS.coalesceMs,
          description: 'A counter is rolled up at most once per this window per runtime process.',
        },
        queues: { type: 'integer', minimum: 1, maximum: 256, default: DEFAULTS.queues },
        queueCapacity: {
          type: 'integer',
          minimum: 16,
          maximum: 10000000,
          default: DEFAULTS.queueCapacity,
          description: 'Pending rollup triggers kept per runtime process; beyond it triggers are dropped and counted.',
        },
        batchSize: { type: 'integer', minimum: 1, maximum: 1024, default: DEFAULTS.batchSize },
        concurrency: { type: 'integer', minimum: 1, maximum: 256, default: DEFAULTS.concurrency },
        settleMarginMs: {
          type: 'integer',
          minimum: 0,
          maximum: 60000,
          default: DEFAULTS.settleMarginMs,
          description:
            'Added to the accept limit before a window counts as immutable: covers clock skew and write latency.',
        },
      },
      additionalProperties: false,
    },
    cache: {
      type: 'object',
      default: {},
      properties: {
        ttlSeconds: {
          type: 'integer',
          minimum: 1,
          maximum: 2592000,
          default: DEFAULTS.cacheTtlSeconds,
          description: 'TTL of cached rollups and of BestEffort counters.',
        },
        keyPrefix: { type: 'string', pattern: KEY_PREFIX_PATTERN, default: DEFAULTS.keyPrefix },
        nearCacheSeconds: {
          type: 'integer',
          minimum: 0,
          maximum: 60,
          default: DEFAULTS.nearCacheSeconds,
          description:
            'How long each runtime keeps an Eventual checkpoint in its own memory before asking Memcached again; added to the lag of Eventual reads. 0 turns the near cache off.',
        },
      },
      additionalProperties: false,
    },
    deletionPolicy: {
      type: 'string',
      enum: ['Retain', 'Delete'],
      default: DEFAULTS.deletionPolicy,
      description: 'Delete drops the keyspace when the CounterNamespace is deleted (only if it created it).',
    },
  },
  additionalProperties: false,
} as const;
