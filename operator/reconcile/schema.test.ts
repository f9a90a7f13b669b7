import { ConditionType, EventReason, Reason } from '../../api/conditions';
import type { CounterNamespace } from '../../api/types';
import type { ReconcileContext } from './context';
import { FakeKubeApi, FakeSchemaStore, contextFor, counterNamespace, finalized } from './fakes';
import { ensureKeyspaceAndTables, resolveSpec } from './schema';
import { REJECTED_RECHECK_MS } from './owned-objects';

const conditionOf = (ctx: ReconcileContext, type: string) => ctx.status.conditions?.find((c) => c.type === type);

describe('resolveSpec', () => {
  it('resolves the spec with the runtime’s defaults and reports the keyspace and tables in status', async () => {
    const ctx = contextFor(finalized(counterNamespace('orders')), new FakeKubeApi(), new FakeSchemaStore());
    expect(await resolveSpec(ctx)).toEqual({ kind: 'continue' });
    expect(ctx.config?.cassandra.keyspace).toBe('tally_orders');
    expect(ctx.status).toMatchObject({ keyspace: 'tally_orders', eventsTable: 'events', rollupsTable: 'rollups' });
  });

  it('ends the reconcile without a retry on a spec no retry can fix, saying why on Ready', async () => {
    const cns = finalized(counterNamespace('orders', { eventStorage: { retentionSeconds: 10, secondsPerBucket: 60 } }));
    const ctx = contextFor(cns, new FakeKubeApi(), new FakeSchemaStore());
    expect(await resolveSpec(ctx)).toEqual({ kind: 'done' });
    expect(conditionOf(ctx, ConditionType.Ready)).toMatchObject({
      status: 'False',
      reason: Reason.InvalidSpec,
      message: expect.stringContaining('retentionSeconds'),
    });
    expect(ctx.config).toBeUndefined();
  });
});

describe('ensureKeyspaceAndTables', () => {
  let kube: FakeKubeApi;
  let schema: FakeSchemaStore;
  beforeEach(() => {
    kube = new FakeKubeApi();
    schema = new FakeSchemaStore();
  });

  /** A context after the resolve step, as the checklist runs it. */
  async function resolved(cns: CounterNamespace = finalized(counterNamespace('orders'))): Promise<ReconcileContext> {
    const ctx = contextFor(cns, kube, schema);
    expect(await resolveSpec(ctx)).toEqual({ kind: 'continue' });
    return ctx;
  }

  it('creates a new keyspace and its tables, recording this CounterNamespace as the owner that created it', async () => {
    const ctx = await resolved();
    expect(await ensureKeyspaceAndTables(ctx)).toEqual({ kind: 'continue' });
    expect(schema.keyspaces.get('tally_orders')?.ownership).toEqual({
      owner: 'uid-orders',
      name: 'CounterNamespace team-a/orders',
      counterNamespace: { namespace: 'team-a', name: 'orders' },
      keyspaceCreated: true,
    });
    expect(conditionOf(ctx, ConditionType.KeyspaceReady)).toMatchObject({
      status: 'True',
      reason: Reason.KeyspaceCreated,
    });
    expect(conditionOf(ctx, ConditionType.TablesReady)).toMatchObject({ status: 'True', reason: Reason.TablesCreated });
    expect(kube.events.map((e) => e.reason)).toEqual([EventReason.KeyspaceCreated, EventReason.TablesCreated]);
  });

  it('changes nothing and records no Event the second time, keeping the reasons of what it did', async () => {
    const first = await resolved();
    await ensureKeyspaceAndTables(first);
    const events = kube.events.length;
    const settled = finalized(counterNamespace('orders'));
    settled.status = first.status;
    const again = await resolved(settled);
    expect(await ensureKeyspaceAndTables(again)).toEqual({ kind: 'continue' });
    expect(kube.events).toHaveLength(events);
    expect(again.status).toEqual(first.status);
  });

  it('touches nothing of a keyspace whose owner still exists, and looks again in a minute', async () => {
    const other = counterNamespace('billing');
    kube.put(other);
    const ownership = {
      owner: 'uid-billing',
      name: 'CounterNamespace team-a/billing',
      counterNamespace: { namespace: 'team-a', name: 'billing' },
      keyspaceCreated: true,
    };
    schema.keyspaces.set('tally_orders', { replication: {}, ownership });
    const ctx = await resolved();
    expect(await ensureKeyspaceAndTables(ctx)).toEqual({ kind: 'requeue', afterMs: 60_000, why: 'keyspace conflict' });
    expect(schema.calls).toEqual(['readOwnership tally_orders']);
    expect(schema.keyspaces.get('tally_orders')?.ownership).toEqual(ownership);
    const message =
      'keyspace tally_orders cannot be used: it belongs to CounterNamespace team-a/billing; set spec.cassandra.keyspace to another name';
    expect(conditionOf(ctx, ConditionType.Ready)).toMatchObject({
      status: 'False',
      reason: Reason.KeyspaceConflict,
      message,
    });
    expect(conditionOf(ctx, ConditionType.KeyspaceReady)).toMatchObject({
      status: 'False',
      reason: Reason.KeyspaceConflict,
    });
    expect(kube.events).toEqual([{ type: 'Warning', reason: EventReason.KeyspaceConflict, message }]);
  });

  it('counts an owner it cannot look up as alive, saying so', async () => {
    schema.keyspaces.set('tally_orders', {
      replication: {},
      ownership: {
        owner: 'uid-billing',
        counterNamespace: { namespace: 'team-a', name: 'billing' },
        keyspaceCreated: true,
      },
    });
    kube.failures.getCounterNamespace = [new Error('connect ECONNREFUSED')];
    const ctx = await resolved();
    expect((await ensureKeyspaceAndTables(ctx)).kind).toBe('requeue');
    expect(conditionOf(ctx, ConditionType.Ready)?.message).toContain(
      'it belongs to uid-billing (could not check whether it still exists: connect ECONNREFUSED)',
    );
  });

  it('takes over the keyspace of a deleted owner, but not the right to drop it', async () => {
    schema.keyspaces.set('tally_orders', {
      replication: { class: 'SimpleStrategy', replication_factor: '1' },
      ownership: {
        owner: 'uid-gone',
        name: 'CounterNamespace team-a/old',
        counterNamespace: { namespace: 'team-a', name: 'old' },
        keyspaceCreated: true,
      },
      retentionSeconds: 604800,
    });
    const ctx = await resolved();
    expect(await ensureKeyspaceAndTables(ctx)).toEqual({ kind: 'continue' });
    expect(schema.keyspaces.get('tally_orders')?.ownership).toMatchObject({
      owner: 'uid-orders',
      keyspaceCreated: false,
    });
    expect(kube.events.map((e) => [e.reason, e.message])).toEqual([
      [
        EventReason.KeyspaceAdopted,
        'adopted keyspace tally_orders from CounterNamespace team-a/old (uid uid-gone), which no longer exists',
      ],
    ]);
    expect(conditionOf(ctx, ConditionType.KeyspaceReady)).toMatchObject({
      status: 'True',
      reason: Reason.KeyspaceExists,
    });
  });

  it('reports Cassandra refusing a statement (a syntax error) as that, with a long recheck, not as Cassandra down', async () => {
    // What cassandra-driver throws for a statement Cassandra cannot parse (ResponseError, code 0x2000).
    schema.down = Object.assign(new Error("line 1:16 no viable alternative at input 'table'"), { code: 0x2000 });
    const ctx = await resolved();
    expect(await ensureKeyspaceAndTables(ctx)).toMatchObject({ kind: 'requeue', afterMs: REJECTED_RECHECK_MS });
    expect(conditionOf(ctx, ConditionType.Ready)).toMatchObject({ status: 'False', reason: Reason.CassandraRejected });
    expect(conditionOf(ctx, ConditionType.Ready)?.message).toContain(
      "provisioning keyspace tally_orders: Cassandra refused it: line 1:16 no viable alternative at input 'table'",
    );
    expect(kube.events.map((e) => [e.type, e.reason])).toEqual([['Warning', EventReason.CassandraRejected]]);
    // Unreachable is still unavailability, retried with backoff.
    schema.down = Object.assign(new Error('All host(s) tried for query failed'), { name: 'NoHostAvailableError' });
    const again = await resolved();
    expect((await ensureKeyspaceAndTables(again)).kind).toBe('error');
    expect(conditionOf(again, ConditionType.Ready)?.reason).toBe(Reason.CassandraUnavailable);
  });

  it('never takes over the keyspace of a deleted owner from another Kubernetes namespace', async () => {
    const left = {
      owner: 'uid-gone',
      name: 'CounterNamespace team-b/orders',
      counterNamespace: { namespace: 'team-b', name: 'orders' },
      keyspaceCreated: true,
    };
    schema.keyspaces.set('tally_orders', {
      replication: { class: 'SimpleStrategy', replication_factor: '1' },
      ownership: left,
      retentionSeconds: 604800,
    });
    const ctx = await resolved();
    expect((await ensureKeyspaceAndTables(ctx)).kind).toBe('requeue');
    expect(schema.keyspaces.get('tally_orders')?.ownership).toEqual(left);
    expect(conditionOf(ctx, ConditionType.Ready)).toMatchObject({ status: 'False', reason: Reason.KeyspaceConflict });
    expect(conditionOf(ctx, ConditionType.Ready)?.message).toContain(
      'it belonged to CounterNamespace team-b/orders, in Kubernetes namespace team-b, and a keyspace is never handed to another namespace',
    );
    expect(kube.events.map((e) => e.reason)).toEqual([EventReason.KeyspaceConflict]);
  });

  it('adopts what `serve --provision` made, keeping whether the keyspace was created for it', async () => {
    schema.keyspaces.set('tally_orders', {
      replication: { class: 'SimpleStrategy', replication_factor: '1' },
      ownership: { owner: 'tally', keyspaceCreated: true },
      retentionSeconds: 604800,
    });
    const ctx = await resolved();
    expect(await ensureKeyspaceAndTables(ctx)).toEqual({ kind: 'continue' });
    expect(schema.keyspaces.get('tally_orders')?.ownership).toMatchObject({
      owner: 'uid-orders',
      keyspaceCreated: true,
    });
    expect(kube.events).toEqual([]);
  });

  it('refuses a keyspace whose rollups table is not Tally’s', async () => {
    schema.keyspaces.set('tally_orders', {
      replication: {},
      ownership: { owner: '(not Tally)', keyspaceCreated: false },
    });
    const ctx = await resolved();
    expect((await ensureKeyspaceAndTables(ctx)).kind).toBe('requeue');
    expect(conditionOf(ctx, ConditionType.Ready)?.message).toContain('its rollups table was not made by Tally');
    expect(schema.calls).toEqual(['readOwnership tally_orders']);
  });

  it('waits, changing nothing, while Cassandra’s nodes disagree on the schema', async () => {
    schema.agreement = false;
    const ctx = await resolved();
    expect(await ensureKeyspaceAndTables(ctx)).toEqual({ kind: 'requeue', afterMs: 5000, why: 'schema disagreement' });
    expect(schema.keyspaces.size).toBe(0);
    expect(conditionOf(ctx, ConditionType.KeyspaceReady)).toMatchObject({
      status: 'Unknown',
      reason: Reason.SchemaDisagreement,
    });
  });

  it('warns that added replicas need a repair when replication goes up', async () => {
    schema.keyspaces.set('tally_orders', {
      replication: { class: 'SimpleStrategy', replication_factor: '1' },
      ownership: { owner: 'uid-orders', keyspaceCreated: true },
      retentionSeconds: 604800,
    });
    const cns = finalized(
      counterNamespace('orders', { cassandra: { replication: { class: 'SimpleStrategy', replicationFactor: 3 } } }),
    );
    const ctx = await resolved(cns);
    expect(await ensureKeyspaceAndTables(ctx)).toEqual({ kind: 'continue' });
    expect(kube.events).toEqual([
      expect.objectContaining({
        type: 'Warning',
        reason: EventReason.ReplicationUpdated,
        message: expect.stringContaining('nodetool repair -full tally_orders'),
      }),
    ]);
    expect(conditionOf(ctx, ConditionType.KeyspaceReady)).toMatchObject({ reason: Reason.ReplicationUpdated });
  });

  it('with Cassandra down, says so on Ready and KeyspaceReady, warns once, and fails keeping the cause', async () => {
    const down = new Error('All host(s) tried for query failed');
    schema.down = down;
    const ctx = await resolved();
    const result = await ensureKeyspaceAndTables(ctx);
    expect(result.kind).toBe('error');
    const error = (result as { error: Error }).error;
    expect(error.message).toBe('while provisioning keyspace tally_orders: All host(s) tried for query failed');
    expect(error.cause).toBe(down);
    expect(conditionOf(ctx, ConditionType.Ready)).toMatchObject({
      status: 'False',
      reason: Reason.CassandraUnavailable,
    });
    expect(conditionOf(ctx, ConditionType.KeyspaceReady)).toMatchObject({
      status: 'Unknown',
      reason: Reason.CassandraUnavailable,
    });
    expect(kube.events.map((e) => [e.type, e.reason])).toEqual([['Warning', EventReason.CassandraUnavailable]]);
  });
});
