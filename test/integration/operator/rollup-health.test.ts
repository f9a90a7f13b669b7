import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { KubeConfig } from '@kubernetes/client-node';
import pino from 'pino';
import type { Condition } from '../../../api/conditions';
import type { CounterNamespace } from '../../../api/types';
import type { OperatorConfig } from '../../../operator/config';
import { startOperator, type Operator } from '../../../operator/operator';
import { cassandraSettingsFromEnv } from '../../../store/client';
import { waitFor } from '../../stack/wait';
import { requireEnv } from '../../support/env';
import { createNamespace, customObjects, deleteNamespace, installCrd, kubeConfig } from '../../support/kube';
import { dropKeyspaces, stackEnv, uniqueSuffix } from '../../support/runtime-harness';
import { TcpProxy } from '../../support/tcp-proxy';
import { GROUP, createCounterNamespace } from './reconcile-support';

const silent = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const LEASE = { durationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 300 };

/**
 * RollupHealthy with the real CronJob and Job controllers and the node running the sweeper pods from the runtime
 * image, their CronJobs running every minute. Two operators in this process, each watching its own namespace: one
 * gives its Jobs the Cassandra address pods reach (the bridge), the other reaches Cassandra through a proxy on this
 * host's loopback, so its own DDL works but its sweeper pods cannot connect and fail, as a sweeper with a wrong
 * address or a network policy in the way does.
 */
describe('rollup health: the sweeper CronJob runs on the node and RollupHealthy follows its runs', () => {
  const run = uniqueSuffix();
  const healthyNs = `tally-rh-ok-${run}`;
  const failingNs = `tally-rh-bad-${run}`;
  const name = `sweep-${run}`;
  const keyspaces: string[] = [];
  const operators: Operator[] = [];
  let kc: KubeConfig;
  let proxy: TcpProxy;

  const config = (ns: string, contactPoint: string): OperatorConfig => ({
    // No Memcached: the stack's listens on loopback only, which a pod cannot reach, and a sweep does not need it.
    cassandra: { ...cassandraSettingsFromEnv(stackEnv()), contactPoints: [contactPoint] },
    runtimeImage: requireEnv('TALLY_IMAGE_RUNTIME'),
    imagePullPolicy: 'Never',
    watchNamespaces: [ns],
    leaseNamespace: ns,
    leaseName: 'tally-operator',
    identity: `rollup-health-${ns}`,
    port: 0,
    concurrency: 1,
    resyncMs: 300_000,
  });
  const read = async (ns: string): Promise<CounterNamespace> =>
    (await customObjects(kc).getNamespacedCustomObject({ ...GROUP, namespace: ns, name })) as CounterNamespace;
  const conditionIn = async (ns: string, type: string): Promise<Condition | undefined> =>
    (await read(ns)).status?.conditions?.find((c) => c.type === type);
  const until = (ns: string, reason: string, timeoutMs: number) =>
    waitFor(
      `RollupHealthy in ${ns} to be ${reason}`,
      async () => (await conditionIn(ns, 'RollupHealthy'))?.reason === reason,
      { timeoutMs, intervalMs: 1000 },
    );
  const gauge = async (op: Operator, ns: string): Promise<string | undefined> =>
    (await op.metrics.registry.getSingleMetricAsString('tally_operator_rollup_healthy'))
      .split('\n')
      .find((l) => l.includes(`counternamespace="${ns}/${name}"`))
      ?.split(' ')
      .at(-1);
  const kubectl = async (ns: string, ...args: string[]): Promise<string> =>
    (
      await promisify(execFile)('kubectl', ['--kubeconfig', requireEnv('KUBECONFIG'), '-n', ns, ...args], {
        timeout: 30_000,
      })
    ).stdout;

  beforeAll(async () => {
    kc = kubeConfig();
    await installCrd(kc);
    proxy = await TcpProxy.forAddress(requireEnv('CASSANDRA_CONTACT_POINTS')).start();
    for (const [ns, contactPoint] of [
      [healthyNs, requireEnv('CASSANDRA_CONTACT_POINTS')],
      [failingNs, proxy.address],
    ] as const) {
      await createNamespace(kc, ns);
      operators.push(await startOperator({ config: config(ns, contactPoint), kc, log: silent, lease: LEASE }));
    }
  });
  afterAll(async () => {
    for (const op of operators) await op.stop();
    for (const ns of [healthyNs, failingNs]) await deleteNamespace(kc, ns, false);
    await proxy?.close();
    await dropKeyspaces(keyspaces);
  });

  it('is True after a run succeeds; False, with a Warning Event and Ready still True, once a run fails', async () => {
    for (const ns of [healthyNs, failingNs]) {
      const spec = {
        counterType: 'Eventual',
        cassandra: { keyspace: `tally_rh_${ns.startsWith('tally-rh-ok') ? 'ok' : 'bad'}_${run}` },
        rollup: { schedule: '* * * * *' },
      };
      keyspaces.push(spec.cassandra.keyspace);
      await createCounterNamespace(kc, ns, name, spec);
    }
    for (const ns of [healthyNs, failingNs]) await until(ns, 'RollupPending', 30_000);

    // The first scheduled run: within a minute, plus the pod's start.
    await until(healthyNs, 'RollupSucceeded', 150_000);
    expect(await conditionIn(healthyNs, 'RollupHealthy')).toMatchObject({ status: 'True' });
    expect(await gauge(operators[0]!, healthyNs)).toBe('1');

    // The failing Job's three pods fail (10 s and 20 s apart), then the Job does.
    await until(failingNs, 'RollupFailed', 200_000);
    const failed = (await conditionIn(failingNs, 'RollupHealthy'))!;
    expect(failed.status).toBe('False');
    expect(failed.message).toMatch(/did not succeed, no success yet: kubectl logs job\/tally-rollup-sweep-/);
    expect(await gauge(operators[1]!, failingNs)).toBe('0');
    expect(await conditionIn(failingNs, 'Ready')).toMatchObject({ status: 'True', reason: 'Ready' });

    // The Job the message names is the one that failed, and its log says why.
    const job = /kubectl logs job\/(\S+)/.exec(failed.message)![1]!;
    expect(
      await kubectl(failingNs, 'get', 'job', job, '-o', "jsonpath={.status.conditions[?(@.type=='Failed')].status}"),
    ).toBe('True');
    expect(await kubectl(failingNs, 'logs', `job/${job}`)).toContain(proxy.address);
    const events = await kubectl(
      failingNs,
      'get',
      'events',
      '--field-selector',
      `involvedObject.name=${name},reason=RollupUnhealthy`,
      '-o',
      'name',
    );
    expect(events.trim()).not.toBe('');
    // kubectl get cns shows it.
    const [header, row] = (await kubectl(failingNs, 'get', 'cns', name)).trim().split('\n');
    expect(header!.split(/\s+/)).toEqual(['NAME', 'TYPE', 'KEYSPACE', 'READY', 'REASON', 'ROLLUP', 'AGE']);
    expect(row!.split(/\s+/).slice(3, 6)).toEqual(['True', 'Ready', 'RollupFailed']);
  }, 420_000);
});
