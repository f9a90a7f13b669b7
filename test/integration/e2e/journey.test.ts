import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { installRelease } from '../../stack/components/cluster';
import type { BuiltImage } from '../../stack/images/images';
import { waitFor } from '../../stack/wait';
import { requireEnv } from '../../support/env';
import { kubeConfig, releaseCounterNamespaces } from '../../support/kube';
import { dropKeyspaces, uniqueSuffix } from '../../support/runtime-harness';
import { cassandraSettingsFromEnv, createCassandraClient } from '../../../store/client';
import { clientScript, SA_TOKEN, type LoadReport } from './client-pod';

/**
 * The journey a user takes, in the cluster: Tally's own images as pods on the stack's node, installed with
 * `helm install`, a CounterNamespace in a tenant namespace, a client pod in a third namespace calling the runtime by
 * its Service DNS name, the rollup CronJob's Job, a `helm upgrade` and a deleted runtime pod under load, deletion and
 * `helm uninstall`. Skipped when the stack has no node (TALLY_STACK_NODE=0; never in CI).
 */
const describeInCluster = process.env.TALLY_NODE_NAME ? describe : describe.skip;

describeInCluster('the journey of a user, in the cluster', () => {
  const run = uniqueSuffix();
  const release = `j${run}`;
  const fullname = `${release}-tally`;
  const system = `tally-j-${run}`;
  const tenant = `tally-jt-${run}`;
  const apps = `tally-jc-${run}`;
  const secret = 'tally-cassandra-credentials';
  const runtimeSecret = 'tally-cassandra-runtime-credentials';
  const cns = { eventual: `je-${run}`, bestEffort: `jb-${run}`, accurate: `ja-${run}` };
  const keyspace = (name: string): string => `tally_${name.replace(/-/g, '_')}`;
  const url = `http://${fullname}-runtime.${system}.svc.cluster.local:8080`;

  const kubectl = (...args: string[]): string => {
    const r = spawnSync('kubectl', ['--kubeconfig', requireEnv('KUBECONFIG'), ...args], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr.trim()}`);
    return r.stdout;
  };
  const kubectlIn = (input: string, ...args: string[]): string => {
    const r = spawnSync('kubectl', ['--kubeconfig', requireEnv('KUBECONFIG'), ...args], { encoding: 'utf8', input });
    if (r.status !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr.trim()}`);
    return r.stdout;
  };
  const json = <T>(...args: string[]): T => JSON.parse(kubectl(...args, '-o', 'json')) as T;
  const stackEnv = (): Record<string, string> => ({
    KUBECONFIG: requireEnv('KUBECONFIG'),
    TALLY_HELM: requireEnv('TALLY_HELM'),
    CASSANDRA_CONTACT_POINTS: requireEnv('CASSANDRA_CONTACT_POINTS'),
    // The CA of the stack's Cassandra (TLS only): installRelease passes it as cassandra.tls.ca.
    CASSANDRA_CA_FILE: requireEnv('CASSANDRA_CA_FILE'),
  });
  const images = (): BuiltImage[] =>
    ['runtime', 'operator', 'memcached'].map((name) => ({
      name,
      ref: requireEnv(`TALLY_IMAGE_${name.toUpperCase()}`),
      tar: requireEnv(`TALLY_IMAGE_${name.toUpperCase()}_TAR`),
    }));
  /** The release's values beyond the stack's local ones (images, Cassandra): one tenant namespace, credentials. */
  const values = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    watchNamespaces: [tenant],
    cassandra: { existingSecret: secret, runtime: { existingSecret: runtimeSecret } },
    runtime: { service: { type: 'ClusterIP', nodePort: null }, ...extra },
  });

  /** Runs the client program in the client pod and parses what it prints; it sends the pod's ServiceAccount token. */
  const client = <T>(...args: string[]): T =>
    JSON.parse(kubectl('exec', '-n', apps, 'client', '--', 'node', '/client/client.js', ...args, SA_TOKEN)) as T;
  const token = () => ({ token: randomUUID(), generation_time: new Date().toISOString() });

  interface Pod {
    metadata: { name: string; labels: Record<string, string>; deletionTimestamp?: string };
    spec: {
      securityContext?: { runAsNonRoot?: boolean };
      containers: { name: string; securityContext?: { readOnlyRootFilesystem?: boolean; runAsNonRoot?: boolean } }[];
    };
    status: { phase: string; conditions?: { type: string; status: string }[] };
  }
  const runtimePods = (): Pod[] =>
    json<{ items: Pod[] }>(
      'get',
      'pods',
      '-n',
      system,
      '-l',
      `app.kubernetes.io/instance=${release},app.kubernetes.io/component=runtime`,
    ).items;
  const ready = (p: Pod): boolean =>
    p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

  /** As docs/helm.md says: the operator's and the runtime's Secrets in the release's namespace, nowhere else. */
  const credentials = (namespace: string): void => {
    const manifest = (name: string, username: string, password: string) => ({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name, namespace },
      stringData: { username, password },
    });
    // Through stdin, so no password is on a command line.
    kubectlIn(
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'List',
        items: [
          manifest(secret, requireEnv('CASSANDRA_USERNAME'), requireEnv('CASSANDRA_PASSWORD')),
          manifest(
            runtimeSecret,
            requireEnv('TALLY_CASSANDRA_RUNTIME_ROLE'),
            requireEnv('TALLY_CASSANDRA_RUNTIME_PASSWORD'),
          ),
        ],
      }),
      'apply',
      '-f',
      '-',
    );
  };

  beforeAll(async () => {
    for (const ns of [system, tenant, apps]) kubectl('create', 'namespace', ns);
    credentials(system);
    await waitFor('the default ServiceAccount of the client namespace', async () => {
      kubectl('get', 'serviceaccount', 'default', '-n', apps);
      return true;
    });
  });

  afterAll(async () => {
    spawnSync(requireEnv('TALLY_HELM'), ['uninstall', release, '-n', system, '--kubeconfig', requireEnv('KUBECONFIG')]);
    // With the operator gone, a CounterNamespace keeps its finalizer: let go of it so the namespace can go.
    await releaseCounterNamespaces(kubeConfig(), tenant);
    for (const ns of [apps, tenant, system])
      spawnSync('kubectl', ['--kubeconfig', requireEnv('KUBECONFIG'), 'delete', 'namespace', ns, '--wait=false']);
    await dropKeyspaces(Object.values(cns).map(keyspace));
  });

  it('1. helm install: operator, runtime and Memcached pods Ready, non-root, read-only root filesystem', async () => {
    await installRelease(stackEnv(), images(), { release, namespace: system, values: values() });
    const pods = json<{ items: Pod[] }>(
      'get',
      'pods',
      '-n',
      system,
      '-l',
      `app.kubernetes.io/instance=${release}`,
    ).items;
    const components = pods.map((p) => p.metadata.labels['app.kubernetes.io/component']);
    expect(components.sort()).toEqual(['memcached', 'operator', 'runtime', 'runtime']);
    expect(pods.filter(ready)).toHaveLength(4);
    for (const p of pods) {
      expect([p.metadata.name, p.spec.securityContext?.runAsNonRoot]).toEqual([p.metadata.name, true]);
      expect([p.metadata.name, p.spec.containers[0]!.securityContext?.readOnlyRootFilesystem]).toEqual([
        p.metadata.name,
        true,
      ]);
    }
    // What the container really is, asked inside it: user 10001, and the root filesystem refuses a write.
    const pod = runtimePods()[0]!.metadata.name;
    const inside = kubectl(
      'exec',
      '-n',
      system,
      pod,
      '--',
      'node',
      '-e',
      "let w; try { require('fs').writeFileSync('/probe', 'x'); w = 'written' } catch (e) { w = e.code } console.log(JSON.stringify({ uid: process.getuid(), write: w }))",
    );
    expect(JSON.parse(inside)).toEqual({ uid: 10001, write: 'EROFS' });

    // The install's notes tell this user where the example's rollup Job gets its Cassandra role.
    const notes = spawnSync(
      requireEnv('TALLY_HELM'),
      ['get', 'notes', release, '-n', system, '--kubeconfig', requireEnv('KUBECONFIG')],
      { encoding: 'utf8' },
    ).stdout;
    expect(notes).toContain(`kubectl apply -n ${tenant} -f -`);
    expect(notes).toContain('from the Secret tally-rollup-orders the operator creates there');
    expect(notes).not.toContain('helm pull');
  });

  it('2. kubectl apply: CounterNamespaces of all three types in a tenant namespace become Ready', () => {
    const manifest = (name: string, counterType: string, deletionPolicy: string): string =>
      [
        'apiVersion: tally.dev/v1alpha1',
        'kind: CounterNamespace',
        `metadata: {name: ${name}, namespace: ${tenant}}`,
        'spec:',
        `  counterType: ${counterType}`,
        '  cassandra: {replication: {class: SimpleStrategy, replicationFactor: 1}}',
        // The default accept window (5 s): with callers authenticated, a runtime pod that starts under load reviews
        // each new token with the API server first, and a 2 s window left a stalled first call no time to retry.
        '  eventStorage: {acceptLimitSeconds: 5}',
        '  rollup: {coalesceMs: 200, settleMarginMs: 1200}',
        `  deletionPolicy: ${deletionPolicy}`,
      ].join('\n');
    kubectlIn(
      [
        manifest(cns.eventual, 'Eventual', 'Delete'),
        manifest(cns.bestEffort, 'BestEffort', 'Delete'),
        manifest(cns.accurate, 'Accurate', 'Retain'),
      ].join('\n---\n'),
      'apply',
      '-f',
      '-',
    );
    kubectl(
      'wait',
      '-n',
      tenant,
      '--for=condition=Ready',
      '--timeout=120s',
      ...Object.values(cns).map((n) => `cns/${n}`),
    );
  });

  it('3. a client pod in a third namespace counts through the Service DNS name, all three types', async () => {
    // Its ServiceAccount may count (and clear) in the tenant namespace, as a platform team would grant it.
    kubectl(
      'create',
      'rolebinding',
      'client-counts',
      '-n',
      tenant,
      `--clusterrole=${fullname}-counter-admin`,
      `--serviceaccount=${apps}:default`,
    );
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
    // The runtime learns the new namespaces from the operator's ConfigMaps: wait until it serves all three.
    await waitFor(
      'the runtime to serve the tenant namespaces',
      async () => {
        const replies = client<{ status: number }[]>(
          'calls',
          url,
          JSON.stringify(
            Object.values(cns).map((namespace) => ({ op: 'GetCount', body: { namespace, counter_name: 'probe' } })),
          ),
        );
        return replies.every((r) => r.status === 200);
      },
      { timeoutMs: 60_000, intervalMs: 1000 },
    );

    for (const namespace of Object.values(cns)) {
      const counter = 'checkout';
      const retried = token();
      const afterClear = token();
      const add = (delta: number, t = token()) => ({
        op: 'AddCount',
        body: { namespace, counter_name: counter, delta, idempotency_token: t },
      });
      const before = client<{ status: number; body: { count?: number } }[]>(
        'calls',
        url,
        JSON.stringify([
          add(5, retried),
          add(5, retried),
          add(5, retried),
          add(-2),
          add(10),
          { op: 'ClearCount', body: { namespace, counter_name: counter, idempotency_token: token() } },
        ]),
      );
      expect([namespace, before.map((r) => r.status)]).toEqual([namespace, [200, 200, 200, 200, 200, 200]]);
      expect(before[5]!.body.count).toBe(0);
      // The next adds' generation times must be later than the clear's.
      await new Promise((r) => setTimeout(r, 5));
      const after = client<{ status: number; body: { count?: number } }[]>(
        'calls',
        url,
        JSON.stringify([
          add(7, { ...afterClear, generation_time: new Date().toISOString() }),
          add(7, afterClear),
          add(-3),
        ]),
      );
      expect([namespace, after.map((r) => r.status)]).toEqual([namespace, [200, 200, 200]]);
      await waitFor(
        `GetCount of ${namespace} to reach the exact count`,
        async () => {
          const [read] = client<{ body: { count: number } }[]>(
            'calls',
            url,
            JSON.stringify([{ op: 'GetCount', body: { namespace, counter_name: counter } }]),
          );
          // BestEffort is not idempotent (docs/api.md): each retry counts. 5+5+5-2+10, cleared, then 7+7-3.
          return read!.body.count === (namespace === cns.bestEffort ? 11 : 4);
        },
        { timeoutMs: 30_000, intervalMs: 500 },
      );
    }
  });

  it('4. a Job made from the rollup CronJob completes as a pod, and its summary is what it rolled up', async () => {
    // Fresh counters the runtime has not read, so nothing rolled them up before the Job.
    const counters = Array.from({ length: 5 }, (_, i) => `sweep-${i}`);
    const adds = counters.flatMap((c, i) =>
      Array.from({ length: i + 1 }, () => ({
        op: 'AddCount',
        body: { namespace: cns.eventual, counter_name: c, delta: 2, idempotency_token: token() },
      })),
    );
    const replies = client<{ status: number }[]>('calls', url, JSON.stringify(adds));
    expect(replies.every((r) => r.status === 200)).toBe(true);
    // Past the accept limit and settle margin: the events are final and the sweep may roll them up.
    await new Promise((r) => setTimeout(r, 4000));
    const job = `sweep-${run}`;
    kubectl('create', 'job', job, `--from=cronjob/tally-rollup-${cns.eventual}`, '-n', tenant);
    kubectl('wait', '-n', tenant, '--for=condition=Complete', `job/${job}`, '--timeout=120s');
    const lines = kubectl('logs', '-n', tenant, `job/${job}`).trim().split('\n');
    const summary = lines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.namespace === cns.eventual && 'scanned' in l);
    // The namespace's counters with events: checkout (step 3) and the five fresh ones (a read makes no row).
    expect(summary).toMatchObject({ namespace: cns.eventual, failed: 0, errors: [] });
    expect(summary!.scanned).toBe(counters.length + 1);
    // The runtime rolls counters up as they are written too, so the Job may find some current already.
    expect((summary!.rolled as number) + (summary!.current as number)).toBe(summary!.behind);
    const reads = client<{ body: { count: number } }[]>(
      'calls',
      url,
      JSON.stringify(counters.map((c) => ({ op: 'GetCount', body: { namespace: cns.eventual, counter_name: c } }))),
    );
    expect(reads.map((r) => r.body.count)).toEqual(counters.map((_, i) => 2 * (i + 1)));
    // It logged in as its namespace's own role: the only Secrets in the tenant namespace are the operator's rollup
    // Secrets, none a copy of the operator's credentials.
    const secrets = kubectl('get', 'secrets', '-n', tenant, '-o', 'name').trim().split('\n').sort();
    expect(secrets).toEqual(
      Object.values(cns)
        .map((n) => `secret/tally-rollup-${n}`)
        .sort(),
    );
    // Cassandra speaks TLS only: the Job verified it against the CA the operator put beside the Job's credentials.
    const data = kubectl('get', 'secret', `tally-rollup-${cns.eventual}`, '-n', tenant, '-o', 'jsonpath={.data}');
    expect(Object.keys(JSON.parse(data) as object).sort()).toEqual(['ca.crt', 'password', 'username']);
  });

  /** Runs the client's load while `disrupt` rolls or kills runtime pods; returns what the client saw and the count. */
  const underLoad = async (
    counter: string,
    disrupt: () => Promise<void>,
  ): Promise<{ report: LoadReport; counted: number }> => {
    const load = spawn(
      'kubectl',
      [
        '--kubeconfig',
        requireEnv('KUBECONFIG'),
        'exec',
        '-i',
        '-n',
        apps,
        'client',
        '--',
        'node',
        '/client/client.js',
        'load',
        url,
        cns.accurate,
        counter,
        '4',
        SA_TOKEN,
      ],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    load.stdout.on('data', (d: Buffer) => (out += d.toString()));
    load.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number>((resolve) => load.once('exit', (code) => resolve(code ?? -1)));
    await new Promise((r) => setTimeout(r, 3000));
    await disrupt();
    await new Promise((r) => setTimeout(r, 3000));
    load.stdin.end();
    const code = await exited;
    if (code !== 0) throw new Error(`the client's load exited ${code}: ${err}`);
    const report = JSON.parse(out) as LoadReport;
    const [read] = client<{ body: { count: number } }[]>(
      'calls',
      url,
      JSON.stringify([{ op: 'GetCount', body: { namespace: cns.accurate, counter_name: counter } }]),
    );
    return { report, counted: read!.body.count };
  };

  const rolledOut = async (before: string[]): Promise<void> => {
    await waitFor(
      'the runtime pods to be replaced and Ready',
      async () => {
        const pods = runtimePods();
        const live = pods.filter((p) => !p.metadata.deletionTimestamp);
        return (
          live.length === 2 &&
          live.every(ready) &&
          live.every((p) => !before.includes(p.metadata.name)) &&
          pods.length === 2
        );
      },
      { timeoutMs: 180_000, intervalMs: 1000 },
    );
  };

  /** Every add acknowledged, each counted once, and not one failed attempt on the way. */
  const expectEveryAddOnce = ({ report, counted }: { report: LoadReport; counted: number }): void => {
    expect(report.acked).toBeGreaterThan(100);
    const { givenUp, connectionErrors, statuses, samples } = report;
    expect({ givenUp, connectionErrors, statuses, samples }).toEqual({
      givenUp: 0,
      connectionErrors: 0,
      statuses: {},
      samples: [],
    });
    expect(counted).toBe(report.acked);
  };

  it('5. helm upgrade rolls the runtime under load: every acknowledged add counted once, no connection error', async () => {
    const before = runtimePods().map((p) => p.metadata.name);
    const outcome = await underLoad('rolling-upgrade', async () => {
      await installRelease(stackEnv(), images(), {
        release,
        namespace: system,
        values: values({ podAnnotations: { 'tally.dev/restarted-at': new Date().toISOString() } }),
      });
      await rolledOut(before);
    });
    expectEveryAddOnce(outcome);
  });

  it('6. a runtime pod deleted under load: the same', async () => {
    const before = runtimePods().map((p) => p.metadata.name);
    const outcome = await underLoad('pod-deleted', async () => {
      kubectl('delete', 'pod', before[0]!, '-n', system, '--wait=true');
      await waitFor(
        'a replacement runtime pod to be Ready',
        async () => runtimePods().filter((p) => !p.metadata.deletionTimestamp && ready(p)).length === 2,
        { timeoutMs: 120_000, intervalMs: 1000 },
      );
    });
    expectEveryAddOnce(outcome);
  });

  it('7. deletion honours each deletion policy; helm uninstall leaves the CRD and the retained data', async () => {
    const cassandra = createCassandraClient(cassandraSettingsFromEnv(process.env), {
      applicationName: 'tally-journey',
    });
    const keyspaces = async (): Promise<string[]> =>
      (await cassandra.execute('SELECT keyspace_name FROM system_schema.keyspaces')).rows.map((r) =>
        String(r.get('keyspace_name')),
      );
    try {
      kubectl('delete', 'cns', cns.eventual, cns.accurate, '-n', tenant, '--wait=true', '--timeout=90s');
      const left = await keyspaces();
      expect(left).not.toContain(keyspace(cns.eventual));
      expect(left).toContain(keyspace(cns.accurate));
      for (const name of [cns.eventual, cns.accurate]) {
        expect(
          kubectl(
            'get',
            'configmap,cronjob',
            '-n',
            tenant,
            '-l',
            `tally.dev/counter-namespace=${name}`,
            '-o',
            'name',
          ).trim(),
        ).toBe('');
      }

      const r = spawnSync(
        requireEnv('TALLY_HELM'),
        ['uninstall', release, '-n', system, '--wait', '--kubeconfig', requireEnv('KUBECONFIG')],
        { encoding: 'utf8' },
      );
      expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
      // Pods go after their ReplicaSets, once they have drained.
      await waitFor(
        'the release objects and pods to be gone',
        async () =>
          kubectl('get', 'all', '-n', system, '-l', `app.kubernetes.io/instance=${release}`, '-o', 'name').trim() ===
          '',
        { timeoutMs: 60_000, intervalMs: 1000 },
      );
      expect(kubectl('get', 'crd', 'counternamespaces.tally.dev', '-o', 'name').trim()).toBe(
        'customresourcedefinition.apiextensions.k8s.io/counternamespaces.tally.dev',
      );
      // The CounterNamespace left behind stays, as does its keyspace and the Secret the user made.
      expect(kubectl('get', 'cns', cns.bestEffort, '-n', tenant, '-o', 'name').trim()).toBe(
        `counternamespace.tally.dev/${cns.bestEffort}`,
      );
      expect(kubectl('get', 'secret', secret, '-n', system, '-o', 'name').trim()).toBe(`secret/${secret}`);
      expect(await keyspaces()).toContain(keyspace(cns.accurate));
    } finally {
      await cassandra.shutdown();
    }
  });
});
