import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BatchV1Api, CoreV1Api, type KubeConfig, type V1ConfigMap } from '@kubernetes/client-node';
import * as yaml from 'js-yaml';
import type { Client } from 'cassandra-driver';
import { CONFIG_KEY, FINALIZER, configMapName, cronJobName } from '../../../api/names';
import type { CounterNamespace } from '../../../api/types';
import type { OperatorConfig } from '../../../operator/config';
import { KubeClient } from '../../../operator/kube-api';
import { rollupArgs } from '../../../operator/reconcile/cronjob';
import type { ReconcileResult } from '../../../operator/reconcile/step';
import { validateNamespaceConfig } from '../../../api/resolve';
import { cassandraSettingsFromEnv, createCassandraClient } from '../../../store/client';
import { dropKeyspace } from '../../../store/ensure';
import { readOwnership, readReplication, readTable } from '../../../store/system-schema';
import { repoRoot } from '../../stack/paths';
import { createNamespace, customObjects, deleteNamespace, installCrd, kubeConfig } from '../../support/kube';
import { waitFor } from '../../stack/wait';
import { stackEnv, uniqueSuffix } from '../../support/runtime-harness';
import { TcpProxy } from '../../support/tcp-proxy';
import { GROUP, createCounterNamespace, reconcileToRest, reconcilerOn, stackOperatorConfig } from './reconcile-support';

/** The reconciler, driven step by step against the real API server, Cassandra and controller-manager. */
/** A DBA's schema change waits for schema agreement: longer than the 1 s request timeout Tally's clients use. */
const DDL = { readTimeout: 60_000 };

describe('reconciling a CounterNamespace', () => {
  const run = uniqueSuffix();
  const ns = `tally-rec-${run}`;
  let kc: KubeConfig;
  let cassandra: Client;
  let kube: KubeClient;
  let operator: OperatorConfig;
  const keyspaces: string[] = [];

  const reconcile = (name: string, client: Client = cassandra, namespace = ns): Promise<ReconcileResult> =>
    reconcileToRest(reconcilerOn(kube, client, operator), `${namespace}/${name}`);

  const get = (name: string, namespace = ns) => kube.getCounterNamespace(namespace, name) as Promise<CounterNamespace>;
  const condition = (cns: CounterNamespace, type: string) => cns.status?.conditions?.find((c) => c.type === type);

  const create = (name: string, spec: Record<string, unknown>, namespace = ns) =>
    createCounterNamespace(kc, namespace, name, spec);

  async function patchSpec(name: string, spec: Record<string, unknown>): Promise<void> {
    const { PatchStrategy, setHeaderOptions } = await import('@kubernetes/client-node');
    await customObjects(kc).patchNamespacedCustomObject(
      { ...GROUP, namespace: ns, name, body: { spec } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  }

  beforeAll(async () => {
    kc = kubeConfig();
    await installCrd(kc);
    await createNamespace(kc, ns);
    await createNamespace(kc, `${ns}-b`);
    cassandra = createCassandraClient(cassandraSettingsFromEnv(stackEnv()));
    await cassandra.connect();
    kube = new KubeClient(kc);
    operator = stackOperatorConfig({ imagePullSecrets: ['regcred'] });
  });
  afterAll(async () => {
    await deleteNamespace(kc, ns, false);
    await deleteNamespace(kc, `${ns}-b`, false);
    for (const ks of keyspaces) await dropKeyspace(cassandra, ks);
    await cassandra.shutdown();
  });

  const orders = `orders-${run}`;

  it('creates the keyspace, TWCS tables, ConfigMap and CronJob, and reports Ready', async () => {
    await create(orders, {
      counterType: 'Eventual',
      eventStorage: { retentionSeconds: 7200 },
      deletionPolicy: 'Delete',
    });
    keyspaces.push(`tally_orders_${run}`);
    expect(await reconcile(orders)).toEqual({ kind: 'done' });

    const cns = await get(orders);
    expect(cns.metadata.finalizers).toContain(FINALIZER);
    expect(cns.status).toMatchObject({
      observedGeneration: cns.metadata.generation,
      keyspace: `tally_orders_${run}`,
      eventsTable: 'events',
      rollupsTable: 'rollups',
      configMapName: configMapName(orders),
      cronJobName: cronJobName(orders),
    });
    for (const type of ['Ready', 'KeyspaceReady', 'TablesReady', 'CacheConfigured', 'RollupScheduled']) {
      expect([type, condition(cns, type)?.status]).toEqual([type, 'True']);
      expect(condition(cns, type)?.observedGeneration).toBe(cns.metadata.generation);
    }
    expect(condition(cns, 'KeyspaceReady')?.reason).toBe('KeyspaceCreated');

    const events = await readTable(cassandra, `tally_orders_${run}`, 'events');
    expect(events?.defaultTimeToLive).toBe(7200);
    expect(events?.compaction.class).toMatch(/TimeWindowCompactionStrategy$/);
    expect(
      await readOwnership(cassandra, {
        cassandra: { keyspace: `tally_orders_${run}`, rollupsTable: 'rollups' },
      } as never),
    ).toEqual({
      owner: cns.metadata.uid,
      name: `CounterNamespace ${ns}/${orders}`,
      counterNamespace: { namespace: ns, name: orders },
      keyspaceCreated: true,
    });

    const cm = await kc
      .makeApiClient(CoreV1Api)
      .readNamespacedConfigMap({ namespace: ns, name: configMapName(orders) });
    expect(cm.metadata?.ownerReferences).toEqual([
      expect.objectContaining({
        kind: 'CounterNamespace',
        name: orders,
        uid: cns.metadata.uid,
        controller: true,
        blockOwnerDeletion: true,
      }),
    ]);
    expect(cm.metadata?.labels?.['tally.dev/config']).toBe('namespace');
    const doc = validateNamespaceConfig(yaml.load(cm.data![CONFIG_KEY]!));
    expect(doc).toMatchObject({ name: orders, counterType: 'Eventual', cache: { servers: operator.memcachedServers } });

    const cj = await kc.makeApiClient(BatchV1Api).readNamespacedCronJob({ namespace: ns, name: cronJobName(orders) });
    expect(cj.metadata?.ownerReferences?.[0]?.uid).toBe(cns.metadata.uid);
    expect(cj.spec).toMatchObject({
      schedule: '*/5 * * * *',
      concurrencyPolicy: 'Forbid',
      successfulJobsHistoryLimit: 1,
      failedJobsHistoryLimit: 3,
    });
    const pod = cj.spec!.jobTemplate.spec!.template.spec!;
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true });
    expect(pod.imagePullSecrets).toEqual([{ name: 'regcred' }]);
    expect(pod.containers[0]).toMatchObject({
      image: 'tally-runtime:test',
      args: ['rollup', '--namespaces', `/etc/tally/namespace/${CONFIG_KEY}`, '--namespace', orders],
      securityContext: {
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ['ALL'] },
      },
      resources: { requests: { cpu: '50m', memory: '128Mi' } },
    });

    const recorded = await kc
      .makeApiClient(CoreV1Api)
      .listNamespacedEvent({ namespace: ns, fieldSelector: `involvedObject.name=${orders}` });
    expect(recorded.items.map((e) => e.reason)).toEqual(expect.arrayContaining(['KeyspaceCreated', 'TablesCreated']));
  });

  it('settles: reconciling a Ready object again writes nothing', async () => {
    const before = await get(orders);
    const cm = await kc
      .makeApiClient(CoreV1Api)
      .readNamespacedConfigMap({ namespace: ns, name: configMapName(orders) });
    const cj = await kc.makeApiClient(BatchV1Api).readNamespacedCronJob({ namespace: ns, name: cronJobName(orders) });
    for (let i = 0; i < 3; i++) expect(await reconcile(orders)).toEqual({ kind: 'done' });
    expect((await get(orders)).metadata.resourceVersion).toBe(before.metadata.resourceVersion);
    expect(
      (await kc.makeApiClient(CoreV1Api).readNamespacedConfigMap({ namespace: ns, name: configMapName(orders) }))
        .metadata?.resourceVersion,
    ).toBe(cm.metadata?.resourceVersion);
    expect(
      (await kc.makeApiClient(BatchV1Api).readNamespacedCronJob({ namespace: ns, name: cronJobName(orders) })).metadata
        ?.resourceVersion,
    ).toBe(cj.metadata?.resourceVersion);
  });

  it('follows a retention change into the table TTL and a replication change into the keyspace', async () => {
    await patchSpec(orders, {
      eventStorage: { retentionSeconds: 14400 },
      cassandra: { replication: { class: 'SimpleStrategy', replicationFactor: 2 } },
    });
    expect(await reconcile(orders)).toEqual({ kind: 'done' });
    expect((await readTable(cassandra, `tally_orders_${run}`, 'events'))?.defaultTimeToLive).toBe(14400);
    expect((await readReplication(cassandra, `tally_orders_${run}`))?.replication_factor).toBe('2');
    const cns = await get(orders);
    expect(condition(cns, 'KeyspaceReady')?.reason).toBe('ReplicationUpdated');
    expect(condition(cns, 'TablesReady')?.reason).toBe('RetentionUpdated');
    expect(cns.status?.observedGeneration).toBe(cns.metadata.generation);
    // Back to one replica: the single local node could not serve quorum writes with two.
    await patchSpec(orders, { cassandra: { replication: { class: 'SimpleStrategy', replicationFactor: 1 } } });
    expect(await reconcile(orders)).toEqual({ kind: 'done' });
    expect((await readReplication(cassandra, `tally_orders_${run}`))?.replication_factor).toBe('1');
    // Raising the factor warns that the new replicas need a repair; lowering it does not.
    const replicationEvents = (
      await kc.makeApiClient(CoreV1Api).listNamespacedEvent({
        namespace: ns,
        fieldSelector: `involvedObject.name=${orders},reason=ReplicationUpdated`,
      })
    ).items.map((e) => [e.type, e.message]);
    expect(replicationEvents).toEqual(
      expect.arrayContaining([
        [
          'Warning',
          expect.stringMatching(/replicas were added \(replication_factor\): run a full repair of tally_orders_/),
        ],
        ['Normal', expect.not.stringMatching(/repair/)],
      ]),
    );
  });

  it('repairs drift: a deleted ConfigMap and an edited CronJob are put back', async () => {
    const core = kc.makeApiClient(CoreV1Api);
    const batch = kc.makeApiClient(BatchV1Api);
    await core.deleteNamespacedConfigMap({ namespace: ns, name: configMapName(orders) });
    const { PatchStrategy, setHeaderOptions } = await import('@kubernetes/client-node');
    await batch.patchNamespacedCronJob(
      { namespace: ns, name: cronJobName(orders), body: { spec: { schedule: '0 0 1 1 *', suspend: true } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    expect(await reconcile(orders)).toEqual({ kind: 'done' });
    const cm: V1ConfigMap = await core.readNamespacedConfigMap({ namespace: ns, name: configMapName(orders) });
    expect(cm.data?.[CONFIG_KEY]).toContain(`name: ${orders}`);
    expect((await batch.readNamespacedCronJob({ namespace: ns, name: cronJobName(orders) })).spec).toMatchObject({
      schedule: '*/5 * * * *',
      suspend: false,
    });
  });

  it("runs the CronJob's command directly: it rolls up the namespace", async () => {
    const cm = await kc
      .makeApiClient(CoreV1Api)
      .readNamespacedConfigMap({ namespace: ns, name: configMapName(orders) });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-cron-'));
    fs.writeFileSync(path.join(dir, CONFIG_KEY), cm.data![CONFIG_KEY]!);
    const doc = validateNamespaceConfig(yaml.load(cm.data![CONFIG_KEY]!));
    const args = rollupArgs(doc).map((a) => (a.startsWith('/etc/tally/namespace/') ? path.join(dir, CONFIG_KEY) : a));
    const main = path.join(repoRoot(), 'dist', 'cli', 'main.js');
    const result = spawnSync(process.execPath, [main, ...args], { env: stackEnv(), encoding: 'utf8' });
    fs.rmSync(dir, { recursive: true, force: true });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(JSON.parse(result.stdout.trim())).toMatchObject({ namespace: orders, failed: 0 });
  });

  it('gives a second CounterNamespace claiming the same keyspace KeyspaceConflict, and it touches nothing', async () => {
    const intruder = `intruder-${run}`;
    await create(
      intruder,
      { cassandra: { keyspace: `tally_orders_${run}` }, eventStorage: { retentionSeconds: 3600 } },
      `${ns}-b`,
    );
    const result = await reconcile(intruder, cassandra, `${ns}-b`);
    expect(result).toMatchObject({ kind: 'requeue' });
    const cns = await get(intruder, `${ns}-b`);
    expect(condition(cns, 'Ready')).toMatchObject({ status: 'False', reason: 'KeyspaceConflict' });
    expect(condition(cns, 'Ready')?.message).toContain(`CounterNamespace ${ns}/${orders}`);
    expect((await readTable(cassandra, `tally_orders_${run}`, 'events'))?.defaultTimeToLive).toBe(14400);
    const owner = await readOwnership(cassandra, {
      cassandra: { keyspace: `tally_orders_${run}`, rollupsTable: 'rollups' },
    } as never);
    expect(owner?.owner).toBe((await get(orders)).metadata.uid);
  });

  it('lets a re-created CounterNamespace adopt the keyspace its deleted (Retain) predecessor left, data and all', async () => {
    const name = `phoenix-${run}`;
    const keyspace = `tally_phoenix_${run}`;
    keyspaces.push(keyspace);
    const ownership = () => readOwnership(cassandra, { cassandra: { keyspace, rollupsTable: 'rollups' } } as never);
    const first = await create(name, {}); // deletionPolicy Retain
    expect(await reconcile(name)).toEqual({ kind: 'done' });
    expect(condition(await get(name), 'Ready')).toMatchObject({ status: 'True' });
    await cassandra.execute(`INSERT INTO ${keyspace}.rollups (counter_name, rollup_count) VALUES ('kept', 42)`);

    // While the first one lives, another claimant is refused.
    const rival = `rival-${run}`;
    await create(rival, { cassandra: { keyspace } }, `${ns}-b`);
    expect(await reconcile(rival, cassandra, `${ns}-b`)).toMatchObject({ kind: 'requeue' });
    expect(condition(await get(rival, `${ns}-b`), 'Ready')).toMatchObject({
      status: 'False',
      reason: 'KeyspaceConflict',
    });
    await customObjects(kc).deleteNamespacedCustomObject({ ...GROUP, namespace: `${ns}-b`, name: rival });
    expect(await reconcile(rival, cassandra, `${ns}-b`)).toEqual({ kind: 'done' });

    await customObjects(kc).deleteNamespacedCustomObject({ ...GROUP, namespace: ns, name });
    expect(await reconcile(name)).toEqual({ kind: 'done' });
    await waitFor('the Retain object to be gone', async () => (await get(name)) === undefined, { timeoutMs: 60_000 });
    expect((await ownership())?.owner).toBe(first.metadata.uid);

    const second = await create(name, {});
    expect(second.metadata.uid).not.toBe(first.metadata.uid);
    expect(await reconcile(name)).toEqual({ kind: 'done' });
    const cns = await get(name);
    expect(condition(cns, 'Ready')).toMatchObject({ status: 'True', reason: 'Ready' });
    expect(await ownership()).toEqual({
      owner: second.metadata.uid,
      name: `CounterNamespace ${ns}/${name}`,
      counterNamespace: { namespace: ns, name },
      keyspaceCreated: false,
    });
    const row = await cassandra.execute(`SELECT rollup_count FROM ${keyspace}.rollups WHERE counter_name = 'kept'`);
    expect(Number(row.first()?.get('rollup_count'))).toBe(42);
    const events = await kc
      .makeApiClient(CoreV1Api)
      .listNamespacedEvent({ namespace: ns, fieldSelector: `involvedObject.uid=${second.metadata.uid}` });
    const adopted = events.items.find((e) => e.reason === 'KeyspaceAdopted');
    expect(adopted?.message).toContain(`CounterNamespace ${ns}/${name} (uid ${first.metadata.uid})`);

    // The new owner is alive: a new rival is still refused, naming it.
    await create(rival, { cassandra: { keyspace } }, `${ns}-b`);
    expect(await reconcile(rival, cassandra, `${ns}-b`)).toMatchObject({ kind: 'requeue' });
    expect(condition(await get(rival, `${ns}-b`), 'Ready')?.message).toContain(`CounterNamespace ${ns}/${name}`);
    expect((await ownership())?.owner).toBe(second.metadata.uid);
  });

  it("refuses a keyspace holding tables that are not Tally's with KeyspaceConflict, altering nothing", async () => {
    const name = `foreign-${run}`;
    const keyspace = `dba_${run}`;
    keyspaces.push(keyspace);
    const dc = stackEnv().CASSANDRA_LOCAL_DC!;
    await cassandra.execute(
      `CREATE KEYSPACE ${keyspace} WITH replication = {'class': 'NetworkTopologyStrategy', '${dc}': 1}`,
      [],
      DDL,
    );
    await cassandra.execute(
      `CREATE TABLE ${keyspace}.events (id int PRIMARY KEY) WITH default_time_to_live = 60`,
      [],
      DDL,
    );
    await create(name, { cassandra: { keyspace }, eventStorage: { retentionSeconds: 7200 } });
    expect(await reconcile(name)).toMatchObject({ kind: 'requeue' });
    const cns = await get(name);
    expect(condition(cns, 'Ready')).toMatchObject({ status: 'False', reason: 'KeyspaceConflict' });
    expect(condition(cns, 'Ready')?.message).toBe(
      `keyspace ${keyspace} cannot be used: it has tables (events) but no Tally rollups table; set spec.cassandra.keyspace to another name`,
    );
    expect(cns.status?.observedGeneration).toBeUndefined(); // the checklist never finished
    expect((await readReplication(cassandra, keyspace))?.class).toMatch(/NetworkTopologyStrategy$/);
    expect((await readTable(cassandra, keyspace, 'events'))?.defaultTimeToLive).toBe(60);
    expect(await readTable(cassandra, keyspace, 'rollups')).toBeUndefined();
  });

  it('uses a keyspace a DBA created empty, but keeps it on deletion even with deletionPolicy Delete', async () => {
    const name = `precreated-${run}`;
    const keyspace = `dba_empty_${run}`;
    keyspaces.push(keyspace);
    await cassandra.execute(
      `CREATE KEYSPACE ${keyspace} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`,
      [],
      DDL,
    );
    await create(name, { cassandra: { keyspace }, deletionPolicy: 'Delete' });
    expect(await reconcile(name)).toEqual({ kind: 'done' });
    const cns = await get(name);
    expect(condition(cns, 'Ready')).toMatchObject({ status: 'True', reason: 'Ready' });
    expect(condition(cns, 'KeyspaceReady')?.reason).toBe('KeyspaceExists');
    expect(
      (await readOwnership(cassandra, { cassandra: { keyspace, rollupsTable: 'rollups' } } as never))?.keyspaceCreated,
    ).toBe(false);

    await customObjects(kc).deleteNamespacedCustomObject({ ...GROUP, namespace: ns, name });
    expect(await reconcile(name)).toEqual({ kind: 'done' });
    await waitFor('the Delete object to be gone', async () => (await get(name)) === undefined, { timeoutMs: 60_000 });
    expect(await readReplication(cassandra, keyspace)).toBeDefined();
    const events = await kc
      .makeApiClient(CoreV1Api)
      .listNamespacedEvent({ namespace: ns, fieldSelector: `involvedObject.uid=${cns.metadata.uid}` });
    expect(events.items.find((e) => e.reason === 'KeyspaceRetained')?.message).toContain('did not create it');
  });

  it('reports a schedule the CronJob API rejects as Ready=False, without advancing observedGeneration or retrying hot', async () => {
    const name = `badcron-${run}`;
    keyspaces.push(`tally_badcron_${run}`);
    await create(name, { rollup: { schedule: '*/10 * * * *' } });
    expect(await reconcile(name)).toEqual({ kind: 'done' });
    const ready = await get(name);
    expect(condition(ready, 'Ready')?.status).toBe('True');
    expect(ready.status?.observedGeneration).toBe(ready.metadata.generation);

    await patchSpec(name, { rollup: { schedule: '61 * * * *' } }); // five fields, but minute 61
    const result = await reconcile(name);
    expect(result).toMatchObject({ kind: 'requeue' });
    expect((result as { afterMs: number }).afterMs).toBeGreaterThanOrEqual(5 * 60_000);
    const rejected = await get(name);
    expect(rejected.metadata.generation).toBe(ready.metadata.generation! + 1);
    expect(rejected.status?.observedGeneration).toBe(ready.metadata.generation);
    expect(condition(rejected, 'Ready')).toMatchObject({ status: 'False', reason: 'ApplyRejected' });
    expect(condition(rejected, 'Ready')?.message).toContain(`rejected CronJob ${cronJobName(name)}`);
    expect(condition(rejected, 'Ready')?.message).toContain('61 * * * *');
    expect(condition(rejected, 'RollupScheduled')).toMatchObject({ status: 'False', reason: 'ApplyRejected' });
    const events = await kc
      .makeApiClient(CoreV1Api)
      .listNamespacedEvent({ namespace: ns, fieldSelector: `involvedObject.name=${name}` });
    expect(events.items.filter((e) => e.reason === 'ApplyRejected')).toHaveLength(1);
    // Reconciling again changes nothing (no status churn, no second Event).
    expect(await reconcile(name)).toMatchObject({ kind: 'requeue' });
    expect((await get(name)).metadata.resourceVersion).toBe(rejected.metadata.resourceVersion);
    const cj = await kc.makeApiClient(BatchV1Api).readNamespacedCronJob({ namespace: ns, name: cronJobName(name) });
    expect(cj.spec?.schedule).toBe('*/10 * * * *');

    await patchSpec(name, { rollup: { schedule: '1 * * * *' } });
    expect(await reconcile(name)).toEqual({ kind: 'done' });
    const fixed = await get(name);
    expect(condition(fixed, 'Ready')).toMatchObject({ status: 'True', reason: 'Ready' });
    expect(fixed.status?.observedGeneration).toBe(fixed.metadata.generation);
  });

  it('says CassandraUnavailable while Cassandra is unreachable, and becomes Ready once it is back', async () => {
    const name = `flaky-${run}`;
    keyspaces.push(`tally_flaky_${run}`);
    await create(name, {});
    const proxy = await TcpProxy.forAddress(stackEnv().CASSANDRA_CONTACT_POINTS!).start();
    const client = createCassandraClient({ ...cassandraSettingsFromEnv(stackEnv()), contactPoints: [proxy.address] });
    try {
      await client.connect();
      proxy.cut();
      const down = await reconcile(name, client);
      expect(down.kind).toBe('error');
      const cns = await get(name);
      expect(condition(cns, 'Ready')).toMatchObject({ status: 'False', reason: 'CassandraUnavailable' });
      expect(cns.metadata.finalizers).toContain(FINALIZER);
      proxy.restore();
      await waitFor(
        'a reconcile to succeed after Cassandra is back',
        async () => (await reconcile(name, client)).kind === 'done',
        { timeoutMs: 30_000 },
      );
      expect(condition(await get(name), 'Ready')).toMatchObject({ status: 'True', reason: 'Ready' });
    } finally {
      await client.shutdown();
      await proxy.close();
    }
  });

  it('keeps a Delete object (and its keyspace) while Cassandra is unreachable, saying why, and finishes once it is back', async () => {
    const name = `doomed-${run}`;
    keyspaces.push(`tally_doomed_${run}`);
    await create(name, { deletionPolicy: 'Delete' });
    expect(await reconcile(name)).toEqual({ kind: 'done' });
    await customObjects(kc).deleteNamespacedCustomObject({ ...GROUP, namespace: ns, name });
    const proxy = await TcpProxy.forAddress(stackEnv().CASSANDRA_CONTACT_POINTS!).start();
    const client = createCassandraClient({ ...cassandraSettingsFromEnv(stackEnv()), contactPoints: [proxy.address] });
    try {
      await client.connect();
      proxy.cut();
      expect((await reconcile(name, client)).kind).toBe('error');
      const blocked = await get(name);
      expect(blocked.metadata.finalizers).toContain(FINALIZER);
      expect(condition(blocked, 'Ready')).toMatchObject({ status: 'False', reason: 'Deleting' });
      const events = await kc
        .makeApiClient(CoreV1Api)
        .listNamespacedEvent({ namespace: ns, fieldSelector: `involvedObject.name=${name}` });
      expect(events.items.map((e) => [e.type, e.reason])).toContainEqual(['Warning', 'DropFailed']);
      proxy.restore();
      await waitFor(
        'the deletion to finish once Cassandra is back',
        async () => (await reconcile(name, client)).kind === 'done' && (await get(name)) === undefined,
        { timeoutMs: 30_000 },
      );
      expect(await readReplication(cassandra, `tally_doomed_${run}`)).toBeUndefined();
    } finally {
      await client.shutdown();
      await proxy.close();
    }
  });

  it('on deletion keeps the keyspace with Retain and drops it with Delete; the garbage collector takes owned objects', async () => {
    const retained = `flaky-${run}`; // deletionPolicy defaults to Retain
    await customObjects(kc).deleteNamespacedCustomObject({ ...GROUP, namespace: ns, name: retained });
    expect(await reconcile(retained)).toEqual({ kind: 'done' });
    await waitFor('the Retain object to be gone', async () => (await get(retained)) === undefined, {
      timeoutMs: 60_000,
    });
    expect(await readReplication(cassandra, `tally_flaky_${run}`)).toBeDefined();

    await customObjects(kc).deleteNamespacedCustomObject({ ...GROUP, namespace: ns, name: orders });
    expect(await reconcile(orders)).toEqual({ kind: 'done' });
    await waitFor('the Delete object to be gone', async () => (await get(orders)) === undefined, { timeoutMs: 60_000 });
    expect(await readReplication(cassandra, `tally_orders_${run}`)).toBeUndefined();

    const core = kc.makeApiClient(CoreV1Api);
    const batch = kc.makeApiClient(BatchV1Api);
    await waitFor(
      'the garbage collector to delete the owned ConfigMap and CronJob',
      async () => {
        const cms = await core.listNamespacedConfigMap({
          namespace: ns,
          labelSelector: `tally.dev/counter-namespace=${orders}`,
        });
        const cjs = await batch.listNamespacedCronJob({
          namespace: ns,
          labelSelector: `tally.dev/counter-namespace=${orders}`,
        });
        return cms.items.length === 0 && cjs.items.length === 0;
      },
      { timeoutMs: 60_000 },
    );
  });
});
