import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { types, type Client } from 'cassandra-driver';
import { KubeClient } from '../../../operator/kube-api';
import type { OperatorConfig } from '../../../operator/config';
import { rollupSecretName } from '../../../operator/reconcile/owned';
import { cassandraSettingsFromEnv, createCassandraClient } from '../../../store/client';
import { dropKeyspace } from '../../../store/ensure';
import { requireEnv } from '../../support/env';
import { createNamespace, customObjects, deleteNamespace, installCrd, kubeConfig } from '../../support/kube';
import { stackEnv, uniqueSuffix } from '../../support/runtime-harness';
import { waitFor } from '../../stack/wait';
import { GROUP, createCounterNamespace, reconcileToRest, reconcilerOn, stackOperatorConfig } from './reconcile-support';

/**
 * The stack's Cassandra checks passwords and permissions (test/stack/cassandra-cmd.sh): what the runtime's role and
 * each CounterNamespace's rollup role may do once the operator has provisioned, and after it has let go.
 */
/** Schema changes wait for agreement: far longer than the one-second request timeout of reads and writes. */
const DDL_TIMEOUT_MS = 60_000;

describe('Cassandra roles: the runtime and the rollup Jobs get SELECT and MODIFY on their keyspaces only', () => {
  const run = uniqueSuffix();
  const ns = `tally-roles-${run}`;
  const a = `roles-a-${run}`;
  const b = `roles-b-${run}`;
  const ks = (name: string): string => `tally_${name.replace(/-/g, '_')}`;
  let kc: KubeConfig;
  let kube: KubeClient;
  let operatorClient: Client;
  let runtime: Client;
  let operator: OperatorConfig;
  const clients: Client[] = [];

  const login = async (username: string, password: string): Promise<Client> => {
    const c = createCassandraClient({ ...cassandraSettingsFromEnv(stackEnv()), username, password });
    clients.push(c);
    await c.connect();
    return c;
  };
  const reconcile = (name: string) => reconcileToRest(reconcilerOn(kube, operatorClient, operator), `${ns}/${name}`);
  /** Cassandra's answer to a statement: 'ok', or its error code in hex with the message. */
  const answer = async (c: Client, cql: string, params: unknown[] = []): Promise<string> => {
    try {
      await c.execute(cql, params, { prepare: params.length > 0, readTimeout: DDL_TIMEOUT_MS });
      return 'ok';
    } catch (err) {
      const e = err as { code?: number; message?: string };
      return `${(e.code ?? 0).toString(16)} ${e.message}`;
    }
  };
  const unauthorized = expect.stringMatching(
    new RegExp(`^${types.responseErrorCodes.unauthorized.toString(16)} `),
  ) as unknown as string;
  const readWrite = async (c: Client, keyspace: string): Promise<string[]> => [
    await answer(c, `INSERT INTO ${keyspace}.rollups (counter_name, rollup_count) VALUES (?, ?)`, ['c', 1n]),
    await answer(c, `SELECT rollup_count FROM ${keyspace}.rollups WHERE counter_name = ?`, ['c']),
  ];
  const rollupCredentials = async (name: string): Promise<{ username: string; password: string }> => {
    const secret = await kc
      .makeApiClient(CoreV1Api)
      .readNamespacedSecret({ namespace: ns, name: rollupSecretName(name) });
    const field = (k: string): string => Buffer.from(secret.data![k]!, 'base64').toString('utf8');
    return { username: field('username'), password: field('password') };
  };
  const rollupLogin = async (name: string): Promise<Client> => {
    const { username, password } = await rollupCredentials(name);
    return login(username, password);
  };

  beforeAll(async () => {
    kc = kubeConfig();
    await installCrd(kc);
    await createNamespace(kc, ns);
    kube = new KubeClient(kc);
    operatorClient = createCassandraClient(cassandraSettingsFromEnv(stackEnv()));
    await operatorClient.connect();
    operator = stackOperatorConfig({ runtimeRole: requireEnv('TALLY_CASSANDRA_RUNTIME_ROLE') });
    for (const [name, deletionPolicy] of [
      [a, 'Retain'],
      [b, 'Delete'],
    ] as const) {
      await createCounterNamespace(kc, ns, name, { counterType: 'Eventual', deletionPolicy });
      expect(await reconcile(name)).toEqual({ kind: 'done' });
    }
    runtime = await login(requireEnv('TALLY_CASSANDRA_RUNTIME_ROLE'), requireEnv('TALLY_CASSANDRA_RUNTIME_PASSWORD'));
  });
  afterAll(async () => {
    await deleteNamespace(kc, ns, false);
    for (const keyspace of [ks(a), ks(b)]) await dropKeyspace(operatorClient, keyspace).catch(() => undefined);
    for (const c of [operatorClient, ...clients]) await c.shutdown();
  });

  it("lets the runtime's role SELECT and MODIFY a provisioned CounterNamespace's keyspace", async () => {
    expect(await readWrite(runtime, ks(a))).toEqual(['ok', 'ok']);
  });

  it("refuses the runtime's role every CREATE, ALTER and DROP, with Cassandra's unauthorized error", async () => {
    const statements = [
      `CREATE KEYSPACE tally_x_${run.replace(/-/g, '_')} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`,
      `CREATE TABLE ${ks(a)}.extra (k int PRIMARY KEY)`,
      `CREATE INDEX ON ${ks(a)}.rollups (rollup_count)`,
      `CREATE TYPE ${ks(a)}.t (f int)`,
      `CREATE ROLE tally_x WITH LOGIN = true AND PASSWORD = 'x'`,
      `ALTER KEYSPACE ${ks(a)} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`,
      `ALTER TABLE ${ks(a)}.rollups WITH comment = 'mine'`,
      `ALTER TABLE ${ks(a)}.events ADD extra int`,
      `ALTER ROLE ${requireEnv('CASSANDRA_USERNAME')} WITH PASSWORD = 'taken'`,
      `DROP TABLE ${ks(a)}.events`,
      `DROP KEYSPACE ${ks(a)}`,
      `DROP ROLE ${requireEnv('CASSANDRA_USERNAME')}`,
      `GRANT SELECT ON KEYSPACE ${ks(a)} TO ${requireEnv('TALLY_CASSANDRA_RUNTIME_ROLE')}`,
      `GRANT CREATE ON ALL KEYSPACES TO ${requireEnv('TALLY_CASSANDRA_RUNTIME_ROLE')}`,
    ];
    for (const cql of statements) expect([cql, await answer(runtime, cql)]).toEqual([cql, unauthorized]);
  });

  it("gives each rollup Job a role that reaches its own keyspace and no other CounterNamespace's", async () => {
    const jobA = await rollupLogin(a);
    expect(await readWrite(jobA, ks(a))).toEqual(['ok', 'ok']);
    expect(await readWrite(jobA, ks(b))).toEqual([unauthorized, unauthorized]);
    expect(await answer(jobA, `DROP TABLE ${ks(a)}.events`)).toEqual(unauthorized);
  });

  it('takes the access back as a CounterNamespace goes: kept keyspace revoked, rollup role dropped', async () => {
    const jobA = await rollupCredentials(a);
    await customObjects(kc).deleteNamespacedCustomObject({ ...GROUP, namespace: ns, name: a });
    expect(await reconcile(a)).toEqual({ kind: 'done' });
    // Permissions are cached by Cassandra for up to permissions_validity (2 s by default).
    await waitFor(
      "the runtime's grant on the retained keyspace to lapse",
      async () => (await readWrite(runtime, ks(a))).every((r) => r !== 'ok'),
      { timeoutMs: 20_000, intervalMs: 500 },
    );
    expect(await readWrite(runtime, ks(a))).toEqual([unauthorized, unauthorized]);
    // Retain: the data stays, only the access went.
    expect((await readWrite(operatorClient, ks(a)))[1]).toBe('ok');
    // And so are logins, for up to credentials_validity (2 s by default): the dropped role's is refused after that.
    let refusal = '';
    await waitFor(
      "the dropped rollup role's login to be refused",
      async () => {
        refusal = await login(jobA.username, jobA.password).then(
          () => '',
          (err: Error) => err.message,
        );
        return refusal !== '';
      },
      { timeoutMs: 20_000, intervalMs: 500 },
    );
    expect(refusal).toMatch(/Provided username .* incorrect/);
  });

  it('needs no REVOKE for a dropped keyspace: one created again under the same name grants the runtime nothing', async () => {
    expect(await readWrite(runtime, ks(b))).toEqual(['ok', 'ok']);
    await customObjects(kc).deleteNamespacedCustomObject({ ...GROUP, namespace: ns, name: b });
    expect(await reconcile(b)).toEqual({ kind: 'done' });
    expect(
      await answer(
        operatorClient,
        `CREATE KEYSPACE ${ks(b)} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`,
      ),
    ).toBe('ok');
    await operatorClient.execute(
      `CREATE TABLE ${ks(b)}.rollups (counter_name text PRIMARY KEY, rollup_count bigint)`,
      [],
      { readTimeout: DDL_TIMEOUT_MS },
    );
    await waitFor('cached permissions to lapse', async () => (await readWrite(runtime, ks(b)))[1] !== 'ok', {
      timeoutMs: 20_000,
      intervalMs: 500,
    });
    expect(await readWrite(runtime, ks(b))).toEqual([unauthorized, unauthorized]);
  });
});
