import { ApiException } from '@kubernetes/client-node';
import { ConditionType, EventReason, Reason } from '../../api/conditions';
import { FINALIZER } from '../../api/names';
import type { CounterNamespace } from '../../api/types';
import { specOrMetadataChanged } from '../../lib/kube/predicates';
import { FakeKubeApi, FakeSchemaStore, counterNamespace, operatorConfig, silentLog } from './fakes';
import { Reconciler } from './reconciler';

const KEY = 'team-a/orders';
const apiError = (code: number, message: string) => new ApiException(code, 'x', JSON.stringify({ message }), {});

describe('Reconciler: the checklist over fake Kubernetes and Cassandra', () => {
  let kube: FakeKubeApi;
  let schema: FakeSchemaStore;
  let reconciler: Reconciler;
  beforeEach(() => {
    kube = new FakeKubeApi();
    schema = new FakeSchemaStore();
    // As in the operator, the object is read from what the "API server" has now.
    reconciler = new Reconciler({
      kube,
      schema,
      operator: operatorConfig(),
      log: silentLog,
      get: (namespace, name) => kube.getCounterNamespace(namespace, name),
    });
    kube.put(counterNamespace('orders'));
  });
  const stored = (): CounterNamespace => kube.stored(counterNamespace('orders'));
  const conditionOf = (type: string) => stored().status?.conditions?.find((c) => c.type === type);

  it('takes a new CounterNamespace to Ready in one reconcile, writing status at the end (and, first, that it creates the keyspace)', async () => {
    expect(await reconciler.reconcile(KEY)).toEqual({ kind: 'done' });
    const cns = stored();
    expect(cns.metadata.finalizers).toEqual([FINALIZER]);
    expect(kube.statusWrites).toHaveLength(2);
    expect(kube.statusWrites[0]).toEqual({ createdKeyspace: 'tally_orders' });
    expect(cns.status?.createdKeyspace).toBe('tally_orders');
    expect(cns.status?.observedGeneration).toBe(1);
    expect(cns.status?.conditions?.map((c) => [c.type, c.status, c.reason])).toEqual([
      [ConditionType.Ready, 'True', Reason.Ready],
      [ConditionType.KeyspaceReady, 'True', Reason.KeyspaceCreated],
      [ConditionType.TablesReady, 'True', Reason.TablesCreated],
      [ConditionType.CacheConfigured, 'True', Reason.ConfigMapApplied],
      [ConditionType.RollupScheduled, 'True', Reason.CronJobApplied],
      [ConditionType.RollupHealthy, 'Unknown', Reason.RollupPending],
    ]);
    expect(cns.status?.conditions?.every((c) => c.observedGeneration === 1)).toBe(true);
    expect(schema.keyspaces.get('tally_orders')?.ownership?.owner).toBe('uid-orders');
    expect(kube.applied.size).toBe(2);
  });

  it('is idempotent: reconciling again changes nothing, writes no status and records no Event', async () => {
    await reconciler.reconcile(KEY);
    const after = {
      status: stored().status,
      applied: structuredClone([...kube.applied]),
      keyspaces: structuredClone([...schema.keyspaces]),
    };
    const writes = {
      status: kube.statusWrites.length,
      finalizers: kube.finalizerWrites.length,
      events: kube.events.length,
    };

    expect(await reconciler.reconcile(KEY)).toEqual({ kind: 'done' });
    expect(stored().status).toEqual(after.status);
    expect([...kube.applied]).toEqual(after.applied);
    expect([...schema.keyspaces]).toEqual(after.keyspaces);
    expect(kube.statusWrites).toHaveLength(writes.status);
    expect(kube.finalizerWrites).toHaveLength(writes.finalizers);
    expect(kube.events).toHaveLength(writes.events);
  });

  it('stops once Ready: the changes its own writes cause wake it once more at most, and then never again', async () => {
    // The work queue as the operator feeds it: a watch update that changes spec or metadata enqueues the key again.
    let queued = true;
    let reconciles = 0;
    while (queued && reconciles < 10) {
      queued = false;
      const before = stored();
      expect(await reconciler.reconcile(KEY)).toEqual({ kind: 'done' });
      reconciles++;
      const now = stored();
      if (now.metadata.resourceVersion !== before.metadata.resourceVersion && specOrMetadataChanged(now, before))
        queued = true;
    }
    expect(reconciles).toBe(2); // the finalizer is a metadata change; the status write is not
    expect(kube.statusWrites).toHaveLength(2); // the keyspace record and the status; the second reconcile wrote none
    expect(conditionOf(ConditionType.Ready)?.status).toBe('True');
  });

  it('turns Ready False with the reason of the step that stopped, keeping the generation it last completed', async () => {
    await reconciler.reconcile(KEY);
    const cns = stored();
    cns.metadata.generation = 2;
    kube.put(cns);
    schema.down = new Error('All host(s) tried for query failed');

    const result = await reconciler.reconcile(KEY);
    expect(result.kind).toBe('error');
    expect(conditionOf(ConditionType.Ready)).toMatchObject({ status: 'False', reason: Reason.CassandraUnavailable });
    expect(conditionOf(ConditionType.KeyspaceReady)).toMatchObject({
      status: 'Unknown',
      reason: Reason.CassandraUnavailable,
    });
    expect(stored().status?.observedGeneration).toBe(1);

    schema.down = undefined;
    expect(await reconciler.reconcile(KEY)).toEqual({ kind: 'done' });
    expect(conditionOf(ConditionType.Ready)?.status).toBe('True');
    expect(stored().status?.observedGeneration).toBe(2);
  });

  it('says which step failed on Ready when that step set no condition of its own, every condition starting Unknown', async () => {
    kube.failures.setFinalizers = [apiError(409, 'the object has been modified')];
    const result = await reconciler.reconcile(KEY);
    expect(result).toEqual({ kind: 'error', error: expect.any(Error) });
    expect(conditionOf(ConditionType.Ready)).toMatchObject({
      status: 'False',
      reason: Reason.ReconcileFailed,
      message: 'finalizer: while adding the finalizer: HTTP 409: the object has been modified',
    });
    for (const type of [ConditionType.KeyspaceReady, ConditionType.TablesReady, ConditionType.CacheConfigured]) {
      expect(conditionOf(type)).toMatchObject({ status: 'Unknown', reason: Reason.Reconciling });
    }
    expect(schema.calls).toEqual([]);
  });

  it('creates no keyspace when it cannot record that it creates one, saying so on Ready', async () => {
    const err = apiError(500, 'etcdserver: request timed out');
    kube.failures.patchStatus = [err];
    const result = await reconciler.reconcile(KEY);
    expect(result.kind).toBe('error');
    const error = (result as { error: Error }).error;
    expect(error.message).toBe(
      'while recording that this object creates keyspace tally_orders: HTTP 500: etcdserver: request timed out',
    );
    expect(error.cause).toBe(err);
    expect(schema.keyspaces.has('tally_orders')).toBe(false);
    expect(conditionOf(ConditionType.Ready)).toMatchObject({
      status: 'False',
      reason: Reason.ReconcileFailed,
      message: error.message,
    });
    expect(stored().status?.createdKeyspace).toBeUndefined();
  });

  it('retries when the status cannot be written, but not when the object is gone meanwhile', async () => {
    await reconciler.reconcile(KEY);
    const changed = stored();
    changed.metadata.generation = 2;
    kube.put(changed);
    const err = apiError(500, 'etcdserver: request timed out');
    kube.failures.patchStatus = [err];
    const result = await reconciler.reconcile(KEY);
    expect(result.kind).toBe('error');
    expect((result as { error: Error }).error.message).toBe(
      'while writing status: HTTP 500: etcdserver: request timed out',
    );
    expect((result as { error: Error }).error.cause).toBe(err);

    kube.failures.patchStatus = [apiError(404, 'not found')];
    const cns = stored();
    cns.metadata.generation = 3;
    kube.put(cns);
    expect(await reconciler.reconcile(KEY)).toEqual({ kind: 'done' });
  });

  it('does nothing for an object that no longer exists', async () => {
    expect(await reconciler.reconcile('team-a/gone')).toEqual({ kind: 'done' });
    expect(kube.statusWrites).toEqual([]);
    expect(schema.calls).toEqual([]);
  });

  it('releases a deleted object without writing its status, and never reaches the later steps', async () => {
    await reconciler.reconcile(KEY);
    const cns = stored();
    cns.metadata.deletionTimestamp = new Date();
    kube.put(cns);
    const writes = kube.statusWrites.length;
    schema.calls.length = 0;
    expect(await reconciler.reconcile(KEY)).toEqual({ kind: 'done' });
    expect(stored().metadata.finalizers).toEqual([]);
    expect(kube.statusWrites).toHaveLength(writes);
    expect(schema.calls).toEqual([]); // Retain (the default): Cassandra is not asked
  });
});

describe('Reconciler: a keyspace it created stays its own after a stop between CREATE KEYSPACE and the tables', () => {
  let kube: FakeKubeApi;
  let schema: FakeSchemaStore;
  const reconcilerReading = (get: (namespace: string, name: string) => Promise<CounterNamespace | undefined>) =>
    new Reconciler({ kube, schema, operator: operatorConfig(), log: silentLog, get });
  /** A (re)started operator, reading what the "API server" has now. */
  const operator = () => reconcilerReading((namespace, name) => kube.getCounterNamespace(namespace, name));
  beforeEach(() => {
    kube = new FakeKubeApi();
    schema = new FakeSchemaStore();
    kube.put(counterNamespace('orders', { deletionPolicy: 'Delete' }));
  });
  const stored = (): CounterNamespace => kube.stored(counterNamespace('orders'));

  /** Starts a reconcile and kills it right after CREATE KEYSPACE: it never returns, nor writes anything more. */
  async function killedAfterCreateKeyspace(): Promise<void> {
    let reached!: () => void;
    const atKill = new Promise<void>((resolve) => (reached = resolve));
    schema.afterCreateKeyspace = () => {
      reached();
      return new Promise<void>(() => undefined);
    };
    void operator().reconcile(KEY);
    await atKill;
    // What a killed operator leaves: the keyspace with no table, and the record written before CREATE KEYSPACE.
    expect(schema.keyspaces.get('tally_orders')).toEqual({ replication: expect.any(Object) });
    expect(stored().status).toEqual({ createdKeyspace: 'tally_orders' });
  }

  async function deleteAndReconcile(): Promise<void> {
    const cns = stored();
    cns.metadata.deletionTimestamp = new Date();
    kube.put(cns);
    expect(await operator().reconcile(KEY)).toEqual({ kind: 'done' });
    expect(stored().metadata.finalizers).toEqual([]);
  }
  const dropped = () => kube.events.filter((e) => e.reason === EventReason.KeyspaceDropped).map((e) => e.message);

  it('killed after CREATE KEYSPACE: the next operator records that it created the keyspace, and Delete drops it', async () => {
    await killedAfterCreateKeyspace();
    expect(await operator().reconcile(KEY)).toEqual({ kind: 'done' });
    expect(schema.keyspaces.get('tally_orders')?.ownership).toMatchObject({
      owner: 'uid-orders',
      keyspaceCreated: true,
    });
    await deleteAndReconcile();
    expect(schema.keyspaces.has('tally_orders')).toBe(false);
    expect(dropped()).toEqual(['dropped keyspace tally_orders (deletionPolicy Delete)']);
  });

  it('killed after CREATE KEYSPACE, then deleted before any other reconcile: Delete still drops the empty keyspace', async () => {
    await killedAfterCreateKeyspace();
    await deleteAndReconcile();
    expect(schema.keyspaces.has('tally_orders')).toBe(false);
    expect(dropped()).toEqual(['dropped keyspace tally_orders (deletionPolicy Delete)']);
  });

  it('CREATE TABLE failed: the retry asks the API server when its copy of the object predates the record', async () => {
    schema.afterCreateKeyspace = () => Promise.reject(new Error('CREATE TABLE timed out'));
    expect((await operator().reconcile(KEY)).kind).toBe('error');
    // An informer that has not seen the record yet.
    const lagging = reconcilerReading(async (namespace, name) => {
      const cns = await kube.getCounterNamespace(namespace, name);
      delete cns?.status?.createdKeyspace;
      return cns;
    });
    expect(await lagging.reconcile(KEY)).toEqual({ kind: 'done' });
    expect(schema.keyspaces.get('tally_orders')?.ownership?.keyspaceCreated).toBe(true);
  });

  it('still never counts as created, nor drops, an empty keyspace someone else made before it looked', async () => {
    schema.keyspaces.set('tally_orders', { replication: { class: 'SimpleStrategy', replication_factor: '1' } });
    expect(await operator().reconcile(KEY)).toEqual({ kind: 'done' });
    expect(stored().status?.createdKeyspace).toBeUndefined();
    expect(schema.keyspaces.get('tally_orders')?.ownership?.keyspaceCreated).toBe(false);
    await deleteAndReconcile();
    expect(schema.keyspaces.has('tally_orders')).toBe(true);
    expect(kube.events.map((e) => e.message)).toContain(
      'kept keyspace tally_orders: this CounterNamespace did not create it',
    );
  });

  it('keeps, with Delete, an empty keyspace it never recorded creating (another object was making it)', async () => {
    schema.keyspaces.set('tally_orders', { replication: { class: 'SimpleStrategy', replication_factor: '1' } });
    const cns = stored();
    cns.metadata.finalizers = [FINALIZER];
    kube.put(cns);
    await deleteAndReconcile();
    expect(schema.keyspaces.has('tally_orders')).toBe(true);
    expect(kube.events.map((e) => e.message)).toEqual(['kept keyspace tally_orders: it has no Tally tables']);
  });
});

describe('Reconciler: rollup health, from the CronJob status the apply answers with', () => {
  const healthReports: [string, string | undefined][] = [];
  let kube: FakeKubeApi;
  let reconciler: Reconciler;
  const conditionOf = (type: string) =>
    kube.stored(counterNamespace('orders')).status?.conditions?.find((c) => c.type === type);
  beforeEach(() => {
    healthReports.length = 0;
    kube = new FakeKubeApi();
    kube.put(counterNamespace('orders'));
    const schema = new FakeSchemaStore();
    reconciler = new Reconciler({
      kube,
      schema,
      operator: operatorConfig(),
      log: silentLog,
      get: (namespace, name) => kube.getCounterNamespace(namespace, name),
      onRollupHealth: (key, health) => healthReports.push([key, health?.status]),
    });
  });
  const minutesAgo = (m: number) => new Date(Date.now() - m * 60_000);

  it('a failed sweeper run turns RollupHealthy False with a Warning, and Ready stays True', async () => {
    kube.cronJobStatus = { lastScheduleTime: minutesAgo(1), lastSuccessfulTime: minutesAgo(6) };
    expect(await reconciler.reconcile(KEY)).toEqual({ kind: 'done' });
    expect(conditionOf(ConditionType.RollupHealthy)).toMatchObject({ status: 'False', reason: Reason.RollupFailed });
    expect(conditionOf(ConditionType.Ready)).toMatchObject({ status: 'True', reason: Reason.Ready });
    expect(kube.events.filter((e) => e.reason === EventReason.RollupUnhealthy)).toMatchObject([{ type: 'Warning' }]);
    expect(healthReports).toEqual([[KEY, 'False']]);

    // Fixed: the next run succeeded.
    kube.cronJobStatus = { lastScheduleTime: minutesAgo(0.5), lastSuccessfulTime: minutesAgo(0.2) };
    await reconciler.reconcile(KEY);
    expect(conditionOf(ConditionType.RollupHealthy)).toMatchObject({
      status: 'True',
      reason: Reason.RollupSucceeded,
    });
    expect(kube.events.filter((e) => e.reason === EventReason.RollupUnhealthy)).toHaveLength(1);
    expect(healthReports.at(-1)).toEqual([KEY, 'True']);
  });

  it('forgets the health of a CounterNamespace that is gone', async () => {
    kube.cronJobStatus = { lastScheduleTime: minutesAgo(1), lastSuccessfulTime: minutesAgo(0.5) };
    await reconciler.reconcile(KEY);
    await reconciler.reconcile('team-a/gone');
    expect(healthReports).toEqual([
      [KEY, 'True'],
      ['team-a/gone', undefined],
    ]);
  });
});
