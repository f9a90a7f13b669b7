import { CoreV1Api, Exec, KubeConfig, type V1Pod, type V1Status } from '@kubernetes/client-node';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { waitFor } from '../stack/wait';

/**
 * The stack's single node: pods run from images built here, reach each other through a Service
 * (kube-proxy) by its DNS name (CoreDNS), reach the API server with in-cluster credentials, stay on the machine (no
 * default route), and can never pull an image. Skipped when the stack runs without it (TALLY_STACK_NODE=0, a
 * cluster named by KUBECONFIG, or another stack on this machine has the node).
 */
const nodeName = process.env.TALLY_NODE_NAME;
const image = process.env.TALLY_NODE_IMAGE_PROBE ?? 'tally.local/probe:1';
const describeNode = nodeName ? describe : describe.skip;

describeNode('node (local stack)', () => {
  const kc = new KubeConfig();
  kc.loadFromDefault();
  const core = kc.makeApiClient(CoreV1Api);
  const run = randomUUID().slice(0, 8);
  const namespace = `tally-node-smoke-${run}`;

  function probePod(name: string, port: number, labels: Record<string, string> = {}): V1Pod {
    return {
      metadata: { name, labels: { run, ...labels } },
      spec: {
        terminationGracePeriodSeconds: 1,
        containers: [
          {
            name: 'probe',
            image,
            imagePullPolicy: 'Never',
            command: ['/probe', 'serve', String(port)],
            ports: [{ containerPort: port }],
            readinessProbe: { httpGet: { path: '/', port }, periodSeconds: 1 },
          },
        ],
      },
    };
  }

  async function waitReady(name: string): Promise<V1Pod> {
    return waitFor(
      `pod ${namespace}/${name} to be Ready`,
      async () => {
        const pod = await core.readNamespacedPod({ name, namespace });
        const ready = pod.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
        if (!ready) throw new Error(`phase ${pod.status?.phase}: ${JSON.stringify(pod.status?.containerStatuses)}`);
        return pod;
      },
      { timeoutMs: 90_000, intervalMs: 500 },
    );
  }

  /** Runs a command in a pod through the API server and the kubelet (the path of `kubectl exec`). */
  async function exec(pod: string, command: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    let stdout = '';
    let stderr = '';
    const sink = (append: (s: string) => void): Writable =>
      new Writable({
        write(chunk: Buffer, _enc, done) {
          append(chunk.toString('utf8'));
          done();
        },
      });
    const status = await new Promise<V1Status>((resolve, reject) => {
      new Exec(kc)
        .exec(
          namespace,
          pod,
          'probe',
          command,
          sink((s) => (stdout += s)),
          sink((s) => (stderr += s)),
          null,
          false,
          resolve,
        )
        .catch(reject);
    });
    const code = status.status === 'Success' ? 0 : Number(status.details?.causes?.[0]?.message ?? 1);
    return { code, stdout, stderr };
  }

  beforeAll(async () => {
    await core.createNamespace({ body: { metadata: { name: namespace } } });
    // The ServiceAccount controller gives the namespace its `default` account; pods are refused until then.
    await waitFor('the default ServiceAccount', async () => {
      await core.readNamespacedServiceAccount({ name: 'default', namespace });
      return true;
    });
    await core.createNamespacedPod({ namespace, body: probePod('server', 8080, { app: 'server' }) });
    await core.createNamespacedPod({ namespace, body: probePod('client', 8081) });
    await core.createNamespacedService({
      namespace,
      body: {
        metadata: { name: 'echo' },
        spec: { selector: { app: 'server' }, ports: [{ port: 80, targetPort: 8080 }] },
      },
    });
    await Promise.all([waitReady('server'), waitReady('client')]);
  }, 120_000);

  afterAll(async () => {
    await core.deleteNamespace({ name: namespace }).catch(() => undefined);
  });

  it('is Ready without the not-ready taint', async () => {
    const node = await core.readNode({ name: nodeName! });
    expect(node.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
    expect((node.spec?.taints ?? []).map((t) => t.key)).not.toContain('node.kubernetes.io/not-ready');
  });

  it('serves pod logs through the kubelet', async () => {
    const log = await core.readNamespacedPodLog({ name: 'server', namespace, container: 'probe' });
    expect(log).toContain('tally-probe server listening on :8080');
  });

  it('resolves a Service by its DNS name to its ClusterIP', async () => {
    const svc = await core.readNamespacedService({ name: 'echo', namespace });
    const r = await exec('client', ['/probe', 'resolve', `echo.${namespace}.svc.cluster.local`]);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    expect(r.stdout.trim()).toBe(svc.spec?.clusterIP);
  });

  it('reaches a pod through its Service (kube-proxy), by the short name too', async () => {
    const byFqdn = await waitFor(
      'the Service to answer',
      async () => {
        const r = await exec('client', ['/probe', 'get', `http://echo.${namespace}.svc.cluster.local/`]);
        if (r.code !== 0) throw new Error(r.stderr.trim());
        return r;
      },
      { timeoutMs: 30_000, intervalMs: 1000 },
    );
    expect(byFqdn.stdout).toBe('tally-probe server\n');
    const byShortName = await exec('client', ['/probe', 'get', 'http://echo/']);
    expect(byShortName.stdout).toBe('tally-probe server\n');
  });

  it('reaches the API server with in-cluster credentials (the kubernetes Service)', async () => {
    const r = await exec('client', ['/probe', 'kube']);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    expect(JSON.parse(r.stdout)).toMatchObject({ gitVersion: expect.stringMatching(/^v1\./) });
  });

  it('gives pods no default route: only the pod subnet and the Service range', async () => {
    const r = await exec('client', ['/probe', 'routes']);
    const routes = r.stdout.trim().split('\n').sort();
    expect(routes).not.toContainEqual(expect.stringMatching(/^0\.0\.0\.0\/0 /));
    expect(routes).toEqual(['10.0.0.0/24 via 10.244.0.1', '10.244.0.0/24 via 0.0.0.0']);
  });

  it("keeps the stack's forwarding and input rules ahead of kube-proxy's", () => {
    const first = (chain: string): string | undefined =>
      execFileSync('iptables', ['-w', '-S', chain], { encoding: 'utf8' })
        .split('\n')
        .find((l) => l.startsWith('-A '));
    expect(first('FORWARD')).toBe('-A FORWARD -j TALLY-FORWARD');
    expect(first('INPUT')).toBe('-A INPUT -j TALLY-INPUT');
  });

  it('resolves nothing outside the cluster (no upstream DNS)', async () => {
    const r = await exec('client', ['/probe', 'resolve', 'tally-no-such-name.test']);
    expect(r.code).not.toBe(0);
  });

  it('never pulls an image: every registry resolves to a closed port on loopback', async () => {
    // A short name: the default registry, with no hosts entry of its own, is covered by the `_default` one.
    await core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name: 'never-pulled' },
        spec: { containers: [{ name: 'c', image: 'tally-never-imported:1', imagePullPolicy: 'IfNotPresent' }] },
      },
    });
    const message = await waitFor(
      'the pull to fail',
      async () => {
        const events = await core.listNamespacedEvent({
          namespace,
          fieldSelector: 'involvedObject.name=never-pulled,reason=Failed',
        });
        return events.items.map((e) => e.message ?? '').find((m) => m.includes('pull'));
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    expect(message).toContain('127.0.0.1:9');
  });
});
