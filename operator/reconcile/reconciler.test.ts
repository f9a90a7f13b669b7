import { ApiException } from '@kubernetes/client-node';
import { ConditionType, Reason } from '../../api/conditions';
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

  it('takes a new CounterNamespace to Ready in one reconcile, writing status once', async () => {
    expect(await reconciler.reconcile(KEY)).toEqual({ kind: 'done' });
    const cns = stored();
    expect(cns.metadata.finalizers).toEqual([FINALIZER]);
    expect(kube.statusWrites).toHaveLength(1);
    expect(cns.status?.observedGeneration).toBe(1);
    expect(cns.status?.conditions?.map((c) => [c.type, c.status, c.reason])).toEqual([
      [ConditionType.Ready, 'True', Reason.Ready],
      [ConditionType.KeyspaceReady, 'True', Reason.KeyspaceCreated],
      [ConditionType.TablesReady, 'True', Reason.TablesCreated],
      [ConditionType.CacheConfigured, 'True', Reason.ConfigMapApplied],
      [ConditionType.RollupScheduled, 'True', Reason.CronJobApplied],
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
    expect(kube.statusWrites).toHaveLength(1); // the second reconcile found nothing to write
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

  it('retries when the status cannot be written, but not when the object is gone meanwhile', async () => {
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
    cns.metadata.generation = 2;
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
