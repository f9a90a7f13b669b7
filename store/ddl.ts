import type { NamespaceConfig, Replication } from '../api/namespace-config';
import { datacenterLiteral, ident, int, qualified, stringLiteral } from './cql';

/**
 * The CQL text of Tally's schema, and nothing else: the statements that create and change a namespace's keyspace
 * and tables. store/ensure.ts decides which of them to run.
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

export function alterReplicationCql(keyspace: string, replication: Replication): string {
  return `ALTER KEYSPACE ${ident(keyspace)} WITH replication = ${replicationLiteral(replication)}`;
}

export function dropKeyspaceCql(keyspace: string): string {
  return `DROP KEYSPACE IF EXISTS ${ident(keyspace)}`;
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

/** The rollups table's comment is where the owner is recorded (store/ownership.ts). */
export function setRollupsCommentCql(config: NamespaceConfig, comment: string): string {
  const { keyspace, rollupsTable } = config.cassandra;
  return `ALTER TABLE ${qualified(keyspace, rollupsTable)} WITH comment = ${stringLiteral(comment)}`;
}
