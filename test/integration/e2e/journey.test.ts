import { execFileSync, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BatchV1Api, CoreV1Api } from '@kubernetes/client-node';
import { CONFIG_KEY, configMapName, cronJobName } from '../../../api/names';
import { repoRoot } from '../../stack/paths';
import { waitFor } from '../../stack/wait';
import { requireEnv } from '../../support/env';
import { kubeConfig } from '../../support/kube';
import { call, dropKeyspaces, uniqueSuffix } from '../../support/runtime-harness';

/** The runtime's rollup-cache lookups for one namespace, from its /metrics (`tally_cache_requests_total`). */
async function cacheLookups(url: string, namespace: string): Promise<{ hit: number; miss: number; error: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const found = { hit: 0, miss: 0, error: 0 };
  for (const line of text.split('\n')) {
    const m = /^tally_cache_requests_total\{([^}]*)\} (\d+)$/.exec(line);
    if (!m) continue;
    const labels = Object.fromEntries([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1]!, l[2]!]));
    if (labels.namespace === namespace && labels.result! in found)
      found[labels.result as keyof typeof found] = Number(m[2]);
  }
  return found;
}

/**
 * The journey a user follows, on the local stack with the operator and the runtime running as processes (started by
 * the stack: `tally operator`, `tally serve --configmaps`, watching the `default` namespace): kubectl apply, wait for
 * Ready, count over HTTP, run the rollup CronJob's command, see this namespace's reads answered from the rollup cache,
 * delete and watch everything go.
 */
describe('end to end: kubectl apply -> count over HTTP -> delete', () => {
  const run = uniqueSuffix();
  const name = `journey-${run}`;
  const kubectl = (...args: string[]) =>
    execFileSync('kubectl', ['--kubeconfig', requireEnv('KUBECONFIG'), ...args], { encoding: 'utf8' });
  const url = () => requireEnv('TALLY_URL');

  afterAll(async () => {
    spawnSync('kubectl', [
      '--kubeconfig',
      requireEnv('KUBECONFIG'),
      'delete',
      'cns',
      name,
      '-n',
      'default',
      '--ignore-not-found',
      '--wait=false',
    ]);
    await dropKeyspaces([`tally_${name.replace(/-/g, '_')}`]);
  });

  it('follows a CounterNamespace from apply to deletion', async () => {
    const manifest = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tally-e2e-')), 'cns.yaml');
    fs.writeFileSync(
      manifest,
      [
        'apiVersion: tally.dev/v1alpha1',
        'kind: CounterNamespace',
        `metadata: {name: ${name}, namespace: default}`,
        'spec:',
        '  counterType: Eventual',
        '  eventStorage: {acceptLimitSeconds: 2}',
        '  rollup: {coalesceMs: 200, settleMarginMs: 1200}',
        '  deletionPolicy: Delete',
      ].join('\n'),
    );
    kubectl('apply', '-f', manifest);
    kubectl('wait', '--for=condition=Ready', `cns/${name}`, '-n', 'default', '--timeout=60s');

    await waitFor(
      'the runtime to serve the namespace',
      async () => {
        const list = (await (await fetch(`${url()}/v1/namespaces`)).json()) as {
          namespaces: { name: string; ready: boolean }[];
        };
        return list.namespaces.some((n) => n.name === name && n.ready);
      },
      { timeoutMs: 30_000 },
    );

    // Adds with retries (the same token three times), negative deltas, a clear, then more adds.
    const counter = 'checkout';
    const add = async (delta: number, token = { token: randomUUID(), generation_time: new Date().toISOString() }) => {
      const reply = await call(url(), 'AddCount', {
        namespace: name,
        counter_name: counter,
        delta,
        idempotency_token: token,
      });
      expect(reply.status).toBe(200);
      return token;
    };
    const retried = await add(5);
    await add(5, retried);
    await add(5, retried);
    await add(-2);
    await add(10);
    const cleared = await call(url(), 'ClearCount', {
      namespace: name,
      counter_name: counter,
      idempotency_token: { token: randomUUID(), generation_time: new Date().toISOString() },
    });
    expect(cleared.body.count).toBe(0);
    // Not a wait for anything: the next adds' generation times must be later than the clear's, not the same ms.
    await new Promise((r) => setTimeout(r, 5));
    const retriedAfter = await add(7);
    await add(7, retriedAfter);
    await add(-3);
    const expected = 4;

    await waitFor(
      'GetCount to reach the exact count after rollup',
      async () => (await call(url(), 'GetCount', { namespace: name, counter_name: counter })).body.count === expected,
      { timeoutMs: 30_000 },
    );

    // The rollup CronJob's command, run directly with the ConfigMap it mounts.
    const core = kubeConfig().makeApiClient(CoreV1Api);
    const cm = await core.readNamespacedConfigMap({ namespace: 'default', name: configMapName(name) });
    const cj = await kubeConfig()
      .makeApiClient(BatchV1Api)
      .readNamespacedCronJob({ namespace: 'default', name: cronJobName(name) });
    const container = cj.spec!.jobTemplate.spec!.template.spec!.containers[0]!;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-e2e-cm-'));
    fs.writeFileSync(path.join(dir, CONFIG_KEY), cm.data![CONFIG_KEY]!);
    const mount = container.volumeMounts![0]!.mountPath;
    const args = container.args!.map((a) => a.replace(mount, dir));
    const env = Object.fromEntries(
      (container.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]),
    );
    const sweep = spawnSync(process.execPath, [path.join(repoRoot(), 'dist', 'cli', 'main.js'), ...args], {
      env: { ...process.env, ...env },
      encoding: 'utf8',
    });
    expect(sweep.status).toBe(0);
    expect(JSON.parse(sweep.stdout.trim())).toMatchObject({ namespace: name, failed: 0 });

    // Reads are answered from the rollup cache: the checkpoint is there (the sweep and the runtime's rollups put it),
    // so each of these reads is one cache lookup that hits, counted for this namespace alone on the runtime's
    // /metrics (a shared memcached's own hit count would also count every other test's reads).
    const reads = 5;
    const before = await cacheLookups(url(), name);
    for (let i = 0; i < reads; i++) {
      const read = await call(url(), 'GetCount', { namespace: name, counter_name: counter });
      expect(read.body.count).toBe(expected);
    }
    const after = await cacheLookups(url(), name);
    expect({ hit: after.hit - before.hit, miss: after.miss - before.miss, error: after.error - before.error }).toEqual({
      hit: reads,
      miss: 0,
      error: 0,
    });

    // Delete, and watch its objects and its namespace in the runtime go.
    kubectl('delete', 'cns', name, '-n', 'default', '--wait=true', '--timeout=60s');
    await waitFor(
      'the owned ConfigMap and CronJob to be garbage-collected',
      async () => {
        const cms = await core.listNamespacedConfigMap({
          namespace: 'default',
          labelSelector: `tally.dev/counter-namespace=${name}`,
        });
        const cjs = await kubeConfig()
          .makeApiClient(BatchV1Api)
          .listNamespacedCronJob({ namespace: 'default', labelSelector: `tally.dev/counter-namespace=${name}` });
        return cms.items.length === 0 && cjs.items.length === 0;
      },
      { timeoutMs: 60_000 },
    );
    await waitFor(
      'the runtime to stop serving it',
      async () => (await call(url(), 'GetCount', { namespace: name, counter_name: counter })).status === 404,
      { timeoutMs: 30_000 },
    );
  });
});
