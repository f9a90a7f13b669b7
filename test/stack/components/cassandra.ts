import { Client, errors } from 'cassandra-driver';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Component, Endpoint, Probe } from '../component';
import { StackError } from '../log';
import { stackScript, stateDir } from '../paths';
import { portOr } from '../ports';
import { isAlive, logPath, runCommand, startProcess } from '../processes';
import { waitFor } from '../wait';
import { BRIDGE_IP, nodeEnabled, setUpHostNetwork } from '../node-network';

const PROCESS = 'cassandra';
/** The datacenter cassandra-cmd.sh names in cassandra-rackdc.properties. */
const LOCAL_DC = 'dc1';

/** The roles the stack creates: its own superuser, the operator's and the runtime's (see docs/local-stack.md). */
export const ROLES = { admin: 'tally_admin', operator: 'tally_operator', runtime: 'tally_runtime' } as const;
/** What a fresh data directory has until the stack replaces it. */
const DEFAULT_SUPERUSER = { username: 'cassandra', password: 'cassandra' };

export interface Credentials {
  username: string;
  password: string;
}

/** The stack's passwords, kept beside the data directory they belong to (and deleted with it). */
interface StackCredentials {
  admin: string;
  operator: string;
  runtime: string;
  /** Set once the keyspaces made before authentication was on have been handed to the operator's role. */
  legacyKeyspacesGranted?: boolean;
}

function credentialsFile(dir: string): string {
  return path.join(dir, 'credentials.json');
}

function loadCredentials(dir: string): StackCredentials {
  const file = credentialsFile(dir);
  if (fs.existsSync(file)) return JSON.parse(fs.readFileSync(file, 'utf8')) as StackCredentials;
  const password = (): string => randomBytes(24).toString('hex');
  const made: StackCredentials = { admin: password(), operator: password(), runtime: password() };
  saveCredentials(dir, made);
  return made;
}

function saveCredentials(dir: string, creds: StackCredentials): void {
  fs.mkdirSync(dir, { recursive: true });
  const tmp = `${credentialsFile(dir)}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(creds, null, 2), { mode: 0o600 });
  fs.renameSync(tmp, credentialsFile(dir));
}

/** Where the stack keeps the certificates Cassandra serves CQL with (cassandra-certs.sh). */
const tlsDir = (dir: string): string => path.join(dir, 'tls');
const caFile = (dir: string): string => path.join(tlsDir(dir), 'ca.crt');
/** The stack's own superuser, for tests that look at what only a superuser may see (e.g. system_views.clients). */
export function stackSuperuser(): Credentials {
  return { username: ROLES.admin, password: loadCredentials(path.join(stateDir(), 'cassandra')).admin };
}

/** The CA the stack's own Cassandra serves CQL under (the file exists once it has started with TLS). */
export const stackCaFile = (): string => caFile(path.join(stateDir(), 'cassandra'));

function client(contactPoints: string, localDataCenter: string, credentials?: Credentials, ca?: string): Client {
  return new Client({
    contactPoints: contactPoints.split(','),
    localDataCenter,
    ...(credentials ? { credentials } : {}),
    ...(ca ? { sslOptions: { ca: [fs.readFileSync(ca, 'utf8')], rejectUnauthorized: true } } : {}),
    isMetadataSyncEnabled: false,
    socketOptions: { connectTimeout: 2000, readTimeout: 5000 },
  });
}

/** Asks Cassandra for its release_version over CQL: the readiness check and the version shown by `status`. */
export async function cassandraVersion(
  contactPoints: string,
  localDataCenter: string,
  credentials?: Credentials,
  ca?: string,
): Promise<string> {
  const c = client(contactPoints, localDataCenter, credentials, ca);
  try {
    await c.connect();
    const rs = await c.execute('SELECT release_version FROM system.local');
    return String(rs.first()?.get('release_version'));
  } finally {
    await c.shutdown();
  }
}

function isAuthenticationError(err: unknown): boolean {
  if (err instanceof errors.AuthenticationError) return true;
  const inner = (err as { innerErrors?: Record<string, unknown> })?.innerErrors;
  return Object.values(inner ?? {}).some((e) => e instanceof errors.AuthenticationError);
}

/** A quoted CQL identifier or a string literal for names and passwords the stack itself made or read back. */
const quoted = (name: string): string => `"${name.replace(/"/g, '""')}"`;
const literal = (value: string): string => `'${value.replace(/'/g, "''")}'`;

/**
 * Connects as the stack's superuser, or, on a data directory that has none yet, as the default one (created at
 * start-up by cassandra-cmd.sh's settings): whichever logs in.
 */
async function superuser(address: string, dir: string, creds: StackCredentials): Promise<Client> {
  const tryLogin = async (credentials: Credentials): Promise<Client | undefined> => {
    const c = client(address, LOCAL_DC, credentials, caFile(dir));
    try {
      await c.connect();
      return c;
    } catch (err) {
      await c.shutdown();
      if (isAuthenticationError(err)) return undefined;
      throw err;
    }
  };
  const c = (await tryLogin({ username: ROLES.admin, password: creds.admin })) ?? (await tryLogin(DEFAULT_SUPERUSER));
  if (!c) {
    throw new StackError(
      `cassandra: neither ${ROLES.admin} (password in ${credentialsFile(dir)}) nor the default superuser can log in; ` +
        `the data directory ${dir} belongs to other credentials: stop the stack and delete it to start over`,
    );
  }
  return c;
}

/**
 * Roles for the stack, idempotent at every start: its own superuser in place of the default one (dropped), the
 * operator's (may create keyspaces, and roles for the rollup Jobs; Cassandra gives a role every permission on what it
 * creates, so it may alter, drop and grant on its own keyspaces and roles, and nothing else), and the runtime's
 * (no permission of its own: the operator grants it SELECT and MODIFY on each CounterNamespace's keyspace).
 */
async function ensureRoles(address: string, dir: string, creds: StackCredentials): Promise<void> {
  let c = await superuser(address, dir, creds);
  try {
    const run = async (cql: string): Promise<void> => {
      await c.execute(cql);
    };
    const login = (role: string, password: string): Promise<void> =>
      run(`CREATE ROLE IF NOT EXISTS ${quoted(role)} WITH LOGIN = true AND PASSWORD = ${literal(password)}`);
    await run(
      `CREATE ROLE IF NOT EXISTS ${quoted(ROLES.admin)} WITH SUPERUSER = true AND LOGIN = true AND PASSWORD = ${literal(creds.admin)}`,
    );
    await c.shutdown();
    c = client(address, LOCAL_DC, { username: ROLES.admin, password: creds.admin }, caFile(dir));
    await c.connect();
    await run(`DROP ROLE IF EXISTS ${quoted(DEFAULT_SUPERUSER.username)}`);
    await login(ROLES.operator, creds.operator);
    await run(`GRANT CREATE ON ALL KEYSPACES TO ${quoted(ROLES.operator)}`);
    await run(`GRANT CREATE ON ALL ROLES TO ${quoted(ROLES.operator)}`);
    await login(ROLES.runtime, creds.runtime);
    if (!creds.legacyKeyspacesGranted) {
      // A data directory from before authentication: its keyspaces have no creator, so the operator's role gets what
      // it would have had as their creator (everything a test or the operator made there was made on its behalf).
      const rs = await c.execute('SELECT keyspace_name FROM system_schema.keyspaces');
      for (const row of rs.rows) {
        const ks = String(row.get('keyspace_name'));
        if (!ks.startsWith('system'))
          await run(`GRANT ALL PERMISSIONS ON KEYSPACE ${quoted(ks)} TO ${quoted(ROLES.operator)}`);
      }
      saveCredentials(dir, { ...creds, legacyKeyspacesGranted: true });
    }
  } catch (err) {
    throw new Error(`cassandra: creating the stack's roles on ${address}`, { cause: err });
  } finally {
    await c.shutdown();
  }
}

/**
 * What .tally/env exports for Cassandra: the operator's credentials for every tool and test, the runtime's apart, and
 * the CA that Cassandra's TLS certificate chains to.
 */
function endpointEnv(address: string, dir: string, creds: StackCredentials): Record<string, string> {
  return {
    CASSANDRA_CONTACT_POINTS: address,
    CASSANDRA_LOCAL_DC: LOCAL_DC,
    CASSANDRA_CA_FILE: caFile(dir),
    CASSANDRA_USERNAME: ROLES.operator,
    CASSANDRA_PASSWORD: creds.operator,
    TALLY_CASSANDRA_RUNTIME_ROLE: ROLES.runtime,
    TALLY_CASSANDRA_RUNTIME_PASSWORD: creds.runtime,
  };
}

/** The credentials an endpoint's env carries, if any. */
function credentialsOf(env: Record<string, string | undefined>): Credentials | undefined {
  return env.CASSANDRA_USERNAME
    ? { username: env.CASSANDRA_USERNAME, password: env.CASSANDRA_PASSWORD ?? '' }
    : undefined;
}

export const cassandra: Component = {
  name: 'cassandra',
  phase: 0,
  externalVars: ['CASSANDRA_CONTACT_POINTS'],
  processes: [PROCESS],

  fromEnvironment(env) {
    const points = env.CASSANDRA_CONTACT_POINTS;
    if (!points) return undefined;
    return {
      address: points,
      env: {
        CASSANDRA_CONTACT_POINTS: points,
        CASSANDRA_LOCAL_DC: env.CASSANDRA_LOCAL_DC ?? LOCAL_DC,
        ...pick(env, [
          'CASSANDRA_USERNAME',
          'CASSANDRA_PASSWORD',
          'TALLY_CASSANDRA_RUNTIME_ROLE',
          'TALLY_CASSANDRA_RUNTIME_PASSWORD',
          'CASSANDRA_CA_FILE',
        ]),
      },
    };
  },

  async install() {
    await runCommand('bash', [stackScript('install-cassandra.sh')]);
  },

  // Pods reach Cassandra on the node's bridge address (the chart expects it outside the cluster): switching restarts it.
  // The rest names the configuration cassandra-cmd.sh writes, so a running one without it is restarted.
  fingerprint() {
    return `${nodeEnabled() ? 'with-node' : ''}/password-auth/tls`;
  },

  async start(_env, previous): Promise<Endpoint> {
    // With the node, CQL listens on the bridge address, which the host reaches too and no other interface does.
    const host = nodeEnabled() ? BRIDGE_IP : '127.0.0.1';
    if (host === BRIDGE_IP) await setUpHostNetwork();
    const nativePort = await portOr(previous?.ports?.native);
    const storagePort = await portOr(previous?.ports?.storage);
    const jmxPort = await portOr(previous?.ports?.jmx);
    const dir = path.join(stateDir(), 'cassandra');
    // Both addresses, whichever CQL listens on now: switching the node on or off keeps the CA clients trust.
    await runCommand('bash', [stackScript('cassandra-certs.sh'), tlsDir(dir), '127.0.0.1', BRIDGE_IP]);
    const record = startProcess(
      PROCESS,
      'bash',
      [stackScript('cassandra-cmd.sh'), dir, String(nativePort), String(storagePort), String(jmxPort), host],
      { env: { ...process.env, CASSANDRA_TLS_DIR: tlsDir(dir) } },
    );
    const address = `${host}:${nativePort}`;
    const creds = loadCredentials(dir);
    await waitFor(
      `Cassandra to answer CQL on ${address}`,
      // As a superuser: on a fresh data directory the default one appears just after the port opens.
      async () => {
        const c = await superuser(address, dir, creds);
        try {
          const rs = await c.execute('SELECT release_version FROM system.local');
          return String(rs.first()?.get('release_version')).startsWith('5.');
        } finally {
          await c.shutdown();
        }
      },
      {
        timeoutMs: 180_000,
        intervalMs: 1000,
        logPath: `${path.join(dir, 'logs', 'system.log')} (console: ${logPath(PROCESS)})`,
        stillRunning: () => isAlive(record),
      },
    );
    await ensureRoles(address, dir, creds);
    return {
      address,
      env: endpointEnv(address, dir, creds),
      ports: { native: nativePort, storage: storagePort, jmx: jmxPort },
    };
  },

  async probe(endpoint): Promise<Probe> {
    const version = await cassandraVersion(
      endpoint.env.CASSANDRA_CONTACT_POINTS!,
      endpoint.env.CASSANDRA_LOCAL_DC ?? LOCAL_DC,
      credentialsOf(endpoint.env),
      endpoint.env.CASSANDRA_CA_FILE,
    );
    return { ok: true, version };
  },
};

function pick(env: NodeJS.ProcessEnv, keys: string[]): Record<string, string> {
  return Object.fromEntries(keys.flatMap((k) => (env[k] ? [[k, env[k]]] : [])));
}
