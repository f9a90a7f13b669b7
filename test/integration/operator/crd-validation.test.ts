import { ApiException, CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isDeepStrictEqual, promisify } from 'node:util';
import { installCounterNamespaceCrd } from '../../../operator/crd-install';
import { CRD_API_VERSION, CRD_GROUP, CRD_KIND, CRD_NAME, CRD_PLURAL, CRD_VERSION } from '../../../api/names';
import type { CounterNamespace, CounterNamespaceSpec } from '../../../api/types';
import { ConfigError, defaultSpec, resolveCounterNamespace } from '../../../api/resolve';
import { DEFAULTS } from '../../../api/spec-schema';
import { waitFor } from '../../stack/wait';
import { requireEnv } from '../../support/env';

const FIELD_MANAGER = 'tally-test';

interface Rejection {
  code: number;
  message: string;
  /** The fields the API server names in status.details.causes. */
  fields: string[];
}

/** The refusal a call ends with; fails the test if it succeeds or fails without an HTTP status. */
async function rejection(call: Promise<unknown>): Promise<Rejection> {
  try {
    await call;
  } catch (err) {
    if (!(err instanceof ApiException)) throw err;
    const body = (typeof err.body === 'string' ? JSON.parse(err.body) : err.body) as {
      message?: string;
      details?: { causes?: { field?: string }[] };
    };
    return {
      code: err.code,
      message: body.message ?? '',
      fields: (body.details?.causes ?? []).map((c) => c.field ?? ''),
    };
  }
  throw new Error('expected the API server to refuse the request, but it was accepted');
}

/** The fields Tally's own (file-mode) validation names for the same object: the CRD must agree with it. */
function tallyErrorFields(name: string, spec: unknown): string[] {
  try {
    resolveCounterNamespace({ apiVersion: CRD_API_VERSION, kind: CRD_KIND, metadata: { name }, spec });
  } catch (err) {
    if (err instanceof ConfigError) return err.errors.map((e) => e.field);
    throw err;
  }
  return [];
}

/** The spec the API server stores for `{spec: {}}`, spelled out from DEFAULTS. */
const defaultedSpec = {
  counterType: DEFAULTS.counterType,
  cassandra: { replication: DEFAULTS.replication },
  eventStorage: {
    secondsPerBucket: DEFAULTS.secondsPerBucket,
    bucketsPerCounter: DEFAULTS.bucketsPerCounter,
    acceptLimitSeconds: DEFAULTS.acceptLimitSeconds,
    maxFutureSkewSeconds: DEFAULTS.maxFutureSkewSeconds,
    retentionSeconds: DEFAULTS.retentionSeconds,
  },
  rollup: {
    schedule: DEFAULTS.rollupSchedule,
    suspend: false,
    coalesceMs: DEFAULTS.coalesceMs,
    queues: DEFAULTS.queues,
    queueCapacity: DEFAULTS.queueCapacity,
    batchSize: DEFAULTS.batchSize,
    concurrency: DEFAULTS.concurrency,
    settleMarginMs: DEFAULTS.settleMarginMs,
  },
  cache: {
    ttlSeconds: DEFAULTS.cacheTtlSeconds,
    keyPrefix: DEFAULTS.keyPrefix,
    nearCacheSeconds: DEFAULTS.nearCacheSeconds,
  },
  deletionPolicy: DEFAULTS.deletionPolicy,
};

interface InvalidCase {
  what: string;
  spec?: Record<string, unknown>;
  name?: string;
  /** The field path the API server must name. */
  field: string;
  /** Part of the message, for the rules whose message is ours (CEL). */
  says?: string;
}

const NTS = 'NetworkTopologyStrategy' as const;
const invalid: InvalidCase[] = [
  { what: 'an unknown counter type', spec: { counterType: 'Fast' }, field: 'spec.counterType' },
  { what: 'a counter type that is not a string', spec: { counterType: 3 }, field: 'spec.counterType' },
  {
    what: 'a keyspace that is not a lower-case CQL identifier',
    spec: { cassandra: { keyspace: 'Orders-KS' } },
    field: 'spec.cassandra.keyspace',
  },
  {
    what: "a keyspace of Cassandra's own (system_auth)",
    spec: { cassandra: { keyspace: 'system_auth' } },
    field: 'spec.cassandra.keyspace',
  },
  {
    what: "a keyspace longer than Cassandra's 48 characters",
    spec: { cassandra: { keyspace: 'k'.repeat(49) } },
    field: 'spec.cassandra.keyspace',
  },
  {
    what: 'an unknown replication class',
    spec: { cassandra: { replication: { class: 'LocalStrategy' } } },
    field: 'spec.cassandra.replication.class',
  },
  {
    what: 'a coalesce window over ten minutes',
    spec: { rollup: { coalesceMs: 600001 } },
    field: 'spec.rollup.coalesceMs',
  },
  {
    what: 'a replication factor of 0',
    spec: { cassandra: { replication: { class: 'SimpleStrategy', replicationFactor: 0 } } },
    field: 'spec.cassandra.replication.replicationFactor',
  },
  {
    what: 'a replication factor above 15',
    spec: { cassandra: { replication: { class: 'SimpleStrategy', replicationFactor: 16 } } },
    field: 'spec.cassandra.replication.replicationFactor',
  },
  {
    what: 'a keyspace that is a CQL reserved word',
    spec: { cassandra: { keyspace: 'table' } },
    field: 'spec.cassandra.keyspace',
    says: 'keyspace is a CQL reserved word (such as table, select, keyspace), which Cassandra refuses',
  },
  {
    what: 'SimpleStrategy with dataCenters',
    spec: { cassandra: { replication: { class: 'SimpleStrategy', dataCenters: { dc1: 3 } } } },
    field: 'spec.cassandra.replication.dataCenters',
    says: 'dataCenters is only for NetworkTopologyStrategy',
  },
  {
    what: 'NetworkTopologyStrategy without dataCenters',
    spec: { cassandra: { replication: { class: NTS } } },
    field: 'spec.cassandra.replication.dataCenters',
    says: 'dataCenters is required for NetworkTopologyStrategy',
  },
  {
    what: 'NetworkTopologyStrategy with a replicationFactor',
    spec: { cassandra: { replication: { class: NTS, replicationFactor: 3, dataCenters: { dc1: 3 } } } },
    field: 'spec.cassandra.replication.replicationFactor',
    says: 'replicationFactor is only for SimpleStrategy',
  },
  {
    what: 'NetworkTopologyStrategy with no datacenter in dataCenters',
    spec: { cassandra: { replication: { class: NTS, dataCenters: {} } } },
    field: 'spec.cassandra.replication.dataCenters',
  },
  {
    what: 'a datacenter name with a space',
    spec: { cassandra: { replication: { class: NTS, dataCenters: { 'dc 1': 3 } } } },
    field: 'spec.cassandra.replication.dataCenters',
    says: 'keys must match',
  },
  {
    what: 'a datacenter replication factor above 15',
    spec: { cassandra: { replication: { class: NTS, dataCenters: { dc1: 16 } } } },
    field: 'spec.cassandra.replication.dataCenters.dc1',
  },
  {
    what: 'time buckets shorter than a minute',
    spec: { eventStorage: { secondsPerBucket: 30 } },
    field: 'spec.eventStorage.secondsPerBucket',
  },
  {
    what: 'more than 64 event buckets',
    spec: { eventStorage: { bucketsPerCounter: 65 } },
    field: 'spec.eventStorage.bucketsPerCounter',
  },
  {
    what: 'an accept limit of 0',
    spec: { eventStorage: { acceptLimitSeconds: 0 } },
    field: 'spec.eventStorage.acceptLimitSeconds',
  },
  {
    what: 'a retention under an hour',
    spec: { eventStorage: { retentionSeconds: 1800 } },
    field: 'spec.eventStorage.retentionSeconds',
  },
  {
    what: 'a retention shorter than a time bucket',
    spec: { eventStorage: { secondsPerBucket: 7200, retentionSeconds: 3600 } },
    field: 'spec.eventStorage.retentionSeconds',
    says: 'retentionSeconds must be at least secondsPerBucket',
  },
  {
    what: 'a rollup schedule that is not cron',
    spec: { rollup: { schedule: 'every five minutes' } },
    field: 'spec.rollup.schedule',
  },
  {
    what: 'a rollup schedule with a time zone prefix (CronJob wants timeZone for that)',
    spec: { rollup: { schedule: 'TZ=UTC 0 * * * *' } },
    field: 'spec.rollup.schedule',
  },
  { what: 'suspend that is not a boolean', spec: { rollup: { suspend: 'yes' } }, field: 'spec.rollup.suspend' },
  { what: 'no rollup queues', spec: { rollup: { queues: 0 } }, field: 'spec.rollup.queues' },
  { what: 'a cache TTL of 0', spec: { cache: { ttlSeconds: 0 } }, field: 'spec.cache.ttlSeconds' },
  {
    what: 'a near cache longer than a minute',
    spec: { cache: { nearCacheSeconds: 61 } },
    field: 'spec.cache.nearCacheSeconds',
  },
  {
    what: 'a cache key prefix with a space',
    spec: { cache: { keyPrefix: 'my counters' } },
    field: 'spec.cache.keyPrefix',
  },
  { what: 'an unknown deletion policy', spec: { deletionPolicy: 'Orphan' }, field: 'spec.deletionPolicy' },
  {
    what: 'a name with a dot (a DNS subdomain, not a label)',
    name: 'orders.eu',
    field: 'metadata.name',
    says: 'metadata.name must be a DNS label',
  },
  {
    what: 'a name longer than 63 characters',
    name: 'n'.repeat(64),
    field: 'metadata.name',
    says: 'metadata.name must be a DNS label',
  },
];

describe('the CounterNamespace CRD on a real API server', () => {
  requireEnv('KUBECONFIG');
  const kc = new KubeConfig();
  kc.loadFromDefault();
  const core = kc.makeApiClient(CoreV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const run = randomUUID().slice(0, 8);
  const namespace = `tally-crd-${run}`;
  const where = { group: CRD_GROUP, version: CRD_VERSION, plural: CRD_PLURAL, namespace };

  const manifest = (name: string, spec?: unknown): CounterNamespace =>
    ({
      apiVersion: CRD_API_VERSION,
      kind: CRD_KIND,
      metadata: { name },
      ...(spec === undefined ? {} : { spec }),
    }) as CounterNamespace;
  const create = (body: unknown, fieldValidation?: string) =>
    custom.createNamespacedCustomObject({ ...where, body, fieldManager: FIELD_MANAGER, fieldValidation });
  const read = async (name: string) => (await custom.getNamespacedCustomObject({ ...where, name })) as CounterNamespace;
  /** Reads the object, changes its spec and PUTs it back (what `kubectl edit` does). */
  const update = async (name: string, change: (spec: CounterNamespaceSpec) => void) => {
    const current = await read(name);
    change(current.spec);
    return (await custom.replaceNamespacedCustomObject({ ...where, name, body: current })) as CounterNamespace;
  };

  beforeAll(async () => {
    // The operator's own installer: server-side apply with the body as is, then wait until Established.
    await installCounterNamespaceCrd(kc, FIELD_MANAGER);
    await core.createNamespace({ body: { metadata: { name: namespace, labels: { 'tally.dev/test': 'crd' } } } });
    // Established says the names are accepted; the resource (and, after an update of the CRD, its new schema) is
    // served a moment later: wait until defaults and CEL rules both show in dry runs.
    const dryRun = (body: unknown) => custom.createNamespacedCustomObject({ ...where, body, dryRun: 'All' });
    await waitFor(`${CRD_NAME} to serve this schema`, async () => {
      const defaulted = (await dryRun(manifest('probe', {}))) as CounterNamespace;
      const refused = await rejection(dryRun(manifest('probe.dotted', {})));
      // (Through JSON: resolve.ts copies with structuredClone, whose objects come from outside jest's realm.)
      const expected: unknown = JSON.parse(JSON.stringify(defaultSpec({}).spec));
      if (refused.code === 422 && isDeepStrictEqual(defaulted.spec, expected)) return true;
      // Thrown, so a timeout says what was served last.
      throw new Error(`spec ${JSON.stringify(defaulted.spec)}, a dotted name refused with ${refused.code}`);
    });
  });

  afterAll(async () => {
    // The CRD stays: other test files use it. The namespace takes every CounterNamespace made here with it.
    await core.deleteNamespace({ name: namespace }).catch(() => undefined);
  });

  describe('refuses invalid CounterNamespaces with 422, naming the field', () => {
    it.each(invalid.map((c) => [c.what, c] as const))('%s', async (_what, c) => {
      const name = c.name ?? `invalid-${run}`;
      const refused = await rejection(create(manifest(name, c.spec ?? {})));
      expect(refused.code).toBe(422);
      expect(refused.message).toContain(`${c.field}: `);
      expect(refused.fields).toContain(c.field);
      if (c.says) expect(refused.message).toContain(c.says);
      // Tally's own validation (file mode, and the operator's resolve) refuses it too, naming the same field.
      expect(tallyErrorFields(name, c.spec ?? {})).toContain(c.field);
    });

    it('has at least a dozen cases', () => {
      expect(invalid.length).toBeGreaterThanOrEqual(12);
    });
  });

  it('refuses unknown fields under strict field validation (kubectl apply does that), and prunes them otherwise', async () => {
    const refused = await rejection(create(manifest('unknown-field', { cache: { ttl: 60 } }), 'Strict'));
    expect(refused.code).toBe(400);
    expect(refused.message).toContain('unknown field "spec.cache.ttl"');
    expect(tallyErrorFields('unknown-field', { cache: { ttl: 60 } })).toEqual(['spec.cache.ttl']);

    await create(manifest('pruned', { cache: { ttl: 60 } }), 'Ignore');
    expect((await read('pruned')).spec.cache).toEqual(defaultedSpec.cache);
  });

  it('fills in every default of a minimal CounterNamespace, the same ones Tally applies in file mode', async () => {
    await create(manifest('minimal', {}));
    const stored = await read('minimal');
    expect(stored.spec).toEqual(defaultedSpec);
    expect(stored.spec).toEqual(defaultSpec({}).spec);
    // Without any spec at all, too.
    await create(manifest('no-spec'));
    expect((await read('no-spec')).spec).toEqual(defaultedSpec);
    // Replication given without a class gets the default class (so `required: [class]` never bites).
    const factorOnly = { cassandra: { replication: { replicationFactor: 3 } } };
    await create(manifest('factor-only', factorOnly));
    const expected = { class: 'SimpleStrategy', replicationFactor: 3 };
    expect((await read('factor-only')).spec.cassandra.replication).toEqual(expected);
    expect(defaultSpec(factorOnly).spec.cassandra.replication).toEqual(expected);
  });

  describe('updates', () => {
    const fixed = 'fixed';
    const derived = 'derived';
    const nts = 'multi-dc';
    const keyspace = `ks_${run}`;

    beforeAll(async () => {
      await create(
        manifest(fixed, {
          cassandra: { keyspace, replication: { class: 'SimpleStrategy', replicationFactor: 1 } },
          eventStorage: { secondsPerBucket: 1200, bucketsPerCounter: 8 },
        }),
      );
      await create(manifest(derived, {}));
      await create(manifest(nts, { cassandra: { replication: { class: NTS, dataCenters: { dc1: 3 } } } }));
    });

    const immutable: [string, string, string, (spec: CounterNamespaceSpec) => void][] = [
      ['changing the keyspace', fixed, 'spec.cassandra.keyspace', (s) => (s.cassandra.keyspace = 'elsewhere')],
      ['removing the keyspace', fixed, 'spec.cassandra.keyspace', (s) => delete s.cassandra.keyspace],
      ['adding a keyspace', derived, 'spec.cassandra.keyspace', (s) => (s.cassandra.keyspace = 'tally_derived')],
      [
        'changing the replication class',
        fixed,
        'spec.cassandra.replication.class',
        (s) => (s.cassandra.replication = { class: NTS, dataCenters: { dc1: 1 } }),
      ],
      [
        'changing secondsPerBucket',
        fixed,
        'spec.eventStorage.secondsPerBucket',
        (s) => (s.eventStorage.secondsPerBucket = 600),
      ],
      [
        'removing secondsPerBucket (its default differs)',
        fixed,
        'spec.eventStorage.secondsPerBucket',
        (s) => delete (s.eventStorage as Partial<CounterNamespaceSpec['eventStorage']>).secondsPerBucket,
      ],
      [
        'changing bucketsPerCounter',
        fixed,
        'spec.eventStorage.bucketsPerCounter',
        (s) => (s.eventStorage.bucketsPerCounter = 16),
      ],
    ];

    it.each(immutable)('refuses %s', async (_what, name, field, change) => {
      const before = await read(name);
      const refused = await rejection(update(name, change));
      expect(refused.code).toBe(422);
      expect(refused.fields).toContain(field);
      expect(refused.message).toContain(`${field}: `);
      expect(refused.message).toContain(`${field} is immutable`);
      expect((await read(name)).spec).toEqual(before.spec);
    });

    describe('the accept limit may go down, never up (rollups have passed the times a larger one would accept)', () => {
      const field = 'spec.eventStorage.acceptLimitSeconds';
      const limit = (s: CounterNamespaceSpec) => s.eventStorage.acceptLimitSeconds;
      const setLimit = (value: number) => (s: CounterNamespaceSpec) => (s.eventStorage.acceptLimitSeconds = value);
      const removeLimit = (s: CounterNamespaceSpec) =>
        delete (s.eventStorage as Partial<CounterNamespaceSpec['eventStorage']>).acceptLimitSeconds;

      const refusesRaising = async (name: string, change: (spec: CounterNamespaceSpec) => void) => {
        const before = await read(name);
        const refused = await rejection(update(name, change));
        expect(refused.code).toBe(422);
        expect(refused.fields).toContain(field);
        expect(refused.message).toContain(`${field}: `);
        expect(refused.message).toContain(`${field} cannot be raised`);
        expect(refused.message).toContain('would never be counted');
        expect(refused.message).toContain('create a new CounterNamespace');
        expect((await read(name)).spec).toEqual(before.spec);
      };

      beforeAll(async () => {
        // The probe above passes on a CRD served from before this rule existed: wait until a dry run shows it too.
        await create(manifest('accept-probe', {}));
        const body = await read('accept-probe');
        setLimit(DEFAULTS.acceptLimitSeconds + 1)(body.spec);
        const dryRun = () =>
          custom.replaceNamespacedCustomObject({ ...where, name: 'accept-probe', body, dryRun: 'All' });
        await waitFor(`${CRD_NAME} to serve the accept limit's transition rule`, async () => {
          const refused = await rejection(dryRun()).catch(() => undefined);
          return refused?.code === 422;
        });
      });

      it('refuses raising it, saying why and what to do instead', async () => {
        await create(manifest('accept-raised', { eventStorage: { acceptLimitSeconds: 30 } }));
        await refusesRaising('accept-raised', setLimit(31));
        await refusesRaising('accept-raised', setLimit(300));
      });

      it('refuses raising the default by setting it, and removing it when that puts back a larger default', async () => {
        await create(manifest('accept-default', {}));
        await refusesRaising('accept-default', setLimit(DEFAULTS.acceptLimitSeconds + 1));
        await create(manifest('accept-removed', { eventStorage: { acceptLimitSeconds: 2 } }));
        await refusesRaising('accept-removed', removeLimit);
      });

      it('accepts it unchanged beside other changes, lowered, and removed when the default is smaller', async () => {
        const name = 'accept-lowered';
        await create(manifest(name, { eventStorage: { acceptLimitSeconds: 30 } }));
        const unchanged = await update(name, (s) => (s.eventStorage.retentionSeconds = 2 * 86400));
        expect([limit(unchanged.spec), unchanged.spec.eventStorage.retentionSeconds]).toEqual([30, 2 * 86400]);
        expect(limit((await update(name, setLimit(10))).spec)).toBe(10);
        expect(limit((await update(name, removeLimit)).spec)).toBe(DEFAULTS.acceptLimitSeconds);
        expect(limit((await update(name, setLimit(1))).spec)).toBe(1);
      });

      it('lets the settle margin go either way: a smaller one moves later checkpoints only, never what is accepted', async () => {
        const name = 'settle-margin';
        await create(manifest(name, {}));
        expect((await update(name, (s) => (s.rollup.settleMarginMs = 500))).spec.rollup.settleMarginMs).toBe(500);
        expect((await update(name, (s) => (s.rollup.settleMarginMs = 5000))).spec.rollup.settleMarginMs).toBe(5000);
      });
    });

    it('accepts a new retention and a new replication factor', async () => {
      const updated = await update(fixed, (s) => {
        s.eventStorage.retentionSeconds = 3 * 86400;
        s.cassandra.replication.replicationFactor = 3;
      });
      expect(updated.spec.eventStorage.retentionSeconds).toBe(3 * 86400);
      expect(updated.spec.cassandra.replication.replicationFactor).toBe(3);
      expect(updated.spec.cassandra.keyspace).toBe(keyspace);
      expect(updated.metadata.generation).toBe(2);
    });

    it('accepts changed and added datacenters under NetworkTopologyStrategy', async () => {
      const updated = await update(nts, (s) => (s.cassandra.replication.dataCenters = { dc1: 5, dc2: 3 }));
      expect(updated.spec.cassandra.replication).toEqual({ class: NTS, dataCenters: { dc1: 5, dc2: 3 } });
    });

    it('still applies the cross-field rules to updates', async () => {
      const refused = await rejection(update(fixed, (s) => (s.cassandra.replication.dataCenters = { dc1: 3 })));
      expect(refused.code).toBe(422);
      expect(refused.fields).toEqual(['spec.cassandra.replication.dataCenters']);
      expect(refused.message).toContain('dataCenters is only for NetworkTopologyStrategy');
    });
  });

  it('checks the status the operator writes, and kubectl get cns shows the printer columns', async () => {
    const name = 'printed';
    await create(manifest(name, { counterType: 'Accurate' }));
    const current = await read(name);
    const status = {
      observedGeneration: 1,
      keyspace: `tally_${name}`,
      conditions: [
        {
          type: 'Ready',
          status: 'False',
          reason: 'CassandraUnavailable',
          message: 'no host reachable',
          observedGeneration: 1,
          lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
        },
      ],
    };
    const badStatus = { ...status, conditions: [{ ...status.conditions[0], status: 'Maybe' }] };
    const refused = await rejection(
      custom.replaceNamespacedCustomObjectStatus({ ...where, name, body: { ...current, status: badStatus } }),
    );
    expect(refused.code).toBe(422);
    expect(refused.message).toContain('status.conditions[0].status: ');
    await custom.replaceNamespacedCustomObjectStatus({ ...where, name, body: { ...current, status } });

    const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-kubectl-'));
    try {
      const kubectl = (...args: string[]) =>
        promisify(execFile)(
          'kubectl',
          ['--kubeconfig', requireEnv('KUBECONFIG'), '--cache-dir', cacheDir, '--namespace', namespace, ...args],
          { timeout: 30_000 },
        );
      const { stdout } = await kubectl('get', 'cns', name);
      const [header, row] = stdout.trim().split('\n');
      expect(header!.split(/\s+/)).toEqual(['NAME', 'TYPE', 'KEYSPACE', 'READY', 'REASON', 'ROLLUP', 'AGE']);
      expect(row!.split(/\s+/).slice(0, 5)).toEqual([
        name,
        'Accurate',
        `tally_${name}`,
        'False',
        'CassandraUnavailable',
      ]);
      // The category lists it too.
      expect((await kubectl('get', 'tally', '-o', 'name')).stdout).toContain(`counternamespace.tally.dev/${name}`);
    } finally {
      fs.rmSync(cacheDir, { recursive: true, force: true });
    }
  });
});
