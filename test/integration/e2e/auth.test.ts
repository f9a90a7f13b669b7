import { spawnSync } from 'node:child_process';
import { RELEASE, RELEASE_NAMESPACE } from '../../stack/components/cluster';
import { EXAMPLES_NAMESPACE } from '../../stack/components/runtime';
import { waitFor } from '../../stack/wait';
import { requireEnv } from '../../support/env';
import { uniqueSuffix } from '../../support/runtime-harness';
import { clientScript, SA_TOKEN } from './client-pod';

/**
 * Who may count, in the cluster: a client pod of its own namespace calls the stack's runtime (installed by
 * `npm run up` with the chart's defaults, so authentication on) by its Service DNS name, with and without its
 * ServiceAccount token, before and after a RoleBinding to the chart's writer role in the namespace of the example
 * CounterNamespace `orders`; `kubectl auth can-i` agrees at each step. Skipped when the stack has no node.
 */
const describeInCluster = process.env.TALLY_NODE_NAME ? describe : describe.skip;

describeInCluster('who may count, in the cluster', () => {
  const run = uniqueSuffix();
  const apps = `tally-ac-${run}`;
  const binding = `tally-ac-${run}`;
  const url = `http://${RELEASE}-runtime.${RELEASE_NAMESPACE}.svc.cluster.local:8080`;
  const identity = `system:serviceaccount:${apps}:default`;

  const kubectl = (...args: string[]): string => {
    const r = spawnSync('kubectl', ['--kubeconfig', requireEnv('KUBECONFIG'), ...args], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr.trim()}`);
    return r.stdout;
  };
  const kubectlIn = (input: string, ...args: string[]): void => {
    const r = spawnSync('kubectl', ['--kubeconfig', requireEnv('KUBECONFIG'), ...args], { encoding: 'utf8', input });
    if (r.status !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr.trim()}`);
  };
  /** One call from the client pod; with `withToken` it sends the pod's ServiceAccount token. */
  const call = (
    op: string,
    body: unknown,
    withToken: boolean,
  ): { status: number; body: { error?: { code: string; message: string } } } => {
    const args = ['calls', url, JSON.stringify([{ op, body }]), ...(withToken ? [SA_TOKEN] : [])];
    const out = kubectl('exec', '-n', apps, 'client', '--', 'node', '/client/client.js', ...args);
    return (JSON.parse(out) as { status: number; body: { error?: { code: string; message: string } } }[])[0]!;
  };
  const canI = (verb: string): boolean => {
    const r = spawnSync(
      'kubectl',
      [
        '--kubeconfig',
        requireEnv('KUBECONFIG'),
        'auth',
        'can-i',
        verb,
        'counternamespaces.tally.dev/orders',
        '--subresource=counters',
        '-n',
        EXAMPLES_NAMESPACE,
        `--as=${identity}`,
      ],
      { encoding: 'utf8' },
    );
    const answer = r.stdout.trim();
    if (answer !== 'yes' && answer !== 'no') throw new Error(`kubectl auth can-i: ${r.stdout}${r.stderr}`);
    return answer === 'yes';
  };
  const add = { namespace: 'orders', counter_name: `auth-${run}`, delta: 1 };
  const clear = { namespace: 'orders', counter_name: `auth-${run}` };

  beforeAll(async () => {
    kubectl('create', 'namespace', apps);
    await waitFor('the default ServiceAccount of the client namespace', async () => {
      kubectl('get', 'serviceaccount', 'default', '-n', apps);
      return true;
    });
    kubectl('create', 'configmap', 'client', '-n', apps, `--from-literal=client.js=${clientScript()}`);
    kubectlIn(
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'client', namespace: apps },
        spec: {
          terminationGracePeriodSeconds: 1,
          securityContext: { runAsNonRoot: true, runAsUser: 10001 },
          containers: [
            {
              name: 'client',
              image: requireEnv('TALLY_IMAGE_RUNTIME'),
              imagePullPolicy: 'Never',
              command: ['node', '-e', 'setInterval(() => {}, 1 << 30)'],
              volumeMounts: [{ name: 'client', mountPath: '/client' }],
            },
          ],
          volumes: [{ name: 'client', configMap: { name: 'client' } }],
        },
      }),
      'apply',
      '-f',
      '-',
    );
    kubectl('wait', '-n', apps, '--for=condition=Ready', 'pod/client', '--timeout=90s');
  });

  afterAll(() => {
    spawnSync('kubectl', [
      '--kubeconfig',
      requireEnv('KUBECONFIG'),
      'delete',
      'rolebinding',
      binding,
      '-n',
      EXAMPLES_NAMESPACE,
      '--ignore-not-found',
    ]);
    spawnSync('kubectl', ['--kubeconfig', requireEnv('KUBECONFIG'), 'delete', 'namespace', apps, '--wait=false']);
  });

  it('answers 401 to a call without a token', () => {
    const reply = call('AddCount', add, false);
    expect([reply.status, reply.body.error?.code]).toEqual([401, 'UNAUTHENTICATED']);
  });

  it('answers 403 to a pod whose ServiceAccount has no binding, and kubectl auth can-i says no', () => {
    expect(canI('update')).toBe(false);
    const reply = call('AddCount', add, true);
    expect(reply.status).toBe(403);
    expect(reply.body.error).toEqual({
      code: 'PERMISSION_DENIED',
      field: 'namespace',
      message: `${identity} may not update counternamespaces/counters of namespace "orders" (CounterNamespace ${EXAMPLES_NAMESPACE}/orders)`,
    });
  });

  it('answers 200 once a RoleBinding to the writer role exists, and kubectl auth can-i says yes', async () => {
    kubectl(
      'create',
      'rolebinding',
      binding,
      '-n',
      EXAMPLES_NAMESPACE,
      `--clusterrole=${RELEASE}-counter-writer`,
      `--serviceaccount=${apps}:default`,
    );
    expect(canI('update')).toBe(true);
    // The runtime reuses its refusal for runtime.auth.cacheSeconds (10 s by default), then asks again.
    await waitFor(
      'the runtime to accept the bound ServiceAccount',
      async () => call('AddCount', add, true).status === 200,
      {
        timeoutMs: 30_000,
        intervalMs: 1000,
      },
    );
    // Writer: may add and read, not clear; kubectl agrees.
    expect(canI('delete')).toBe(false);
    expect(call('ClearCount', clear, true).status).toBe(403);
    expect(canI('get')).toBe(true);
    expect(call('GetCount', clear, true).status).toBe(200);
  });
});
