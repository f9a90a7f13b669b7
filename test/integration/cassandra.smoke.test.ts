import type { Client } from 'cassandra-driver';
import { randomUUID } from 'node:crypto';
import { cassandraSettingsFromEnv, createCassandraClient } from '../../store/client';
import { dropKeyspace } from '../../store/ensure';
import { versions } from '../stack/versions';
import { requireEnv } from '../support/env';

/** Schema changes wait for agreement: longer than the 1 s request timeout Tally's clients use. */
const DDL = { readTimeout: 60_000 };

describe('cassandra (local stack)', () => {
  let client: Client;
  const keyspace = `smoke_${randomUUID().replace(/-/g, '').slice(0, 12)}`;

  beforeAll(async () => {
    // As Tally connects: the stack's Cassandra requires a login (the operator's role, from .tally/env).
    client = createCassandraClient(cassandraSettingsFromEnv(process.env));
    await client.connect();
  });
  afterAll(async () => {
    await dropKeyspace(client, keyspace);
    await client.shutdown();
  });

  it('is the Cassandra release the stack installs', async () => {
    const rs = await client.execute('SELECT release_version FROM system.local');
    const version = rs.first().get('release_version') as string;
    expect(version).toBe(versions().CASSANDRA_VERSION);
  });

  it('runs in the named datacenter the driver was told about', async () => {
    const rs = await client.execute('SELECT data_center FROM system.local');
    expect(rs.first().get('data_center')).toBe(requireEnv('CASSANDRA_LOCAL_DC'));
  });

  it('round-trips a row through a keyspace and a TWCS table', async () => {
    await client.execute(
      `CREATE KEYSPACE ${keyspace} WITH replication = {'class': 'NetworkTopologyStrategy', '${requireEnv('CASSANDRA_LOCAL_DC')}': 1}`,
      [],
      DDL,
    );
    await client.execute(
      `CREATE TABLE ${keyspace}.t (k text, ts timestamp, v bigint, PRIMARY KEY (k, ts)) ` +
        "WITH compaction = {'class': 'TimeWindowCompactionStrategy', 'compaction_window_unit': 'HOURS', 'compaction_window_size': '6'} " +
        'AND default_time_to_live = 3600',
      [],
      DDL,
    );
    const now = new Date();
    await client.execute(`INSERT INTO ${keyspace}.t (k, ts, v) VALUES (?, ?, ?)`, ['a', now, 42n], { prepare: true });
    const rs = await client.execute(`SELECT v, TTL(v) AS ttl FROM ${keyspace}.t WHERE k = ?`, ['a'], { prepare: true });
    expect(Number(rs.first().get('v'))).toBe(42);
    expect(rs.first().get('ttl')).toBeGreaterThan(3500);
    const table = await client.execute(
      'SELECT compaction FROM system_schema.tables WHERE keyspace_name = ? AND table_name = ?',
      [keyspace, 't'],
      {
        prepare: true,
      },
    );
    expect((table.first().get('compaction') as Record<string, string>).class).toMatch(/TimeWindowCompactionStrategy$/);
  });
});
