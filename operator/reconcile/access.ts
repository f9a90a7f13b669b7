import type { V1Secret } from '@kubernetes/client-node';
import { ConditionType } from '../../api/conditions';
import type { CounterNamespace } from '../../api/types';
import { resolveCounterNamespace } from '../../api/resolve';
import { isRefused } from '../../store/client';
import { claimOf } from '../../store/ownership';
import { rollupRoleName, rollupRolePassword } from '../../store/roles';
import { rollupCredentialsEnabled, rollupSecretEnabled, type OperatorConfig } from '../config';
import type { ReconcileContext } from './context';
import { ROLLUP_CA_KEY, ownedLabels, ownerReference, rollupSecretName } from './owned';
import { applyFailed } from './owned-objects';
import { cassandraDown, cassandraRefused } from './schema';
import { Continue, type StepResult } from './step';

/**
 * Who may read and write a CounterNamespace's keyspace besides the operator: the runtime's role, and a role of the
 * namespace's own for its rollup Job, whose password reaches the Job through a Secret in the CounterNamespace's
 * Kubernetes namespace (the operator's own credentials never leave the operator's namespace).
 */

/** The rollup Job's role and password for this CounterNamespace. */
export function rollupCredentials(cns: CounterNamespace, op: OperatorConfig): { username: string; password: string } {
  const uid = cns.metadata.uid!;
  return { username: rollupRoleName(uid), password: rollupRolePassword(op.cassandra.password ?? '', uid) };
}

async function cassandraFailed(ctx: ReconcileContext, doing: string, err: unknown): Promise<StepResult> {
  return isRefused(err) ? cassandraRefused(ctx, doing, err) : cassandraDown(ctx, doing, err);
}

/** GRANT SELECT, MODIFY on the keyspace to the runtime's role (idempotent: a repeated GRANT changes nothing). */
export async function grantRuntimeAccess(ctx: ReconcileContext): Promise<StepResult> {
  const role = ctx.operator.runtimeRole;
  if (!role) return Continue;
  const keyspace = ctx.config!.cassandra.keyspace;
  try {
    await ctx.schema.grantDataAccess(keyspace, role);
  } catch (err) {
    return cassandraFailed(ctx, `granting the runtime's role ${role} access to keyspace ${keyspace}`, err);
  }
  return Continue;
}

/** The rollup Job's role: created with its derived password unless it exists, with SELECT, MODIFY on this keyspace. */
export async function ensureRollupRole(ctx: ReconcileContext): Promise<StepResult> {
  if (!rollupCredentialsEnabled(ctx.operator)) return Continue;
  const keyspace = ctx.config!.cassandra.keyspace;
  const { username, password } = rollupCredentials(ctx.cns, ctx.operator);
  try {
    await ctx.schema.ensureLoginRole(username, password);
    await ctx.schema.grantDataAccess(keyspace, username);
  } catch (err) {
    return cassandraFailed(ctx, `giving the rollup Job's role ${username} access to keyspace ${keyspace}`, err);
  }
  return Continue;
}

/** The rollup Job's Secret: its role's credentials and, with TLS, the CA Cassandra's certificate chains to. */
export function desiredRollupSecret(cns: CounterNamespace, op: OperatorConfig): V1Secret {
  const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
  const data: Record<string, string> = {};
  if (rollupCredentialsEnabled(op)) {
    const { username, password } = rollupCredentials(cns, op);
    Object.assign(data, { username: b64(username), password: b64(password) });
  }
  if (op.cassandra.tls) data[ROLLUP_CA_KEY] = b64(op.cassandra.tls.ca);
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: rollupSecretName(cns.metadata.name!),
      namespace: cns.metadata.namespace!,
      labels: ownedLabels(cns),
      ownerReferences: [ownerReference(cns)],
    },
    type: 'Opaque',
    data,
  };
}

/** Server-side apply of the rollup Job's Secret: the same content every time, so a repeat changes nothing. */
export async function applyRollupSecret(ctx: ReconcileContext): Promise<StepResult> {
  if (!rollupSecretEnabled(ctx.operator)) return Continue;
  const desired = desiredRollupSecret(ctx.cns, ctx.operator);
  try {
    await ctx.kube.apply(desired);
  } catch (err) {
    return applyFailed(ctx, ConditionType.RollupScheduled, desired, err);
  }
  return Continue;
}

/**
 * On deletion, before the keyspace may be dropped: the rollup role goes (with its grants), and the runtime's role
 * loses the keyspace, unless another CounterNamespace owns it (the runtime still serves that one). A keyspace that is
 * dropped afterwards needs nothing more: DROP KEYSPACE removes every grant on it.
 */
export async function releaseDataAccess(ctx: ReconcileContext): Promise<void> {
  const { cns, operator: op } = ctx;
  if (rollupCredentialsEnabled(op)) await ctx.schema.dropRole(rollupRoleName(cns.metadata.uid!));
  if (!op.runtimeRole) return;
  let config;
  try {
    config = resolveCounterNamespace(cns);
  } catch {
    return; // An invalid spec was never provisioned, so nothing was granted.
  }
  const claim = claimOf(await ctx.schema.readOwnership(config), cns.metadata.uid, config.cassandra.rollupsTable);
  if (claim.kind === 'ours') await ctx.schema.revokeDataAccess(config.cassandra.keyspace, op.runtimeRole);
}
