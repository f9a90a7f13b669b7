import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { Client } from 'cassandra-driver';
import type { CounterNamespace } from '../../../api/types';
import type { OperatorConfig } from '../../../operator/config';
import { KubeClient } from '../../../operator/kube-api';
import type { ReconcileResult } from '../../../operator/reconcile/step';
import { cassandraSettingsFromEnv, createCassandraClient } from '../../../store/client';
import { keyspaceTables, readOwnership } from '../../../store/system-schema';
import { createNamespace, customObjects, deleteNamespace, installCrd, kubeConfig } from '../../support/kube';
import { waitFor } from '../../stack/wait';
import { dropKeyspaces, keyspaceOf, stackEnv, uniqueSuffix } from '../../support/runtime-harness';
import { GROUP, createCounterNamespace, reconcileToRest, reconcilerOn, stackOperatorConfig } from './reconcile-support';

/**
 * The client, except that the first statement matching `statement` is not sent: `instead` answers it (a rejection:
 * Cassandra refused it; a promise that never settles: the operator was killed there, and nothing after it runs).
 */
function clientStoppingAt(client: Client, statement: RegExp, instead: () => Promise<never>): Client {
  let stopped = false;
  return new Proxy(client, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop, target);
      if (prop !== 'execute') return typeof value === 'function' ? (value as () => unknown).bind(target) : value;
      return (query: string, ...rest: unknown[]) => {
        if (!stopped && statement.test(query)) {
          stopped = true;
          return instead();
        }
        return (target.execute as (query: string, ...rest: unknown[]) => unknown).call(target, query, ...rest);
      };
    },
  });
}

/**
 * An operator that stops between CREATE KEYSPACE and CREATE TABLE (killed, or CREATE TABLE failing), against the real
 * API server and Cassandra: the keyspace it created must stay its own, so deletionPolicy Delete drops it, while an
 * empty keyspace someone else made is still never dropped.
 */
describe('a keyspace created by a reconcile that stopped before its tables', () => {
  const run = uniqueSuffix();
  const ns = `tally-kscrash-${run}`;
  let kc: KubeConfig;
  let cassandra: Client;
  let kube: KubeClient;
  let operator: OperatorConfig;
  const keyspaces: string[] = [];

  const reconcile = (name: string, client: Client = cassandra): Promise<ReconcileResult> =>
    reconcileToRest(reconcilerOn(kube, client, operator), `${ns}/${name}`);

  /** Starts a reconcile that is killed when it reaches CREATE TABLE; resolves once it got there. */
  async function killedAtCreateTable(name: string): Promise<void> {
    let reached!: () => void;
    const atKill = new Promise<void>((resolve) => (reached = resolve));
    const client = clientStoppingAt(cassandra, /^CREATE TABLE/, () => {
      reached();
      return new Promise<never>(() => undefined);
    });
    void reconcilerOn(kube, client, operator).reconcile(`${ns}/${name}`);
    await atKill;
  }

  const get = (name: string) => kube.getCounterNamespace(ns, name);
  const ownership = (keyspace: string) =>
    readOwnership(cassandra, { cassandra: { keyspace, rollupsTable: 'rollups' } } as never);

  const create = (name: string, spec: Record<string, unknown>) => createCounterNamespace(kc, ns, name, spec);

  /** Deletes the object and reconciles its deletion to the end; the Events of its keyspace's fate. */
  async function deleteAndReconcile(cns: CounterNamespace): Promise<string[]> {
    const name = cns.metadata.name!;
    await customObjects(kc).deleteNamespacedCustomObject({ ...GROUP, namespace: ns, name });
    expect(await reconcile(name)).toEqual({ kind: 'done' });
    await waitFor(`${name} to be gone`, async () => (await get(name)) === undefined, { timeoutMs: 60_000 });
    const events = await kc
      .makeApiClient(CoreV1Api)
      .listNamespacedEvent({ namespace: ns, fieldSelector: `involvedObject.uid=${cns.metadata.uid}` });
    return events.items
      .filter((e) => e.reason === 'KeyspaceDropped' || e.reason === 'KeyspaceRetained')
      .map((e) => e.message ?? '');
  }

  beforeAll(async () => {
    kc = kubeConfig();
    await installCrd(kc);
    await createNamespace(kc, ns);
    cassandra = createCassandraClient(cassandraSettingsFromEnv(stackEnv()));
    await cassandra.connect();
    kube = new KubeClient(kc);
    operator = stackOperatorConfig();
  });
  afterAll(async () => {
    await deleteNamespace(kc, ns, false);
    await dropKeyspaces(keyspaces);
    await cassandra.shutdown();
  });

  it('killed there: the next operator records the keyspace as created by this object, and Delete drops it', async () => {
    const name = `killed-${run}`;
    const keyspace = keyspaceOf(name);
    keyspaces.push(keyspace);
    await create(name, { deletionPolicy: 'Delete' });
    await killedAtCreateTable(name);
    // What the killed operator left: the keyspace without a table, and the record it wrote before creating it.
    expect(await keyspaceTables(cassandra, keyspace)).toEqual([]);
    expect((await get(name))?.status?.createdKeyspace).toBe(keyspace);

    expect(await reconcile(name)).toEqual({ kind: 'done' });
    const cns = (await get(name))!;
    expect(cns.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
    expect(await ownership(keyspace)).toMatchObject({ owner: cns.metadata.uid, keyspaceCreated: true });

    expect(await deleteAndReconcile(cns)).toEqual([`dropped keyspace ${keyspace} (deletionPolicy Delete)`]);
    expect(await keyspaceTables(cassandra, keyspace)).toBeUndefined();
  });

  it('killed there, then deleted before any other reconcile: Delete still drops the empty keyspace', async () => {
    const name = `orphan-${run}`;
    const keyspace = keyspaceOf(name);
    keyspaces.push(keyspace);
    const cns = await create(name, { deletionPolicy: 'Delete' });
    await killedAtCreateTable(name);
    expect(await keyspaceTables(cassandra, keyspace)).toEqual([]);

    expect(await deleteAndReconcile(cns)).toEqual([`dropped keyspace ${keyspace} (deletionPolicy Delete)`]);
    expect(await keyspaceTables(cassandra, keyspace)).toBeUndefined();
  });

  it('CREATE TABLE failing once: the retry records the keyspace as created by this object', async () => {
    const name = `refused-${run}`;
    const keyspace = keyspaceOf(name);
    keyspaces.push(keyspace);
    await create(name, {});
    const failing = clientStoppingAt(cassandra, /^CREATE TABLE/, () =>
      Promise.reject(new Error('Operation timed out - received only 0 responses')),
    );
    const first = await reconcilerOn(kube, failing, operator).reconcile(`${ns}/${name}`);
    expect(first.kind).toBe('error');
    expect((first as { error: Error }).error.message).toContain(`creating table ${keyspace}.rollups`);
    expect((await get(name))?.status?.conditions?.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'False',
      reason: 'CassandraUnavailable',
    });

    expect(await reconcile(name)).toEqual({ kind: 'done' });
    expect((await ownership(keyspace))?.keyspaceCreated).toBe(true);
  });

  it('never counts as created, nor drops, an empty keyspace someone else made, even after such a stop', async () => {
    const name = `found-${run}`;
    const keyspace = `dba_found_${run}`;
    keyspaces.push(keyspace);
    await cassandra.execute(
      `CREATE KEYSPACE ${keyspace} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`,
    );
    const cns = await create(name, { cassandra: { keyspace }, deletionPolicy: 'Delete' });
    await killedAtCreateTable(name);
    expect((await get(name))?.status?.createdKeyspace).toBeUndefined();

    expect(await reconcile(name)).toEqual({ kind: 'done' });
    expect((await ownership(keyspace))?.keyspaceCreated).toBe(false);
    expect(await deleteAndReconcile(cns)).toEqual([
      `kept keyspace ${keyspace}: this CounterNamespace did not create it`,
    ]);
    expect(await keyspaceTables(cassandra, keyspace)).toEqual(expect.arrayContaining(['events', 'rollups']));
  });
});
