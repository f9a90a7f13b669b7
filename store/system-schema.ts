import type { Client } from 'cassandra-driver';
import type { NamespaceConfig } from '../api/namespace-config';
import { ownershipOf, type Ownership } from './ownership';
import type { StoredReplication } from './replication';

/** Reads of Cassandra's system_schema: what exists now, so store/ensure.ts changes only what differs. */

export async function readReplication(client: Client, keyspace: string): Promise<StoredReplication | undefined> {
  const rs = await client.execute(
    'SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = ?',
    [keyspace],
    { prepare: true },
  );
  return rs.first()?.get('replication') as StoredReplication | undefined;
}

export interface TableInfo {
  defaultTimeToLive: number;
  compaction: Record<string, string>;
  comment: string;
}

export async function readTable(client: Client, keyspace: string, table: string): Promise<TableInfo | undefined> {
  const rs = await client.execute(
    'SELECT default_time_to_live, compaction, comment FROM system_schema.tables WHERE keyspace_name = ? AND table_name = ?',
    [keyspace, table],
    { prepare: true },
  );
  const row = rs.first();
  if (!row) return undefined;
  return {
    defaultTimeToLive: row.get('default_time_to_live') as number,
    compaction: row.get('compaction') as Record<string, string>,
    comment: row.get('comment') as string,
  };
}

export async function tableNames(client: Client, keyspace: string): Promise<string[]> {
  const rs = await client.execute('SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?', [keyspace], {
    prepare: true,
  });
  return rs.rows.map((r) => r.get('table_name') as string);
}

/** The tables of a keyspace, or undefined when there is no such keyspace. */
export async function keyspaceTables(client: Client, keyspace: string): Promise<string[] | undefined> {
  if (!(await readReplication(client, keyspace))) return undefined;
  return tableNames(client, keyspace);
}

/** Who owns a namespace's tables, or undefined when its rollups table does not exist (yet). */
export async function readOwnership(client: Client, config: NamespaceConfig): Promise<Ownership | undefined> {
  const table = await readTable(client, config.cassandra.keyspace, config.cassandra.rollupsTable);
  return table ? ownershipOf(table.comment) : undefined;
}
