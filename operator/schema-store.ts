import type { Client } from 'cassandra-driver';
import type { NamespaceConfig } from '../api/namespace-config';
import {
  dropKeyspace,
  ensureSchema,
  setOwnership,
  type EnsureSchemaOptions,
  type SchemaChanges,
} from '../store/ensure';
import type { Ownership } from '../store/ownership';
import { dropRole, ensureLoginRole, grantDataAccess, revokeDataAccess } from '../store/roles';
import { keyspaceTables, readOwnership } from '../store/system-schema';

/**
 * The Cassandra schema operations the reconcile steps make, in one place: the seam between them and the keyspace
 * (unit tests pass a fake). Each is store/'s own function, so the operator and `serve --provision` share them.
 */
export interface SchemaStore {
  readOwnership(config: NamespaceConfig): Promise<Ownership | undefined>;
  setOwnership(config: NamespaceConfig, ownership: Ownership): Promise<void>;
  ensureSchema(config: NamespaceConfig, opts: EnsureSchemaOptions): Promise<SchemaChanges>;
  dropKeyspace(keyspace: string): Promise<void>;
  /** The keyspace's tables, undefined when it does not exist. */
  keyspaceTables(keyspace: string): Promise<string[] | undefined>;
  /** Whether every Cassandra node has the same schema version: DDL is safe only then. */
  schemaAgreement(): Promise<boolean>;
  /** SELECT and MODIFY on the keyspace for a role (store/roles.ts), and taking them back. */
  grantDataAccess(keyspace: string, role: string): Promise<void>;
  revokeDataAccess(keyspace: string, role: string): Promise<void>;
  /** A login role with the given password unless it exists, and dropping it (nothing when it is not there). */
  ensureLoginRole(role: string, password: string): Promise<void>;
  dropRole(role: string): Promise<void>;
}

export function cassandraSchemaStore(client: Client): SchemaStore {
  return {
    readOwnership: (config) => readOwnership(client, config),
    setOwnership: (config, ownership) => setOwnership(client, config, ownership),
    ensureSchema: (config, opts) => ensureSchema(client, config, opts),
    dropKeyspace: (keyspace) => dropKeyspace(client, keyspace),
    keyspaceTables: (keyspace) => keyspaceTables(client, keyspace),
    // Metadata.checkSchemaAgreement exists in cassandra-driver 4.x but is missing from its type declarations.
    schemaAgreement: () =>
      (client.metadata as unknown as { checkSchemaAgreement(): Promise<boolean> }).checkSchemaAgreement(),
    grantDataAccess: (keyspace, role) => grantDataAccess(client, keyspace, role),
    revokeDataAccess: (keyspace, role) => revokeDataAccess(client, keyspace, role),
    ensureLoginRole: (role, password) => ensureLoginRole(client, role, password),
    dropRole: (role) => dropRole(client, role),
  };
}
