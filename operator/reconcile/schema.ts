import { ConditionType, EventReason, Reason } from '../../api/conditions';
import { ConfigError, resolveCounterNamespace } from '../../api/resolve';
import { messageOf, whileDoing } from '../../lib/errors';
import { errorMessage, whileCalling } from '../../lib/kube/request';
import type { NamespaceConfig } from '../../api/namespace-config';
import type { SchemaChanges } from '../../store/ensure';
import { isRefused } from '../../store/client';
import {
  KeyspaceOwnedError,
  claimOf,
  type CounterNamespaceRef,
  type KeyspaceCreationRecord,
  type Ownership,
} from '../../store/ownership';
import { condition, conditionChanges, type ReconcileContext } from './context';
import { REJECTED_RECHECK_MS } from './owned-objects';
import { Continue, Done, failed, requeueAfter, type StepResult } from './step';

/** How soon a CounterNamespace blocked by another one's keyspace is looked at again. */
const CONFLICT_RECHECK_MS = 60_000;
const AGREEMENT_RECHECK_MS = 5_000;

/** The spec as the runtime will use it: the same resolver file mode uses, so both agree on every default. */
export function resolveSpec(ctx: ReconcileContext): Promise<StepResult> {
  try {
    ctx.config = resolveCounterNamespace(ctx.cns);
  } catch (err) {
    const message = err instanceof ConfigError ? err.message : messageOf(err);
    condition(ctx, ConditionType.Ready, 'False', Reason.InvalidSpec, message);
    // A retry cannot fix the spec; the next edit triggers a new reconcile.
    return Promise.resolve(Done);
  }
  ctx.status.keyspace = ctx.config.cassandra.keyspace;
  ctx.status.eventsTable = ctx.config.cassandra.eventsTable;
  ctx.status.rollupsTable = ctx.config.cassandra.rollupsTable;
  return Promise.resolve(Continue);
}

export async function cassandraDown(ctx: ReconcileContext, doing: string, err: unknown): Promise<StepResult> {
  const message = `${doing}: ${messageOf(err)}`;
  if (conditionChanges(ctx, ConditionType.Ready, 'False', Reason.CassandraUnavailable)) {
    await ctx.event('Warning', EventReason.CassandraUnavailable, message);
  }
  condition(ctx, ConditionType.Ready, 'False', Reason.CassandraUnavailable, message);
  condition(ctx, ConditionType.KeyspaceReady, 'Unknown', Reason.CassandraUnavailable, message);
  return failed(whileDoing(doing, err));
}

/**
 * Keyspace and tables through the runtime's own schema module, after checking that no other CounterNamespace owns
 * the keyspace (the later claimant touches nothing) and that Cassandra's nodes agree on the schema.
 */
export async function ensureKeyspaceAndTables(ctx: ReconcileContext): Promise<StepResult> {
  const config = ctx.config!;
  const keyspace = config.cassandra.keyspace;
  try {
    const blocked = await claimKeyspace(ctx, config);
    if (blocked) return blocked;
    if (!(await ctx.schema.schemaAgreement())) {
      condition(
        ctx,
        ConditionType.KeyspaceReady,
        'Unknown',
        Reason.SchemaDisagreement,
        'waiting for Cassandra nodes to agree on the schema',
      );
      return requeueAfter(AGREEMENT_RECHECK_MS, 'schema disagreement');
    }
    let changes: SchemaChanges;
    try {
      // Refuses (before any ALTER) a keyspace with tables that are not Tally's, and the loser of two
      // CounterNamespaces racing for one new keyspace: whichever created the rollups table owns it.
      changes = await ctx.schema.ensureSchema(config, {
        owner: ctx.cns.metadata.uid!,
        ...ownerOf(ctx),
        creation: keyspaceCreation(ctx, keyspace),
      });
    } catch (err) {
      if (err instanceof KeyspaceOwnedError) return await conflict(ctx, keyspace, err.why);
      throw err;
    }
    await announceChanges(ctx, config, changes);
    settleConditions(ctx, config, changes);
    return Continue;
  } catch (err) {
    if (err instanceof CreationRecordFailed) {
      condition(ctx, ConditionType.KeyspaceReady, 'Unknown', Reason.ReconcileFailed, err.error.message);
      return failed(err.error);
    }
    if (isRefused(err)) return await cassandraRefused(ctx, `provisioning keyspace ${keyspace}`, err);
    return cassandraDown(ctx, `provisioning keyspace ${keyspace}`, err);
  }
}

/**
 * Cassandra refused a statement (syntax, invalid request, permission): not retried in a loop, since sending it again
 * changes nothing; Ready=False saying so, a Warning Event, and a long recheck (an edit of the spec wakes it at once).
 */
export async function cassandraRefused(ctx: ReconcileContext, doing: string, err: unknown): Promise<StepResult> {
  const message = `${doing}: Cassandra refused it: ${messageOf(err)}`;
  if (conditionChanges(ctx, ConditionType.Ready, 'False', Reason.CassandraRejected)) {
    await ctx.event('Warning', EventReason.CassandraRejected, message);
  }
  condition(ctx, ConditionType.Ready, 'False', Reason.CassandraRejected, message);
  condition(ctx, ConditionType.KeyspaceReady, 'False', Reason.CassandraRejected, message);
  return requeueAfter(REJECTED_RECHECK_MS, 'Cassandra refused the schema statements');
}

/** A Kubernetes call of keyspaceCreation failed: reported as that, not as Cassandra being down. */
class CreationRecordFailed extends Error {
  constructor(readonly error: Error) {
    super(error.message, { cause: error });
    this.name = 'CreationRecordFailed';
  }
}

/**
 * This CounterNamespace's record that it creates its keyspace: status.createdKeyspace, written on its own right
 * before CREATE KEYSPACE (the status write at the end of the reconcile may never come: a crash), and read back from
 * the API server when the object at hand lacks it (the informer's copy may predate the write).
 */
export function keyspaceCreation(ctx: ReconcileContext, keyspace: string): KeyspaceCreationRecord {
  const { namespace, name, uid } = ctx.cns.metadata;
  return {
    creating: async () => {
      try {
        await ctx.kube.patchStatus(ctx.cns, { createdKeyspace: keyspace });
      } catch (err) {
        throw new CreationRecordFailed(whileCalling(`recording that this object creates keyspace ${keyspace}`, err));
      }
      ctx.status.createdKeyspace = keyspace;
    },
    wasCreating: async () => {
      if (ctx.cns.status?.createdKeyspace === keyspace) return true;
      try {
        const live = await ctx.kube.getCounterNamespace(namespace!, name!);
        return live?.metadata.uid === uid && live?.status?.createdKeyspace === keyspace;
      } catch (err) {
        throw new CreationRecordFailed(whileCalling(`reading whether this object created keyspace ${keyspace}`, err));
      }
    },
  };
}

/** How this CounterNamespace is recorded as a keyspace's owner, besides its uid. */
function ownerOf(ctx: ReconcileContext): { ownerName: string; counterNamespace: CounterNamespaceRef } {
  const counterNamespace = { namespace: ctx.cns.metadata.namespace!, name: ctx.cns.metadata.name! };
  return { ownerName: `CounterNamespace ${counterNamespace.namespace}/${counterNamespace.name}`, counterNamespace };
}

/**
 * Makes the keyspace this CounterNamespace's to provision, or says why not: a conflict (the step's result) when
 * another owner that still exists has it. Adopts what `serve --provision` made, and takes over the keyspace of an
 * owner that no longer exists. Undefined when provisioning may go on.
 */
async function claimKeyspace(ctx: ReconcileContext, config: NamespaceConfig): Promise<StepResult | undefined> {
  const uid = ctx.cns.metadata.uid!;
  const keyspace = config.cassandra.keyspace;
  const claim = claimOf(await ctx.schema.readOwnership(config), uid, config.cassandra.rollupsTable);
  const { ownerName, counterNamespace } = ownerOf(ctx);
  if (claim.kind === 'adoptable') {
    // Tables a runtime provisioned for itself (`serve --provision`): adopted, so moving to the operator is seamless.
    await ctx.schema.setOwnership(config, {
      owner: uid,
      name: ownerName,
      counterNamespace,
      keyspaceCreated: claim.ownership.keyspaceCreated,
    });
    ctx.log.info({ keyspace }, 'adopted a keyspace provisioned by tally serve');
  } else if (claim.kind === 'taken') {
    const gone = await ownerGone(ctx, claim.ownership);
    if (gone.kind !== 'gone') return conflict(ctx, keyspace, claim.why + (gone.note ? ` (${gone.note})` : ''));
    // Tenants are Kubernetes namespaces: whoever may create CounterNamespaces in one must not reach the data another
    // left behind by naming its keyspace. Only an owner from this namespace is taken over.
    const from = claim.ownership?.counterNamespace?.namespace;
    if (from !== counterNamespace.namespace) {
      return conflict(
        ctx,
        keyspace,
        `it belonged to ${claim.ownership?.name ?? claim.ownership?.owner}, in ${from ? `Kubernetes namespace ${from}` : 'an unknown Kubernetes namespace'}, and a keyspace is never handed to another namespace (a cluster administrator who means to move it drops or renames it in Cassandra)`,
      );
    }
    // Its CounterNamespace was deleted with Retain (or the object was re-created: GitOps re-sync, restore). Whoever
    // claims the keyspace now takes it over, but not the right to drop it: a keyspace another object created is
    // kept on deletion even with deletionPolicy Delete.
    await ctx.schema.setOwnership(config, { owner: uid, name: ownerName, counterNamespace, keyspaceCreated: false });
    ctx.log.info({ keyspace, from: gone.from }, 'adopted a keyspace whose owner no longer exists');
    await ctx.event('Normal', EventReason.KeyspaceAdopted, `adopted keyspace ${keyspace} from ${gone.from}`);
  }
  return undefined;
}

/** One Event per change made: created, replication altered (a Warning when replicas need a repair), retention. */
async function announceChanges(ctx: ReconcileContext, config: NamespaceConfig, changes: SchemaChanges): Promise<void> {
  const keyspace = config.cassandra.keyspace;
  const replication = JSON.stringify(config.cassandra.replication);
  if (changes.keyspaceCreated)
    await ctx.event('Normal', EventReason.KeyspaceCreated, `created keyspace ${keyspace} with ${replication}`);
  if (changes.replicationAltered) {
    // New replicas hold none of the existing data until a repair streams it to them; until then LOCAL_QUORUM
    // reads can miss events and checkpoints.
    const added = changes.replicasAdded;
    await ctx.event(
      added.length > 0 ? 'Warning' : 'Normal',
      EventReason.ReplicationUpdated,
      `keyspace ${keyspace} replication is now ${replication}` +
        (added.length > 0
          ? `; replicas were added (${added.join(', ')}): run a full repair of ${keyspace} (nodetool repair -full ${keyspace}) before relying on them`
          : ''),
    );
  }
  if (changes.tablesCreated.length > 0) {
    await ctx.event(
      'Normal',
      EventReason.TablesCreated,
      `created ${changes.tablesCreated.map((t) => `${keyspace}.${t}`).join(', ')}`,
    );
  }
  if (changes.tablesAltered.length > 0) {
    await ctx.event(
      'Normal',
      EventReason.RetentionUpdated,
      `${keyspace}.${config.cassandra.eventsTable} now keeps events ${config.eventStorage.retentionSeconds} s`,
    );
  }
}

/** KeyspaceReady and TablesReady True; the reason names the last change, and with nothing changed it stays put. */
function settleConditions(ctx: ReconcileContext, config: NamespaceConfig, changes: SchemaChanges): void {
  const { keyspace, eventsTable, rollupsTable, replication } = config.cassandra;
  const ksReason = changes.keyspaceCreated
    ? Reason.KeyspaceCreated
    : changes.replicationAltered
      ? Reason.ReplicationUpdated
      : undefined;
  settle(
    ctx,
    ConditionType.KeyspaceReady,
    ksReason,
    Reason.KeyspaceExists,
    `keyspace ${keyspace}, replication ${JSON.stringify(replication)}`,
  );
  const tReason =
    changes.tablesCreated.length > 0
      ? Reason.TablesCreated
      : changes.tablesAltered.length > 0
        ? Reason.RetentionUpdated
        : undefined;
  settle(
    ctx,
    ConditionType.TablesReady,
    tReason,
    Reason.TablesExist,
    `${eventsTable} (TWCS, TTL ${config.eventStorage.retentionSeconds} s) and ${rollupsTable}`,
  );
}

/** Sets a True condition: with the reason of what changed now, else the reason it already has, else `steady`. */
function settle(
  ctx: ReconcileContext,
  type: string,
  changed: string | undefined,
  steady: string,
  message: string,
): void {
  const current = ctx.status.conditions?.find((c) => c.type === type);
  const keep = current?.status === 'True' ? current.reason : steady;
  condition(ctx, type, 'True', changed ?? keep, message);
}

/** Gone: `from` names the former owner and why it counts as gone, for the adoption's log and Event. */
type OwnerCheck = { kind: 'gone'; from: string } | { kind: 'alive'; note?: string };

/**
 * Whether the CounterNamespace recorded as the keyspace's owner still exists, asked of the API server (not the
 * informer's cache, which may lag or not cover the owner's namespace): gone when it is not found or when an object of
 * that name now has another uid. Without a recorded namespace/name (tables made outside Tally) or when the API cannot
 * say, the owner counts as alive: a keyspace is never taken on a guess.
 */
async function ownerGone(ctx: ReconcileContext, owner: Ownership | undefined): Promise<OwnerCheck> {
  if (!owner?.counterNamespace) return { kind: 'alive' };
  const ref = owner.counterNamespace;
  let live;
  try {
    live = await ctx.kube.getCounterNamespace(ref.namespace, ref.name);
  } catch (err) {
    return { kind: 'alive', note: `could not check whether it still exists: ${errorMessage(err)}` };
  }
  const from = `${owner.name ?? 'CounterNamespace'} (uid ${owner.owner}), which`;
  if (!live) return { kind: 'gone', from: `${from} no longer exists` };
  if (live.metadata.uid !== owner.owner)
    return { kind: 'gone', from: `${from} was deleted (now uid ${live.metadata.uid})` };
  return { kind: 'alive' };
}

/** Another owner's keyspace: touch nothing, say whose it is (or why it is not ours), and look again later. */
async function conflict(ctx: ReconcileContext, keyspace: string, why: string): Promise<StepResult> {
  const message = `keyspace ${keyspace} cannot be used: ${why}; set spec.cassandra.keyspace to another name`;
  if (conditionChanges(ctx, ConditionType.Ready, 'False', Reason.KeyspaceConflict)) {
    await ctx.event('Warning', EventReason.KeyspaceConflict, message);
  }
  condition(ctx, ConditionType.KeyspaceReady, 'False', Reason.KeyspaceConflict, message);
  condition(ctx, ConditionType.Ready, 'False', Reason.KeyspaceConflict, message);
  return requeueAfter(CONFLICT_RECHECK_MS, 'keyspace conflict');
}
