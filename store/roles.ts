import type { Client } from 'cassandra-driver';
import { createHmac } from 'node:crypto';
import { types } from 'cassandra-driver';
import { messageOf } from '../lib/errors';
import { ident } from './cql';

/**
 * Cassandra roles and the data-plane grants the operator manages: the runtime's role and one role per
 * CounterNamespace for its rollup Job get SELECT and MODIFY on that namespace's keyspace, nothing else. CQL binds
 * neither identifiers nor passwords, so both go through strict patterns and are never taken from a caller as is.
 */

/** Role names the operator puts into a statement: lower case, as an unquoted CQL name would be read. */
export const ROLE_NAME_PATTERN = '^[a-z][a-z0-9_]{0,127}$';
const roleName = new RegExp(ROLE_NAME_PATTERN);
/** Passwords the operator makes (rollupRolePassword): 64 hex digits, so the literal needs no escaping. */
const generatedPassword = /^[0-9a-f]{64}$/;

/** A role name, double-quoted so that it can never be read as a keyword, after checking it against the pattern. */
export function roleIdent(name: string): string {
  if (!roleName.test(name))
    throw new Error(`refusing Cassandra role name ${JSON.stringify(name)}: must match ${ROLE_NAME_PATTERN}`);
  return `"${name}"`;
}

/** The rollup Job's role of one CounterNamespace: named by its uid, which no other object has. */
export function rollupRoleName(uid: string): string {
  const name = `tally_rollup_${uid.toLowerCase().replace(/-/g, '_')}`;
  roleIdent(name); // throws for anything but a plain name
  return name;
}

/**
 * The rollup role's password, derived from a key only the operator holds (its own Cassandra password) and the
 * CounterNamespace's uid: the same on every reconcile and every replica, so the operator never needs to read a
 * Secret back, and knowing one namespace's password tells nothing of another's or of the key.
 */
export function rollupRolePassword(key: string, uid: string): string {
  return createHmac('sha256', key).update(`tally rollup role\0${uid}`).digest('hex');
}

/** Role statements are schema changes on system_auth: as slow as DDL. */
const ROLE_TIMEOUT_MS = 60_000;

/** Says what was being done and keeps Cassandra's error code (isRefused reads it) and, unless redacted, the cause. */
async function run(client: Client, cql: string, doing: string, secret?: string): Promise<void> {
  try {
    await client.execute(cql, [], { readTimeout: ROLE_TIMEOUT_MS });
  } catch (err) {
    const message = messageOf(err);
    // A server message may quote the statement (a syntax error does): never the password.
    const leaks = secret !== undefined && message.includes(secret);
    const wrapped = new Error(
      `while ${doing}: ${leaks ? message.split(secret).join('<redacted>') : message}`,
      leaks ? {} : { cause: err },
    );
    throw Object.assign(wrapped, { code: (err as { code?: number }).code });
  }
}

/** Creates a login role with a password the operator derived, unless it exists. */
export async function ensureLoginRole(client: Client, role: string, password: string): Promise<void> {
  if (!generatedPassword.test(password))
    throw new Error(`refusing a password for role ${role} not made by the operator`);
  await run(
    client,
    `CREATE ROLE IF NOT EXISTS ${roleIdent(role)} WITH LOGIN = true AND PASSWORD = '${password}'`,
    `creating Cassandra role ${role}`,
    password,
  );
}

/**
 * Drops a role the operator created. Cassandra answers "unauthorized" for a role that does not exist (the operator
 * holds DROP only on roles it made, and a missing one is none of them), so that answer means there is nothing of
 * the operator's to drop.
 */
export async function dropRole(client: Client, role: string): Promise<void> {
  try {
    await run(client, `DROP ROLE IF EXISTS ${roleIdent(role)}`, `dropping Cassandra role ${role}`);
  } catch (err) {
    if ((err as { code?: number }).code === types.responseErrorCodes.unauthorized) return;
    throw err;
  }
}

/** SELECT and MODIFY on every table of the keyspace, present and future: what counting and rollups need. */
export async function grantDataAccess(client: Client, keyspace: string, role: string): Promise<void> {
  await run(
    client,
    `GRANT SELECT, MODIFY ON KEYSPACE ${ident(keyspace)} TO ${roleIdent(role)}`,
    `granting ${role} SELECT and MODIFY on keyspace ${keyspace}`,
  );
}

/**
 * Takes back what grantDataAccess gave. A keyspace that no longer exists has no permissions left (DROP KEYSPACE
 * removes every grant on it), so Cassandra's "doesn't exist" is success.
 */
export async function revokeDataAccess(client: Client, keyspace: string, role: string): Promise<void> {
  try {
    await run(
      client,
      `REVOKE SELECT, MODIFY ON KEYSPACE ${ident(keyspace)} FROM ${roleIdent(role)}`,
      `revoking ${role}'s SELECT and MODIFY on keyspace ${keyspace}`,
    );
  } catch (err) {
    const e = err as { code?: number; message?: string };
    if (e.code === types.responseErrorCodes.invalid && /doesn't exist/.test(e.message ?? '')) return;
    throw err;
  }
}
