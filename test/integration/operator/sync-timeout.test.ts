import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CoordinationV1Api, CoreV1Api, KubeConfig, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { repoRoot } from '../../stack/paths';
import { createNamespace, deleteNamespace, installCrd, kubeConfig, kubeConfigAs } from '../../support/kube';
import { waitFor } from '../../stack/wait';
import { stackEnv, uniqueSuffix } from '../../support/runtime-harness';

/**
 * `tally operator` whose informers can never sync (its RBAC allows the Lease but not listing CounterNamespaces):
 * once the cache sync timeout passes it says why, releases the Lease and exits with code 1, instead of dying on an
 * unhandled rejection with the Lease still held.
 */
describe('an operator whose informers do not sync', () => {
  const run = uniqueSuffix();
  const ns = `tally-nosync-${run}`;
  const serviceAccount = 'lease-only';
  let kc: KubeConfig;
  let dir: string;

  beforeAll(async () => {
    kc = kubeConfig();
    await installCrd(kc);
    await createNamespace(kc, ns);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-nosync-'));
  });
  afterAll(async () => {
    await deleteNamespace(kc, ns, false);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('releases the Lease and exits with code 1, saying why', async () => {
    const core = kc.makeApiClient(CoreV1Api);
    const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: serviceAccount } } });
    await rbac.createNamespacedRole({
      namespace: ns,
      body: {
        metadata: { name: serviceAccount },
        rules: [{ apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] }],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace: ns,
      body: {
        metadata: { name: serviceAccount },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: serviceAccount },
        subjects: [{ kind: 'ServiceAccount', name: serviceAccount, namespace: ns }],
      },
    });
    const asServiceAccount = await kubeConfigAs(kc, ns, serviceAccount);
    const kubeconfig = path.join(dir, 'kubeconfig');
    fs.writeFileSync(kubeconfig, asServiceAccount.exportConfig());

    const child = spawn(process.execPath, [path.join(repoRoot(), 'dist', 'cli', 'main.js'), 'operator'], {
      env: {
        ...stackEnv(),
        KUBECONFIG: kubeconfig,
        POD_NAME: 'op-nosync',
        TALLY_WATCH_NAMESPACES: ns,
        TALLY_LEASE_NAMESPACE: ns,
        TALLY_OPERATOR_PORT: '0',
        TALLY_CACHE_SYNC_TIMEOUT_SECONDS: '3',
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const holder = async () =>
        (await kc.makeApiClient(CoordinationV1Api).readNamespacedLease({ namespace: ns, name: 'tally-operator' })).spec
          ?.holderIdentity;
      await waitFor(
        'the operator to take the Lease',
        async () => (await holder().catch(() => undefined)) === 'op-nosync',
        { timeoutMs: 30_000 },
      );
      const code = await Promise.race([
        exited,
        new Promise<'still running'>((r) => setTimeout(() => r('still running'), 30_000)),
      ]);
      expect(code).toBe(1);
      expect(output).toContain('informers did not sync');
      expect(output).toContain('releasing the Lease and exiting');
      expect(output).not.toMatch(/unhandled/i);
      expect(await holder()).toBeFalsy();
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
