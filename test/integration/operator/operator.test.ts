import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import pino from 'pino';
import { configMapName } from '../../../api/names';
import type { CounterNamespace } from '../../../api/types';
import type { OperatorConfig } from '../../../operator/config';
import { startOperator, type Operator } from '../../../operator/operator';
import { ConfigMapNamespaceSource } from '../../../runtime/namespace/configmap-source';
import { startRuntime, type Runtime } from '../../../runtime/server';
import { cassandraSettingsFromEnv } from '../../../store/client';
import { createNamespace, customObjects, deleteNamespace, installCrd, kubeConfig } from '../../support/kube';
import { waitFor } from '../../stack/wait';
import { call, dropKeyspaces, stackEnv, uniqueSuffix } from '../../support/runtime-harness';

const GROUP = { group: 'tally.dev', version: 'v1alpha1', plural: 'counternamespaces' };
const LEASE = { durationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 300 };
const silent = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

/** The whole operator (leader election, informers, work queue) and a runtime fed by its ConfigMaps. */
describe('the operator', () => {
  const run = uniqueSuffix();
  const ns = `tally-op-${run}`;
  let kc: KubeConfig;
  const operators: Operator[] = [];
  let runtime: Runtime | undefined;
  const keyspaces: string[] = [];

  const config = (identity: string): OperatorConfig => ({
    cassandra: cassandraSettingsFromEnv(stackEnv()),
    memcachedServers: stackEnv().MEMCACHED_SERVERS!,
    runtimeImage: 'tally-runtime:test',
    imagePullPolicy: 'IfNotPresent',
    watchNamespaces: [ns],
    leaseNamespace: ns,
    leaseName: 'tally-operator',
    identity,
    port: 0,
    concurrency: 2,
    resyncMs: 300_000,
  });
  const start = async (identity: string): Promise<Operator> => {
    const op = await startOperator({ config: config(identity), kc, log: silent, lease: LEASE });
    operators.push(op);
    return op;
  };
  const get = async (name: string) =>
    (await customObjects(kc)
      .getNamespacedCustomObject({ ...GROUP, namespace: ns, name })
      .catch(() => undefined)) as CounterNamespace | undefined;
  const ready = async (name: string) =>
    (await get(name))?.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
  const apply = async (name: string, spec: Record<string, unknown>) => {
    keyspaces.push(`tally_${name.replace(/-/g, '_')}`);
    await customObjects(kc).createNamespacedCustomObject({
      ...GROUP,
      namespace: ns,
      body: { apiVersion: 'tally.dev/v1alpha1', kind: 'CounterNamespace', metadata: { name }, spec },
    });
  };

  beforeAll(async () => {
    kc = kubeConfig();
    await installCrd(kc);
    await createNamespace(kc, ns);
  });
  afterAll(async () => {
    await runtime?.close();
    for (const op of operators) await op.stop();
    await deleteNamespace(kc, ns, false);
    await dropKeyspaces(keyspaces);
  });

  it('brings an applied CounterNamespace to Ready, then stops reconciling it', async () => {
    const op = await start('op-a');
    await waitFor('op-a to lead', async () => op.isLeader, { timeoutMs: 10_000 });
    const started = Date.now();
    await apply(`ev-${run}`, {
      counterType: 'Eventual',
      rollup: { coalesceMs: 100 },
      eventStorage: { acceptLimitSeconds: 1 },
    });
    await waitFor('Ready', () => ready(`ev-${run}`), { timeoutMs: 30_000 });
    const took = Date.now() - started;
    expect(took).toBeLessThan(30_000);
    // Settled: once the events of its own writes are through, nothing wakes it again.
    let count = op.reconciles;
    await waitFor(
      'reconciles to stop for 2 s',
      async () => {
        await new Promise((r) => setTimeout(r, 2000));
        const quiet = op.reconciles === count;
        count = op.reconciles;
        return quiet;
      },
      { timeoutMs: 20_000 },
    );
    await new Promise((r) => setTimeout(r, 3000));
    expect(op.reconciles).toBe(count);
    const metrics = await op.metrics.registry.getSingleMetricAsString('controller_runtime_reconcile_total');
    expect(metrics).toMatch(/controller="counternamespace",result="success"\} [1-9]/);
  });

  it('puts back an owned ConfigMap someone deletes, through its watch', async () => {
    const core = kc.makeApiClient(CoreV1Api);
    const name = configMapName(`ev-${run}`);
    const before = await core.readNamespacedConfigMap({ namespace: ns, name });
    await core.deleteNamespacedConfigMap({ namespace: ns, name });
    const after = await waitFor(
      'the ConfigMap to come back',
      async () => core.readNamespacedConfigMap({ namespace: ns, name }).catch(() => undefined),
      { timeoutMs: 15_000 },
    );
    expect(after.metadata?.uid).not.toBe(before.metadata?.uid);
  });

  it('feeds the runtime: a namespace appears once Ready, counts, and disappears after deletion', async () => {
    runtime = await startRuntime({
      source: new ConfigMapNamespaceSource(kc, [ns], silent),
      port: 0,
      host: '127.0.0.1',
      env: stackEnv(),
      log: silent,
    });
    const url = `http://127.0.0.1:${runtime.port}`;
    const served = async () =>
      ((await (await fetch(`${url}/v1/namespaces`)).json()) as { namespaces: { name: string; ready: boolean }[] })
        .namespaces;
    await waitFor(
      'the runtime to serve the namespace',
      async () => (await served()).some((n) => n.name === `ev-${run}` && n.ready),
      { timeoutMs: 15_000 },
    );
    expect(
      (await call(url, 'AddAndGetCount', { namespace: `ev-${run}`, counter_name: 'x', delta: 7 })).body.count,
    ).toBe(7);

    await apply(`ac-${run}`, { counterType: 'Accurate' });
    await waitFor(
      'the second namespace to be served',
      async () => (await served()).some((n) => n.name === `ac-${run}` && n.ready),
      { timeoutMs: 30_000 },
    );

    await customObjects(kc).deleteNamespacedCustomObject({ ...GROUP, namespace: ns, name: `ac-${run}` });
    await waitFor(
      'the deleted namespace to leave the runtime',
      async () => !(await served()).some((n) => n.name === `ac-${run}`),
      { timeoutMs: 30_000 },
    );
    expect((await call(url, 'GetCount', { namespace: `ac-${run}`, counter_name: 'x' })).status).toBe(404);
  });

  it('has one leader among two operators; the standby takes over when the leader stops', async () => {
    const [a] = operators;
    const b = await start('op-b');
    // Never two leaders at once, sampled while both run.
    for (let i = 0; i < 20; i++) {
      expect([a!.isLeader, b.isLeader].filter(Boolean)).toHaveLength(1);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(a!.isLeader).toBe(true);
    await a!.stop();
    operators.splice(operators.indexOf(a!), 1);
    await waitFor('op-b to take over', async () => b.isLeader, { timeoutMs: 10_000 });
    await apply(`after-${run}`, {});
    await waitFor('the new leader to reconcile a new CounterNamespace', () => ready(`after-${run}`), {
      timeoutMs: 30_000,
    });
  });
});
