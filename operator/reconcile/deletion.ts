import { ConditionType, EventReason, Reason } from '../../api/conditions';
import { FINALIZER } from '../../api/names';
import { resolveCounterNamespace } from '../../api/resolve';
import { messageOf, whileDoing } from '../../lib/errors';
import { whileCalling } from '../../lib/kube/request';
import { claimOf, mayDrop } from '../../store/ownership';
import { releaseDataAccess } from './access';
import { condition, type ReconcileContext } from './context';
import { keyspaceCreation } from './schema';
import { Continue, Done, failed, type StepResult } from './step';

/**
 * Deletion comes first and never waits for readiness. First the Cassandra access the operator granted goes (the
 * rollup Job's role, the runtime's grant on an owned keyspace), retried with backoff while Cassandra is down. Retain:
 * then let go. Delete: drop the keyspace if and only
 * if this CounterNamespace created it (recorded in the rollups table comment, or, before that table exists, in
 * status.createdKeyspace), then let go. With Cassandra down the drop is retried with backoff and the object says why
 * it is still there.
 */
export async function handleDeletion(ctx: ReconcileContext): Promise<StepResult> {
  const { cns } = ctx;
  if (!cns.metadata?.deletionTimestamp) return Continue;
  if (!(cns.metadata.finalizers ?? []).includes(FINALIZER)) return Done;

  try {
    await releaseDataAccess(ctx);
  } catch (err) {
    const message = `waiting to take back Cassandra access: ${messageOf(err)}`;
    condition(ctx, ConditionType.Ready, 'False', Reason.Deleting, message);
    await ctx.event(
      'Warning',
      EventReason.DropFailed,
      `taking back Cassandra access failed, retrying: ${messageOf(err)}`,
    );
    return failed(whileDoing("taking back the rollup Job's and the runtime's Cassandra access", err));
  }
  if (cns.spec?.deletionPolicy === 'Delete') {
    try {
      const config = resolveCounterNamespace(cns);
      const { keyspace, rollupsTable } = config.cassandra;
      const claim = claimOf(await ctx.schema.readOwnership(config), cns.metadata.uid, rollupsTable);
      // No rollups table: the operator may have stopped between creating the keyspace and its first table.
      const createdAndEmpty =
        claim.kind === 'unclaimed' &&
        (await ctx.schema.keyspaceTables(keyspace))?.length === 0 &&
        (await keyspaceCreation(ctx, keyspace).wasCreating());
      const verdict = mayDrop(claim, createdAndEmpty);
      if (verdict.drop) {
        await ctx.schema.dropKeyspace(keyspace);
        await ctx.event('Normal', EventReason.KeyspaceDropped, `dropped keyspace ${keyspace} (deletionPolicy Delete)`);
      } else {
        await ctx.event('Normal', EventReason.KeyspaceRetained, `kept keyspace ${keyspace}: ${verdict.why}`);
      }
    } catch (err) {
      condition(ctx, ConditionType.Ready, 'False', Reason.Deleting, `waiting to drop the keyspace: ${messageOf(err)}`);
      await ctx.event('Warning', EventReason.DropFailed, `dropping the keyspace failed, retrying: ${messageOf(err)}`);
      return failed(whileDoing('dropping the keyspace', err));
    }
  }
  try {
    await ctx.kube.setFinalizers(
      cns,
      (cns.metadata.finalizers ?? []).filter((f) => f !== FINALIZER),
    );
  } catch (err) {
    return failed(whileCalling('removing the finalizer', err));
  }
  ctx.log.info({ policy: cns.spec?.deletionPolicy ?? 'Retain' }, 'released for deletion');
  return Done;
}

/** The finalizer goes on before any side effect outside Kubernetes, so nothing created can be orphaned. */
export async function ensureFinalizer(ctx: ReconcileContext): Promise<StepResult> {
  const finalizers = ctx.cns.metadata?.finalizers ?? [];
  if (finalizers.includes(FINALIZER)) return Continue;
  try {
    const updated = await ctx.kube.setFinalizers(ctx.cns, [...finalizers, FINALIZER]);
    ctx.cns.metadata.resourceVersion = updated.metadata?.resourceVersion;
    ctx.cns.metadata.finalizers = updated.metadata?.finalizers;
  } catch (err) {
    return failed(whileCalling('adding the finalizer', err));
  }
  return Continue;
}
