import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { CoordinationV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { CounterNamespace } from '../../../api/types';
import { repoRoot } from '../../stack/paths';
import { createNamespace, customObjects, deleteNamespace, installCrd, kubeConfig } from '../../support/kube';
import { waitFor } from '../../stack/wait';
import { dropKeyspaces, stackEnv, uniqueSuffix } from '../../support/runtime-harness';

const GROUP = { group: 'tally.dev', version: 'v1alpha1', plural: 'counternamespaces' };

/** `tally operator` as real processes: one is killed (SIGKILL) in the middle of its work, another converges. */
describe('an operator killed mid-reconcile', () => {
  const run = uniqueSuffix();
  const ns = `tally-crash-${run}`;
  const names = Array.from({ length: 12 }, (_, i) => `c${i}-${run}`);
  let kc: KubeConfig;
  const children: ChildProcess[] = [];

  const operatorProcess = (identity: string): ChildProcess => {
    const child = spawn(process.execPath, [path.join(repoRoot(), 'dist', 'cli', 'main.js'), 'operator'], {
      env: {
        ...stackEnv(),
        POD_NAME: identity,
        TALLY_WATCH_NAMESPACES: ns,
        TALLY_LEASE_NAMESPACE: ns,
        TALLY_OPERATOR_PORT: '0',
        TALLY_LEASE_DURATION_SECONDS: '3',
        TALLY_LEASE_RENEW_DEADLINE_SECONDS: '2',
        TALLY_LEASE_RETRY_SECONDS: '1',
        TALLY_OPERATOR_CONCURRENCY: '1',
        LOG_LEVEL: 'warn',
      },
      stdio: 'ignore',
    });
    children.push(child);
    return child;
  };
  const holder = async () =>
    (await kc.makeApiClient(CoordinationV1Api).readNamespacedLease({ namespace: ns, name: 'tally-operator' })).spec
      ?.holderIdentity;
  const readyCount = async () => {
    const list = (await customObjects(kc).listNamespacedCustomObject({ ...GROUP, namespace: ns })) as {
      items: CounterNamespace[];
    };
    return list.items.filter((c) => c.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True'))
      .length;
  };

  beforeAll(async () => {
    kc = kubeConfig();
    await installCrd(kc);
    await createNamespace(kc, ns);
  });
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await deleteNamespace(kc, ns, false);
    await dropKeyspaces(names.map((n) => `tally_${n.replace(/-/g, '_')}`));
  });

  it('a new operator takes the Lease after it expires and brings every CounterNamespace to Ready', async () => {
    const a = operatorProcess('op-a');
    await waitFor('op-a to hold the Lease', async () => (await holder().catch(() => undefined)) === 'op-a', {
      timeoutMs: 30_000,
    });
    for (const name of names) {
      await customObjects(kc).createNamespacedCustomObject({
        ...GROUP,
        namespace: ns,
        body: { apiVersion: 'tally.dev/v1alpha1', kind: 'CounterNamespace', metadata: { name }, spec: {} },
      });
    }
    await waitFor('op-a to finish a first CounterNamespace', async () => (await readyCount()) >= 1, {
      timeoutMs: 60_000,
    });
    a.kill('SIGKILL');
    const readyAtKill = await readyCount();
    expect(readyAtKill).toBeLessThan(names.length);

    const b = operatorProcess('op-b');
    await waitFor(
      'op-b to take the Lease once op-a stopped renewing',
      async () => (await holder().catch(() => undefined)) === 'op-b',
      { timeoutMs: 30_000 },
    );
    await waitFor('every CounterNamespace to be Ready', async () => (await readyCount()) === names.length, {
      timeoutMs: 90_000,
    });

    const exited = new Promise<number | null>((resolve) => b.once('exit', (code) => resolve(code)));
    b.kill('SIGTERM');
    expect(await exited).toBe(0);
    // A graceful stop releases the Lease for the next operator at once.
    await waitFor('op-b to release the Lease', async () => !(await holder()), { timeoutMs: 10_000 });
  });
});
