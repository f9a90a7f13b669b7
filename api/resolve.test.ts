import { defaultKeyspace, resolveCounterNamespace, validateNamespaceConfig, ConfigError } from './resolve';
import { DEFAULTS } from './spec-schema';

const manifest = (name: string, spec: unknown) => ({
  apiVersion: 'tally.dev/v1alpha1',
  kind: 'CounterNamespace',
  metadata: { name },
  spec,
});

function errorFields(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).errors.map((e) => `${e.field}: ${e.message}`);
  }
  throw new Error('expected a ConfigError');
}

describe('resolveCounterNamespace', () => {
  it('applies every default to an empty spec, as the API server would', () => {
    const config = resolveCounterNamespace(manifest('orders', undefined));
    expect(config).toEqual({
      apiVersion: 'tally.dev/v1alpha1',
      kind: 'CounterNamespaceConfig',
      name: 'orders',
      counterType: 'Eventual',
      cassandra: {
        keyspace: 'tally_orders',
        replication: { class: 'SimpleStrategy', replicationFactor: 1 },
        eventsTable: 'events',
        rollupsTable: 'rollups',
      },
      eventStorage: {
        secondsPerBucket: 600,
        bucketsPerCounter: 4,
        acceptLimitSeconds: 5,
        maxFutureSkewSeconds: 5,
        retentionSeconds: 604800,
      },
      rollup: {
        schedule: DEFAULTS.rollupSchedule,
        suspend: false,
        coalesceMs: 10000,
        queues: 8,
        queueCapacity: 100000,
        batchSize: 32,
        concurrency: 8,
        settleMarginMs: 2000,
      },
      cache: { keyPrefix: 'tally', ttlSeconds: 3600, nearCacheSeconds: 1 },
    });
    expect(() => validateNamespaceConfig(config)).not.toThrow();
  });

  it('keeps what the spec sets and fills in the rest', () => {
    const config = resolveCounterNamespace(
      manifest('eu-payments', {
        counterType: 'Accurate',
        cassandra: {
          keyspace: 'pay',
          replication: { class: 'NetworkTopologyStrategy', dataCenters: { dc1: 3, dc2: 2 } },
        },
        eventStorage: { secondsPerBucket: 60 },
      }),
    );
    expect(config.counterType).toBe('Accurate');
    expect(config.cassandra.keyspace).toBe('pay');
    expect(config.cassandra.replication).toEqual({ class: 'NetworkTopologyStrategy', dataCenters: { dc1: 3, dc2: 2 } });
    expect(config.eventStorage.secondsPerBucket).toBe(60);
    expect(config.eventStorage.bucketsPerCounter).toBe(4);
  });

  it('derives a valid keyspace from any DNS label', () => {
    expect(defaultKeyspace('a-b')).toBe('tally_a_b');
    expect(defaultKeyspace('x'.repeat(63))).toHaveLength(48);
  });

  it.each([
    [{ counterType: 'Fast' }, 'spec.counterType: must be one of "BestEffort", "Eventual", "Accurate"'],
    [{ countertype: 'Eventual' }, 'spec.countertype: is not a known field'],
    [{ eventStorage: { secondsPerBucket: 5 } }, 'spec.eventStorage.secondsPerBucket: must be >= 60'],
    [{ eventStorage: { bucketsPerCounter: 1.5 } }, 'spec.eventStorage.bucketsPerCounter: must be integer'],
    [{ cassandra: { keyspace: 'Robert"); DROP' } }, 'spec.cassandra.keyspace: must match pattern'],
    [{ cassandra: { keyspace: 'system_auth' } }, 'spec.cassandra.keyspace: must match pattern'],
    [{ cassandra: { keyspace: 'system' } }, 'spec.cassandra.keyspace: must match pattern'],
    [
      { cassandra: { replication: { class: 'NetworkTopologyStrategy' } } },
      'spec.cassandra.replication.dataCenters: is required for NetworkTopologyStrategy',
    ],
    [
      { cassandra: { replication: { class: 'SimpleStrategy', dataCenters: { dc1: 1 } } } },
      'spec.cassandra.replication.dataCenters: is only for NetworkTopologyStrategy',
    ],
    [
      { eventStorage: { secondsPerBucket: 7200, retentionSeconds: 3600 } },
      'spec.eventStorage.retentionSeconds: must be at least secondsPerBucket',
    ],
    [{ rollup: { schedule: 'often' } }, 'spec.rollup.schedule: must match pattern'],
    [{ rollup: { schedule: 'TZ=UTC 0 * * * *' } }, 'spec.rollup.schedule: must match pattern'],
    [{ rollup: { schedule: 'x * * * *' } }, 'spec.rollup.schedule: must match pattern'],
    [{ cache: { keyPrefix: 'has space' } }, 'spec.cache.keyPrefix: must match pattern'],
    [{ cache: { nearCacheSeconds: 61 } }, 'spec.cache.nearCacheSeconds: must be <= 60'],
    [{ cache: { nearCacheSeconds: -1 } }, 'spec.cache.nearCacheSeconds: must be >= 0'],
  ])('rejects %j naming the field', (spec, expected) => {
    const errors = errorFields(() => resolveCounterNamespace(manifest('bad', spec)));
    expect(errors.some((e) => e.startsWith(expected))).toBe(true);
  });

  it('rejects a name that is not a DNS label', () => {
    expect(errorFields(() => resolveCounterNamespace(manifest('Bad_Name', {})))).toEqual([
      expect.stringMatching(/^metadata\.name: must match/),
    ]);
  });
});

describe('validateNamespaceConfig', () => {
  it('rejects a resolved document with a missing or wrong field, naming it', () => {
    const config = resolveCounterNamespace(manifest('orders', {})) as unknown as Record<
      string,
      Record<string, unknown>
    >;
    const broken = structuredClone(config);
    delete broken.eventStorage!.retentionSeconds;
    broken.cache!.ttlSeconds = 0;
    expect(errorFields(() => validateNamespaceConfig(broken))).toEqual(
      expect.arrayContaining(['eventStorage.retentionSeconds: is required', 'cache.ttlSeconds: must be >= 1']),
    );
  });
});
