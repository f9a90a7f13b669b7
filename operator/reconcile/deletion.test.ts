import { ApiException } from '@kubernetes/client-node';
import { ConditionType, EventReason, Reason } from '../../api/conditions';
import { FINALIZER } from '../../api/names';
import type { CounterNamespace } from '../../api/types';
import { ensureFinalizer, handleDeletion } from './deletion';
import { FakeKubeApi, FakeSchemaStore, contextFor, counterNamespace, finalized } from './fakes';

const conflict = () =>
  new ApiException(409, 'Conflict', JSON.stringify({ message: 'the object has been modified' }), {});

function deleting(policy: 'Retain' | 'Delete'): CounterNamespace {
  const cns = finalized(counterNamespace('orders', { deletionPolicy: policy }));
  cns.metadata.deletionTimestamp = new Date();
  return cns;
}

describe('handleDeletion', () => {
  let kube: FakeKubeApi;
  let schema: FakeSchemaStore;
  beforeEach(() => {
    kube = new FakeKubeApi();
    schema = new FakeSchemaStore();
  });

  it('lets the checklist go on for an object that is not being deleted, touching nothing', async () => {
    expect(await handleDeletion(contextFor(finalized(counterNamespace()), kube, schema))).toEqual({ kind: 'continue' });
    expect(kube.finalizerWrites).toEqual([]);
    expect(schema.calls).toEqual([]);
  });

  it('is done once the finalizer is gone', async () => {
    const cns = deleting('Delete');
    cns.metadata.finalizers = ['someone.else/cleanup'];
    expect(await handleDeletion(contextFor(cns, kube, schema))).toEqual({ kind: 'done' });
    expect(kube.finalizerWrites).toEqual([]);
  });

  it('with Retain, releases the object at once and never touches Cassandra', async () => {
    const cns = deleting('Retain');
    cns.metadata.finalizers = ['someone.else/cleanup', FINALIZER];
    kube.put(cns);
    expect(await handleDeletion(contextFor(cns, kube, schema))).toEqual({ kind: 'done' });
    expect(kube.finalizerWrites).toEqual([['someone.else/cleanup']]);
    expect(schema.calls).toEqual([]);
  });

  it('with Delete, drops a keyspace this CounterNamespace created, then releases it', async () => {
    const cns = deleting('Delete');
    schema.keyspaces.set('tally_orders', {
      replication: {},
      ownership: { owner: 'uid-orders', keyspaceCreated: true },
    });
    expect(await handleDeletion(contextFor(cns, kube, schema))).toEqual({ kind: 'done' });
    expect(schema.keyspaces.has('tally_orders')).toBe(false);
    expect(kube.events).toEqual([
      {
        type: 'Normal',
        reason: EventReason.KeyspaceDropped,
        message: 'dropped keyspace tally_orders (deletionPolicy Delete)',
      },
    ]);
    expect(kube.finalizerWrites).toEqual([[]]);
  });

  it.each([
    ['it did not create', { owner: 'uid-orders', keyspaceCreated: false }, 'this CounterNamespace did not create it'],
    [
      'another owner’s',
      { owner: 'uid-other', name: 'CounterNamespace b/x', keyspaceCreated: true },
      'it belongs to CounterNamespace b/x',
    ],
    ['no Tally tables in', undefined, 'it has no Tally tables'],
  ])('with Delete, keeps a keyspace %s, saying why, and releases the object', async (_, ownership, why) => {
    schema.keyspaces.set('tally_orders', { replication: {}, ...(ownership ? { ownership } : {}) });
    expect(await handleDeletion(contextFor(deleting('Delete'), kube, schema))).toEqual({ kind: 'done' });
    expect(schema.keyspaces.has('tally_orders')).toBe(true);
    expect(schema.calls).not.toContain('dropKeyspace tally_orders');
    expect(kube.events).toEqual([
      { type: 'Normal', reason: EventReason.KeyspaceRetained, message: `kept keyspace tally_orders: ${why}` },
    ]);
    expect(kube.finalizerWrites).toEqual([[]]);
  });

  it('with Cassandra down, keeps the finalizer, says why on Ready, and fails with the cause kept', async () => {
    const down = new Error('All host(s) tried for query failed');
    schema.down = down;
    const ctx = contextFor(deleting('Delete'), kube, schema);
    const result = await handleDeletion(ctx);
    expect(result.kind).toBe('error');
    const error = (result as { error: Error }).error;
    expect(error.message).toBe('while dropping the keyspace: All host(s) tried for query failed');
    expect(error.cause).toBe(down);
    expect(kube.finalizerWrites).toEqual([]);
    expect(ctx.status.conditions?.find((c) => c.type === ConditionType.Ready)).toMatchObject({
      status: 'False',
      reason: Reason.Deleting,
      message: 'waiting to drop the keyspace: All host(s) tried for query failed',
    });
    expect(kube.events.map((e) => [e.type, e.reason])).toEqual([['Warning', EventReason.DropFailed]]);
  });

  it('fails with the server’s message when removing the finalizer fails', async () => {
    const err = conflict();
    kube.failures.setFinalizers = [err];
    const result = await handleDeletion(contextFor(deleting('Retain'), kube, schema));
    expect(result).toEqual({ kind: 'error', error: expect.any(Error) });
    const error = (result as { error: Error }).error;
    expect(error.message).toBe('while removing the finalizer: HTTP 409: the object has been modified');
    expect(error.cause).toBe(err);
  });
});

describe('ensureFinalizer', () => {
  it('adds the finalizer once, keeping the others, and carries the new resourceVersion on', async () => {
    const kube = new FakeKubeApi();
    const cns = counterNamespace();
    cns.metadata.finalizers = ['someone.else/cleanup'];
    kube.put(cns);
    const ctx = contextFor(cns, kube, new FakeSchemaStore());
    expect(await ensureFinalizer(ctx)).toEqual({ kind: 'continue' });
    expect(kube.finalizerWrites).toEqual([['someone.else/cleanup', FINALIZER]]);
    expect(ctx.cns.metadata.finalizers).toEqual(['someone.else/cleanup', FINALIZER]);
    expect(ctx.cns.metadata.resourceVersion).toBe(kube.stored(cns).metadata.resourceVersion);
    expect(await ensureFinalizer(ctx)).toEqual({ kind: 'continue' });
    expect(kube.finalizerWrites).toHaveLength(1);
  });

  it('fails, keeping the cause, when the API refuses', async () => {
    const kube = new FakeKubeApi();
    const err = conflict();
    kube.failures.setFinalizers = [err];
    const result = await ensureFinalizer(contextFor(counterNamespace(), kube, new FakeSchemaStore()));
    expect((result as { error: Error }).error.message).toBe(
      'while adding the finalizer: HTTP 409: the object has been modified',
    );
    expect((result as { error: Error }).error.cause).toBe(err);
  });
});
