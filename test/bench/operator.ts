import { randomUUID } from 'node:crypto';
import { CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import pino from 'pino';
import type { Client } from 'cassandra-driver';
import { installCounterNamespaceCrd } from '../../operator/crd-install';
import { startOperator } from '../../operator/operator';
import type { CounterNamespace } from '../../api/types';
import { resolveCounterNamespace } from '../../api/resolve';
import { cassandraSettingsFromEnv } from '../../store/client';
import { createEventsTableCql, createKeyspaceCql, createRollupsTableCql } from '../../store/ddl';
import { dropKeyspace } from '../../store/ensure';
import { ownerComment } from '../../store/ownership';
import { waitFor } from '../stack/wait';
import { deleteNamespace } from '../support/kube';

const GROUP = { group: 'tally.dev', version: 'v1alpha1', plural: 'counternamespaces' };

export interface OperatorBench {
  count: number;
  operatorSeconds: number;
  ddlSeconds: number;
  reconcileP99Seconds: number;
  reconciles: number;
}

/** The p-quantile of a prom-client histogram, as the upper bound of the bucket it falls in. */
function quantileFromBuckets(
  values: { labels: Record<string, unknown>; value: number; metricName?: string }[],
  q: number,
): number {
  const buckets = values
    .filter((v) => v.metricName?.endsWith('_bucket'))
    .map((v) => ({ le: v.labels.le === '+Inf' ? Infinity : Number(v.labels.le), count: v.value }))
    .sort((a, b) => a.le - b.le);
  const total = buckets.at(-1)?.count ?? 0;
  return buckets.find((b) => b.count >= q * total)?.le ?? NaN;
}

/**
 * Time for the operator to bring `count` CounterNamespaces to Ready, beside the same DDL (keyspace + two tables each)
 * run back to back through cassandra-driver (ddlBaseline: false skips it, ddlSeconds is then NaN: the scale run).
 */
export async function benchOperator(
  env: NodeJS.ProcessEnv,
  client: Client,
  count: number,
  say: (m: string) => void,
  opts: { ddlBaseline?: boolean } = {},
): Promise<OperatorBench> {
  const run = randomUUID().slice(0, 6);
  const kc = new KubeConfig();
  kc.loadFromFile(env.KUBECONFIG!);
  await installCounterNamespaceCrd(kc, 'tally-bench');
  const ns = `tally-bench-${run}`;
  const core = kc.makeApiClient(CoreV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  await core.createNamespace({ body: { metadata: { name: ns } } });
  const names = Array.from({ length: count }, (_, i) => `b${run}-${i}`);
  const keyspaces: string[] = [];

  const operator = await startOperator({
    config: {
      cassandra: cassandraSettingsFromEnv(env),
      ...(env.MEMCACHED_SERVERS ? { memcachedServers: env.MEMCACHED_SERVERS } : {}),
      runtimeImage: 'tally-runtime:bench',
      imagePullPolicy: 'IfNotPresent',
      watchNamespaces: [ns],
      leaseNamespace: ns,
      leaseName: 'tally-operator',
      identity: 'bench',
      port: 0,
      concurrency: 4,
      resyncMs: 300_000,
    },
    kc,
    log: pino({ level: 'silent' }),
    lease: { durationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 200 },
  });
  try {
    await waitFor('the operator to lead', () => operator.isLeader, { timeoutMs: 60_000, intervalMs: 50 });
    say(`operator: applying ${count} CounterNamespaces and waiting for all to be Ready`);
    const started = process.hrtime.bigint();
    await Promise.all(
      names.map((name) =>
        custom.createNamespacedCustomObject({
          ...GROUP,
          namespace: ns,
          body: {
            apiVersion: 'tally.dev/v1alpha1',
            kind: 'CounterNamespace',
            metadata: { name },
            spec: { deletionPolicy: 'Delete' },
          },
        }),
      ),
    );
    await waitFor(
      `all ${count} CounterNamespaces to be Ready`,
      async () => {
        const list = (await custom.listNamespacedCustomObject({ ...GROUP, namespace: ns })) as {
          items: CounterNamespace[];
        };
        const ready = list.items.filter((c) =>
          c.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True'),
        ).length;
        return ready === count;
      },
      { timeoutMs: 600_000 },
    );
    const operatorSeconds = Number(process.hrtime.bigint() - started) / 1e9;
    const histogram = await operator.metrics.reconcileTime.get();
    const reconcileP99Seconds = quantileFromBuckets(histogram.values, 0.99);
    const reconciles = operator.reconciles;
    for (const name of names) keyspaces.push(`tally_${name.replace(/-/g, '_')}`);
    if (opts.ddlBaseline === false) return { count, operatorSeconds, ddlSeconds: NaN, reconcileP99Seconds, reconciles };

    say(`baseline: the same DDL for ${count} namespaces, back to back through cassandra-driver`);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < count; i++) {
      const config = resolveCounterNamespace({
        apiVersion: 'tally.dev/v1alpha1',
        kind: 'CounterNamespace',
        metadata: { name: `d${run}-${i}` },
        spec: {},
      });
      keyspaces.push(config.cassandra.keyspace);
      for (const cql of [
        createKeyspaceCql(config),
        createEventsTableCql(config),
        createRollupsTableCql(config, ownerComment({ owner: 'bench', keyspaceCreated: true })),
      ]) {
        await client.execute(cql, [], { readTimeout: 60_000 });
      }
    }
    const ddlSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
    return { count, operatorSeconds, ddlSeconds, reconcileP99Seconds, reconciles };
  } finally {
    await operator.stop();
    await deleteNamespace(kc, ns, false).catch(() => undefined);
    say(`cleaning up ${keyspaces.length} keyspaces`);
    for (const ks of keyspaces) await dropKeyspace(client, ks).catch(() => undefined);
  }
}
