import type { Client } from 'cassandra-driver';
import type { NamespaceConfig } from '../api/namespace-config';
import { whileDoing } from '../lib/errors';
import { ident } from './cql';
import {
  alterEventsTableCql,
  alterReplicationCql,
  createEventsTableCql,
  createKeyspaceCql,
  createRollupsTableCql,
  dropKeyspaceCql,
  setRollupsCommentCql,
  twcsWindowFor,
} from './ddl';
import {
  KeyspaceOwnedError,
  RUNTIME_OWNER,
  claimOf,
  ownerComment,
  ownershipOf,
  type CounterNamespaceRef,
  type KeyspaceCreationRecord,
  type Ownership,
} from './ownership';
import { raisedReplication, sameReplication } from './replication';
import { readReplication, readTable, tableNames } from './system-schema';

/**
 * Brings a namespace's keyspace and tables into being and in line with its configuration. The runtime
 * (`serve --provision`) and the operator both call ensureSchema, so the tables a namespace gets never depend on who
 * created them.
 */

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
  /** Where the caller records that it creates the keyspace; without one, a crash before the rollups table loses it. */
  creation?: KeyspaceCreationRecord;
}

/** DDL waits for the schema to settle on every node: far slower than a read or a write. */
const DDL_TIMEOUT_MS = 60_000;

async function ddl(client: Client, cql: string, doing: string): Promise<void> {
  try {
    await client.execute(cql, [], { readTimeout: DDL_TIMEOUT_MS });
  } catch (err) {
    throw whileDoing(doing, err);
  }
}

/** Rewrites who owns a namespace's tables (the operator adopting what `serve --provision` created). */
export async function setOwnership(client: Client, config: NamespaceConfig, ownership: Ownership): Promise<void> {
  await ddl(
    client,
    setRollupsCommentCql(config, ownerComment(ownership)),
    `recording the owner of ${config.cassandra.keyspace}`,
  );
}

/**
 * Drops a namespace's keyspace with everything in it; a missing one is left alone, since with authorization on
 * Cassandra refuses even `DROP KEYSPACE IF EXISTS` of a keyspace nobody granted DROP on (one that no longer exists).
 */
export async function dropKeyspace(client: Client, keyspace: string): Promise<void> {
  if (!(await readReplication(client, ident(keyspace)))) return;
  await ddl(client, dropKeyspaceCql(keyspace), `dropping keyspace ${keyspace}`);
}

/** What ensureSchema reports before it has changed anything. */
export function noSchemaChanges(): SchemaChanges {
  return { keyspaceCreated: false, replicationAltered: false, replicasAdded: [], tablesCreated: [], tablesAltered: [] };
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
 * keyspaceCreated is recorded only when this call created the keyspace, or `opts.creation` says an earlier one did:
 * an existing empty one (a DBA's) is used, but never counted as Tally's to drop.
 */
export async function ensureSchema(
  client: Client,
  config: NamespaceConfig,
  opts: EnsureSchemaOptions = {},
): Promise<SchemaChanges> {
  const { keyspace, eventsTable, rollupsTable, replication } = config.cassandra;
  const changes = noSchemaChanges();

  const current = await readReplication(client, ident(keyspace));
  if (!current) {
    await opts.creation?.creating();
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
      // An earlier call may have created it and stopped (a crash, a failed CREATE TABLE) before this table.
      keyspaceCreated: changes.keyspaceCreated || ((await opts.creation?.wasCreating()) ?? false),
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
  const claim = claimOf(ownershipOf(rollups?.comment), opts.owner, rollupsTable);
  if (claim.kind === 'taken' || claim.kind === 'adoptable') {
    throw new KeyspaceOwnedError(keyspace, claim.why, claim.ownership);
  }

  if (current && !sameReplication(current, replication)) {
    await ddl(client, alterReplicationCql(keyspace, replication), `altering the replication of keyspace ${keyspace}`);
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
