import type { Client } from 'cassandra-driver';
import type { NamespaceConfig, Replication } from '../api/namespace-config';
import { datacenterLiteral, ident, int, qualified, stringLiteral } from './cql';

/**
 * The one module that owns Tally's CQL schema. The runtime (`serve --provision`) and the operator both call
 * ensureSchema, so the tables a namespace gets never depend on who created them.
 */

/** Events expire through the table TTL; TWCS drops whole expired SSTables, so no tombstone scans. */
export interface TwcsWindow {
  unit: 'MINUTES' | 'HOURS' | 'DAYS';
  size: number;
}

/** About 24 compaction windows per retention period (Cassandra's guidance is 20-30). */
export function twcsWindowFor(retentionSeconds: number): TwcsWindow {
  const target = retentionSeconds / 24;
  if (target >= 86400) return { unit: 'DAYS', size: Math.max(1, Math.round(target / 86400)) };
  if (target >= 3600) return { unit: 'HOURS', size: Math.max(1, Math.round(target / 3600)) };
  return { unit: 'MINUTES', size: Math.max(1, Math.round(target / 60)) };
}

/** Short, because expired data needs no repair window: events are immutable and carry their own TTL. */
export const EVENTS_GC_GRACE_SECONDS = 3600;

export function replicationLiteral(r: Replication): string {
  if (r.class === 'SimpleStrategy') {
    return `{'class': 'SimpleStrategy', 'replication_factor': ${int(r.replicationFactor, 'replication factor')}}`;
  }
  const dcs = Object.entries(r.dataCenters)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([dc, rf]) => `${datacenterLiteral(dc)}: ${int(rf, `replication factor of ${dc}`)}`);
  return `{'class': 'NetworkTopologyStrategy', ${dcs.join(', ')}}`;
}

export function createKeyspaceCql(config: NamespaceConfig): string {
  return `CREATE KEYSPACE IF NOT EXISTS ${ident(config.cassandra.keyspace)} WITH replication = ${replicationLiteral(config.cassandra.replication)}`;
}

function eventsOptions(config: NamespaceConfig): string {
  const w = twcsWindowFor(config.eventStorage.retentionSeconds);
  return (
    `compaction = {'class': 'TimeWindowCompactionStrategy', 'compaction_window_unit': '${w.unit}', ` +
    `'compaction_window_size': '${int(w.size, 'compaction window')}'} ` +
    `AND default_time_to_live = ${int(config.eventStorage.retentionSeconds, 'retention')} ` +
    `AND gc_grace_seconds = ${int(EVENTS_GC_GRACE_SECONDS, 'gc_grace_seconds')}`
  );
}

/**
 * One partition per (counter, time bucket, event bucket): a hot counter's writes spread over several partitions and
 * no partition grows past one time bucket. event_time + event_id (the idempotency token) finish the primary key,
 * so a retried write lands on the same row.
 */
export function createEventsTableCql(config: NamespaceConfig): string {
  const { keyspace, eventsTable } = config.cassandra;
  return (
    `CREATE TABLE IF NOT EXISTS ${qualified(keyspace, eventsTable)} (` +
    'counter_name text, time_bucket bigint, event_bucket int, event_time timestamp, event_id text, ' +
    'kind text, delta bigint, ' +
    'PRIMARY KEY ((counter_name, time_bucket, event_bucket), event_time, event_id)' +
    `) WITH CLUSTERING ORDER BY (event_time DESC, event_id ASC) AND ${eventsOptions(config)}`
  );
}

export function alterEventsTableCql(config: NamespaceConfig): string {
  const { keyspace, eventsTable } = config.cassandra;
  return `ALTER TABLE ${qualified(keyspace, eventsTable)} WITH ${eventsOptions(config)}`;
}

/**
 * One row per counter. Each column is written with its own USING TIMESTAMP so concurrent writers resolve the way
 * the design needs: the checkpoint (rollup_count + rollup_time, written together) by rollup time, last_write_time and
 * last_clear_time by event time (latest wins), first_write_time by an inverted event time (earliest wins).
 */
export function createRollupsTableCql(config: NamespaceConfig, comment: string): string {
  const { keyspace, rollupsTable } = config.cassandra;
  return (
    `CREATE TABLE IF NOT EXISTS ${qualified(keyspace, rollupsTable)} (` +
    'counter_name text PRIMARY KEY, rollup_count bigint, rollup_time timestamp, ' +
    'first_write_time timestamp, last_write_time timestamp, last_clear_time timestamp' +
    `) WITH compaction = {'class': 'LeveledCompactionStrategy'} AND comment = ${stringLiteral(comment)}`
  );
}

export interface SchemaChanges {
  keyspaceCreated: boolean;
  replicationAltered: boolean;
  /** Datacenters (or SimpleStrategy) whose replication factor this call raised: they need a repair. */
  replicasAdded: string[];
  tablesCreated: string[];
  tablesAltered: string[];
}

export interface EnsureSchemaOptions {
  /** Recorded in the rollups table comment: the operator's CounterNamespace uid (default "tally"). */
  owner?: string;
  ownerName?: string;
  /** The owning CounterNamespace, so a later claimant can check whether it still exists. */
  counterNamespace?: CounterNamespaceRef;
}

/** Where an owning CounterNamespace lives: enough to GET it and compare its uid with the recorded owner. */
export interface CounterNamespaceRef {
  namespace: string;
  name: string;
}

/**
 * Identifies Tally's tables, who made them (the operator's CounterNamespace uid; "tally" for `serve --provision`) and
 * whether that owner created the keyspace too. Kept in the rollups table's comment because keyspaces have none; the
 * operator reads it to detect two CounterNamespaces claiming one keyspace and before dropping one.
 */
export interface Ownership {
  owner: string;
  /** Who the owner is, for people: "CounterNamespace team-a/orders". */
  name?: string;
  /** The owning CounterNamespace (absent for the runtime's own tables). Comments written before this field existed
   * only have `name`; the parser derives it from there. */
  counterNamespace?: CounterNamespaceRef;
  keyspaceCreated: boolean;
}

export function ownerComment(ownership: Ownership): string {
  return JSON.stringify({ tally: ownership });
}

export function parseOwnerComment(comment: string | null | undefined): Ownership | undefined {
  try {
    const parsed = JSON.parse(comment ?? '') as { tally?: Partial<Ownership> };
    const owner = parsed.tally?.owner;
    if (typeof owner !== 'string') return undefined;
    const name = parsed.tally?.name;
    const ref = parseRef(parsed.tally?.counterNamespace) ?? refFromDisplayName(name);
    return {
      owner,
      ...(typeof name === 'string' ? { name } : {}),
      ...(ref ? { counterNamespace: ref } : {}),
      keyspaceCreated: parsed.tally?.keyspaceCreated === true,
    };
  } catch {
    return undefined;
  }
}

function parseRef(value: unknown): CounterNamespaceRef | undefined {
  const ref = value as Partial<CounterNamespaceRef> | undefined;
  return typeof ref?.namespace === 'string' && typeof ref.name === 'string' && ref.namespace && ref.name
    ? { namespace: ref.namespace, name: ref.name }
    : undefined;
}

/** Older comments: `name: "CounterNamespace <namespace>/<name>"` is all there is. */
function refFromDisplayName(name: unknown): CounterNamespaceRef | undefined {
  const match = typeof name === 'string' ? /^CounterNamespace ([^/\s]+)\/([^/\s]+)$/.exec(name) : null;
  return match ? { namespace: match[1]!, name: match[2]! } : undefined;
}

/** Who owns a namespace's tables, or undefined when its rollups table does not exist (yet). */
export async function readOwnership(client: Client, config: NamespaceConfig): Promise<Ownership | undefined> {
  const table = await readTable(client, config.cassandra.keyspace, config.cassandra.rollupsTable);
  return table ? (parseOwnerComment(table.comment) ?? { owner: NOT_TALLY, keyspaceCreated: false }) : undefined;
}

/** The owner readOwnership reports for a rollups table whose comment is not Tally's: made by someone else. */
export const NOT_TALLY = '(not Tally)';

/** The owner `serve --provision` records: tables a runtime made for itself, which the operator may adopt. */
export const RUNTIME_OWNER = 'tally';

/** Rewrites who owns a namespace's tables (the operator adopting what `serve --provision` created). */
export async function setOwnership(client: Client, config: NamespaceConfig, ownership: Ownership): Promise<void> {
  const { keyspace, rollupsTable } = config.cassandra;
  await ddl(
    client,
    `ALTER TABLE ${qualified(keyspace, rollupsTable)} WITH comment = ${stringLiteral(ownerComment(ownership))}`,
    `recording the owner of ${keyspace}`,
  );
}

/** Where `wanted` has more replicas than `current`: "replication_factor" for SimpleStrategy, else datacenter names. */
export function raisedReplication(current: Record<string, string>, wanted: Replication): string[] {
  const sameClass = (current.class ?? '').replace(/^org\.apache\.cassandra\.locator\./, '') === wanted.class;
  if (wanted.class === 'SimpleStrategy') {
    return wanted.replicationFactor > (sameClass ? Number(current.replication_factor ?? 0) : 0)
      ? ['replication_factor']
      : [];
  }
  return Object.entries(wanted.dataCenters)
    .filter(([dc, rf]) => rf > (sameClass ? Number(current[dc] ?? 0) : 0))
    .map(([dc]) => dc)
    .sort();
}

function sameReplication(current: Record<string, string>, wanted: Replication): boolean {
  const cls = (current.class ?? '').replace(/^org\.apache\.cassandra\.locator\./, '');
  if (cls !== wanted.class) return false;
  if (wanted.class === 'SimpleStrategy') return Number(current.replication_factor) === wanted.replicationFactor;
  const currentDcs = Object.entries(current).filter(([k]) => k !== 'class');
  const wantedDcs = Object.entries(wanted.dataCenters).filter(([, rf]) => rf > 0);
  return currentDcs.length === wantedDcs.length && wantedDcs.every(([dc, rf]) => Number(current[dc]) === rf);
}

export async function readReplication(client: Client, keyspace: string): Promise<Record<string, string> | undefined> {
  const rs = await client.execute(
    'SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = ?',
    [keyspace],
    {
      prepare: true,
    },
  );
  return rs.first()?.get('replication') as Record<string, string> | undefined;
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

/** DDL waits for the schema to settle on every node: far slower than a read or a write. */
const DDL_TIMEOUT_MS = 60_000;

async function ddl(client: Client, cql: string, doing: string): Promise<void> {
  try {
    await client.execute(cql, [], { readTimeout: DDL_TIMEOUT_MS });
  } catch (err) {
    throw new Error(`while ${doing}: ${(err as Error).message}`);
  }
}

/**
 * The keyspace is not the caller's to change: it holds tables that are not Tally's, or its rollups table records
 * another owner. Thrown before any ALTER, so nothing of the keyspace was touched.
 */
export class KeyspaceOwnedError extends Error {
  constructor(
    readonly keyspace: string,
    /** Why, for people: "it belongs to CounterNamespace team-a/orders". */
    readonly why: string,
    /** The recorded owner, when there is a Tally rollups table. */
    readonly ownership?: Ownership,
  ) {
    super(`keyspace ${keyspace} is not ours to change: ${why}`);
    this.name = 'KeyspaceOwnedError';
  }
}

async function tableNames(client: Client, keyspace: string): Promise<string[]> {
  const rs = await client.execute('SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?', [keyspace], {
    prepare: true,
  });
  return rs.rows.map((r) => r.get('table_name') as string);
}

/**
 * Creates the namespace's keyspace and tables when missing and brings changed settings (replication, retention) in
 * line. Idempotent: a second call with the same config changes nothing. Bucket sizes are part of the data layout
 * and are never altered here (the CRD makes them immutable).
 *
 * Ownership comes first: the keyspace (if missing) and the rollups table, which records the owner, are created
 * before anything is altered, and the owner is read back. A keyspace holding tables but no Tally rollups table, a
 * rollups table Tally did not make, or (when `opts.owner` is given) another owner, ends the call with a
 * KeyspaceOwnedError before any ALTER; the loser of two callers racing for a new keyspace ends the same way.
 * keyspaceCreated is recorded only when this call created the keyspace: an existing empty one (a DBA's) is used,
 * but never counted as Tally's to drop.
 */
export async function ensureSchema(
  client: Client,
  config: NamespaceConfig,
  opts: EnsureSchemaOptions = {},
): Promise<SchemaChanges> {
  const { keyspace, eventsTable, rollupsTable, replication } = config.cassandra;
  const changes: SchemaChanges = {
    keyspaceCreated: false,
    replicationAltered: false,
    replicasAdded: [],
    tablesCreated: [],
    tablesAltered: [],
  };

  const current = await readReplication(client, ident(keyspace));
  if (!current) {
    await ddl(client, createKeyspaceCql(config), `creating keyspace ${keyspace}`);
    changes.keyspaceCreated = true;
  }

  if (!(await readTable(client, keyspace, rollupsTable))) {
    const others = (await tableNames(client, keyspace)).filter((t) => t !== rollupsTable);
    if (others.length > 0) {
      throw new KeyspaceOwnedError(
        keyspace,
        `it has tables (${others.sort().join(', ')}) but no Tally ${rollupsTable} table`,
      );
    }
    const ownership: Ownership = {
      owner: opts.owner ?? RUNTIME_OWNER,
      ...(opts.ownerName ? { name: opts.ownerName } : {}),
      ...(opts.counterNamespace ? { counterNamespace: opts.counterNamespace } : {}),
      keyspaceCreated: changes.keyspaceCreated,
    };
    await ddl(
      client,
      createRollupsTableCql(config, ownerComment(ownership)),
      `creating table ${keyspace}.${rollupsTable}`,
    );
    changes.tablesCreated.push(rollupsTable);
  }

  // Read back: with two callers racing, whichever CREATE TABLE landed first owns the keyspace.
  const rollups = await readTable(client, keyspace, rollupsTable);
  const owner = parseOwnerComment(rollups?.comment);
  if (!owner) throw new KeyspaceOwnedError(keyspace, `its ${rollupsTable} table was not made by Tally`);
  if (opts.owner !== undefined && owner.owner !== opts.owner) {
    throw new KeyspaceOwnedError(keyspace, `it belongs to ${owner.name ?? owner.owner}`, owner);
  }

  if (current && !sameReplication(current, replication)) {
    await ddl(
      client,
      `ALTER KEYSPACE ${ident(keyspace)} WITH replication = ${replicationLiteral(replication)}`,
      `altering the replication of keyspace ${keyspace}`,
    );
    changes.replicationAltered = true;
    changes.replicasAdded = raisedReplication(current, replication);
  }

  const events = await readTable(client, keyspace, eventsTable);
  if (!events) {
    await ddl(client, createEventsTableCql(config), `creating table ${keyspace}.${eventsTable}`);
    changes.tablesCreated.push(eventsTable);
  } else {
    const w = twcsWindowFor(config.eventStorage.retentionSeconds);
    const same =
      events.defaultTimeToLive === config.eventStorage.retentionSeconds &&
      events.compaction.compaction_window_unit === w.unit &&
      Number(events.compaction.compaction_window_size) === w.size;
    if (!same) {
      await ddl(client, alterEventsTableCql(config), `altering retention of ${keyspace}.${eventsTable}`);
      changes.tablesAltered.push(eventsTable);
    }
  }
  return changes;
}

/** Drops a namespace's keyspace with everything in it. */
export async function dropKeyspace(client: Client, keyspace: string): Promise<void> {
  await ddl(client, `DROP KEYSPACE IF EXISTS ${ident(keyspace)}`, `dropping keyspace ${keyspace}`);
}
