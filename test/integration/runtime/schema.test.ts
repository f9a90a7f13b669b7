import type { Client } from 'cassandra-driver';
import { resolveCounterNamespace } from '../../../api/resolve';
import { messageOf } from '../../../lib/errors';
import { cassandraSettingsFromEnv, createCassandraClient } from '../../../store/client';
import { dropKeyspace, ensureSchema } from '../../../store/ensure';
import { KeyspaceOwnedError, parseOwnerComment } from '../../../store/ownership';
import { readReplication, readTable } from '../../../store/system-schema';
import { stackEnv, uniqueSuffix } from '../../support/runtime-harness';

describe('ensureSchema against Cassandra', () => {
  let client: Client;
  const name = `schema-${uniqueSuffix()}`;
  const config = (spec: Record<string, unknown> = {}) =>
    resolveCounterNamespace({ apiVersion: 'tally.dev/v1alpha1', kind: 'CounterNamespace', metadata: { name }, spec });

  beforeAll(async () => {
    client = createCassandraClient(cassandraSettingsFromEnv(stackEnv()));
    await client.connect();
  });
  afterAll(async () => {
    await dropKeyspace(client, config().cassandra.keyspace);
    await client.shutdown();
  });

  it('creates the keyspace, a TWCS events table with the retention as TTL, and the rollups table, once', async () => {
    const c = config({ eventStorage: { retentionSeconds: 86400 } });
    const first = await ensureSchema(client, c, { owner: 'uid-123' });
    expect(first).toEqual({
      keyspaceCreated: true,
      replicationAltered: false,
      replicasAdded: [],
      tablesCreated: ['rollups', 'events'],
      tablesAltered: [],
    });

    const events = await readTable(client, c.cassandra.keyspace, 'events');
    expect(events?.defaultTimeToLive).toBe(86400);
    expect(events?.compaction).toMatchObject({
      class: 'org.apache.cassandra.db.compaction.TimeWindowCompactionStrategy',
      compaction_window_unit: 'HOURS',
      compaction_window_size: '1',
    });
    const gc = await client.execute(
      'SELECT gc_grace_seconds FROM system_schema.tables WHERE keyspace_name = ? AND table_name = ?',
      [c.cassandra.keyspace, 'events'],
    );
    expect(gc.first().get('gc_grace_seconds')).toBe(3600);
    const key = await client.execute(
      'SELECT column_name, kind, position, clustering_order FROM system_schema.columns WHERE keyspace_name = ? AND table_name = ?',
      [c.cassandra.keyspace, 'events'],
    );
    const layout = key.rows
      .filter((r) => r.get('kind') !== 'regular')
      .sort((a, b) => `${a.get('kind')}${a.get('position')}`.localeCompare(`${b.get('kind')}${b.get('position')}`))
      .map((r) => `${r.get('kind')}:${r.get('column_name')}:${r.get('clustering_order')}`);
    expect(layout).toEqual([
      'clustering:event_time:desc',
      'clustering:event_id:asc',
      'partition_key:counter_name:none',
      'partition_key:time_bucket:none',
      'partition_key:event_bucket:none',
    ]);
    const rollups = await readTable(client, c.cassandra.keyspace, 'rollups');
    expect(parseOwnerComment(rollups?.comment)).toEqual({ owner: 'uid-123', keyspaceCreated: true });

    expect(await ensureSchema(client, c)).toEqual({
      keyspaceCreated: false,
      replicationAltered: false,
      replicasAdded: [],
      tablesCreated: [],
      tablesAltered: [],
    });
  });

  it('refuses another owner before altering anything: the loser of a race for a new keyspace', async () => {
    const c = config({ eventStorage: { retentionSeconds: 3 * 86400 } });
    const err = await ensureSchema(client, c, { owner: 'uid-other', ownerName: 'CounterNamespace b/other' }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(KeyspaceOwnedError);
    expect(messageOf(err)).toContain(`keyspace ${c.cassandra.keyspace}`);
    expect((err as KeyspaceOwnedError).ownership?.owner).toBe('uid-123');
    expect((await readTable(client, c.cassandra.keyspace, 'events'))?.defaultTimeToLive).toBe(86400);
  });

  it("refuses a keyspace holding tables that are not Tally's, and touches none of it", async () => {
    const foreign = `foreign_${uniqueSuffix().replace(/-/g, '_')}`;
    const dc = stackEnv().CASSANDRA_LOCAL_DC!;
    await client.execute(
      `CREATE KEYSPACE ${foreign} WITH replication = {'class': 'NetworkTopologyStrategy', '${dc}': 1}`,
    );
    try {
      await client.execute(`CREATE TABLE ${foreign}.events (id int PRIMARY KEY) WITH comment = 'the DBA''s'`);
      const c = config({ cassandra: { keyspace: foreign }, eventStorage: { retentionSeconds: 86400 } });
      for (const opts of [{}, { owner: 'uid-9' }]) {
        await expect(ensureSchema(client, c, opts)).rejects.toThrow(
          `keyspace ${foreign} is not ours to change: it has tables (events) but no Tally rollups table`,
        );
      }
      expect(await readReplication(client, foreign)).toEqual({
        class: 'org.apache.cassandra.locator.NetworkTopologyStrategy',
        [dc]: '1',
      });
      expect(await readTable(client, foreign, 'events')).toMatchObject({ defaultTimeToLive: 0, comment: "the DBA's" });
      expect(await readTable(client, foreign, 'rollups')).toBeUndefined();
    } finally {
      await dropKeyspace(client, foreign);
    }
  });

  it('uses an existing empty keyspace but does not record it as created by Tally', async () => {
    const empty = `empty_${uniqueSuffix().replace(/-/g, '_')}`;
    await client.execute(
      `CREATE KEYSPACE ${empty} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`,
    );
    try {
      const c = config({ cassandra: { keyspace: empty } });
      expect(await ensureSchema(client, c, { owner: 'uid-7' })).toMatchObject({
        keyspaceCreated: false,
        tablesCreated: ['rollups', 'events'],
      });
      expect(parseOwnerComment((await readTable(client, empty, 'rollups'))?.comment)).toEqual({
        owner: 'uid-7',
        keyspaceCreated: false,
      });
    } finally {
      await dropKeyspace(client, empty);
    }
  });

  it('alters the TTL and compaction window when the retention changes', async () => {
    const c = config({ eventStorage: { retentionSeconds: 14 * 86400 } });
    expect((await ensureSchema(client, c)).tablesAltered).toEqual(['events']);
    const events = await readTable(client, c.cassandra.keyspace, 'events');
    expect(events?.defaultTimeToLive).toBe(14 * 86400);
    expect(events?.compaction).toMatchObject({ compaction_window_unit: 'HOURS', compaction_window_size: '14' });
  });

  it('alters replication when the factor or datacenters change', async () => {
    const dc = stackEnv().CASSANDRA_LOCAL_DC!;
    const c = config({ cassandra: { replication: { class: 'NetworkTopologyStrategy', dataCenters: { [dc]: 1 } } } });
    expect((await ensureSchema(client, c)).replicationAltered).toBe(true);
    expect(await readReplication(client, c.cassandra.keyspace)).toEqual({
      class: 'org.apache.cassandra.locator.NetworkTopologyStrategy',
      [dc]: '1',
    });
    expect((await ensureSchema(client, c)).replicationAltered).toBe(false);
  });
});
