import { execFileSync, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import {
  ApiextensionsV1Api,
  AppsV1Api,
  BatchV1Api,
  CoordinationV1Api,
  CoreV1Api,
  KubeConfig,
} from '@kubernetes/client-node';
import pino from 'pino';
import { CRD_NAME, configMapName, cronJobName } from '../../../api/names';
import { KubeClient } from '../../../operator/kube-api';
import { LeaderElector } from '../../../lib/kube/leader-election';
import { Reconciler } from '../../../operator/reconcile/reconciler';
import { cassandraSchemaStore } from '../../../operator/schema-store';
import { cassandraSettingsFromEnv, createCassandraClient } from '../../../store/client';
import { repoRoot } from '../../stack/paths';
import { requireEnv } from '../../support/env';
import {
  createNamespace,
  customObjects,
  deleteNamespace,
  installCrd,
  kubeConfig,
  kubeConfigAs,
} from '../../support/kube';
import { waitFor } from '../../stack/wait';
import { dropKeyspaces, stackEnv, uniqueSuffix } from '../../support/runtime-harness';

/**
 * `helm install` into the real API server, then what each ServiceAccount may and may not do, asked the way a person
 * would (`kubectl auth can-i --as=system:serviceaccount:...`), and `helm uninstall` leaving the CRD in place.
 */
describe('helm install on the local API server', () => {
  const run = uniqueSuffix();
  const ns = `tally-helm-${run}`;
  const release = `t${run}`;
  const chart = path.join(repoRoot(), 'helm', 'tally');
  let kc: KubeConfig;

  const helm = (...args: string[]) =>
    execFileSync(requireEnv('TALLY_HELM'), [...args, '--kubeconfig', requireEnv('KUBECONFIG')], { encoding: 'utf8' });
  /** `resource/name` asks about one object; `resource:subresource` about a subresource (kubectl's --subresource). */
  const canI = (sa: string, verb: string, what: string, namespace = ns): boolean => {
    const [resource, subresource] = what.split(':') as [string, string | undefined];
    const r = spawnSync(
      'kubectl',
      [
        '--kubeconfig',
        requireEnv('KUBECONFIG'),
        'auth',
        'can-i',
        verb,
        resource,
        '-n',
        namespace,
        `--as=system:serviceaccount:${ns}:${sa}`,
        ...(subresource ? [`--subresource=${subresource}`] : []),
      ],
      {
        encoding: 'utf8',
      },
    );
    const answer = r.stdout.trim();
    if (answer !== 'yes' && answer !== 'no') throw new Error(`kubectl auth can-i ${verb} ${what}: ${r.stderr}`);
    return answer === 'yes';
  };

  beforeAll(async () => {
    kc = kubeConfig();
    await installCrd(kc);
    await createNamespace(kc, ns);
    helm('install', release, chart, '--namespace', ns, '--set', 'cassandra.contactPoints=127.0.0.1:9042');
  });
  afterAll(async () => {
    spawnSync(requireEnv('TALLY_HELM'), [
      'uninstall',
      release,
      '--namespace',
      ns,
      '--kubeconfig',
      requireEnv('KUBECONFIG'),
    ]);
    await deleteNamespace(kc, ns, false);
  });

  it('creates the operator, the runtime, Memcached and their Services', async () => {
    const apps = kc.makeApiClient(AppsV1Api);
    const deployments = (await apps.listNamespacedDeployment({ namespace: ns })).items
      .map((d) => d.metadata?.name)
      .sort();
    expect(deployments).toEqual([
      `${release}-tally-memcached`,
      `${release}-tally-operator`,
      `${release}-tally-runtime`,
    ]);
    const services = (await kc.makeApiClient(CoreV1Api).listNamespacedService({ namespace: ns })).items
      .map((s) => s.metadata?.name)
      .sort();
    expect(services).toEqual([
      `${release}-tally-memcached`,
      `${release}-tally-operator-metrics`,
      `${release}-tally-runtime`,
    ]);
    expect(helm('status', release, '--namespace', ns)).toMatch(/STATUS: deployed/);
  });

  it('grants the operator every verb it uses, and not more', () => {
    const op = `${release}-tally-operator`;
    for (const [verb, resource] of [
      ['get', 'counternamespaces.tally.dev'],
      ['list', 'counternamespaces.tally.dev'],
      ['watch', 'counternamespaces.tally.dev'],
      ['patch', 'counternamespaces.tally.dev'],
      ['patch', 'counternamespaces.tally.dev:status'],
      ['update', 'counternamespaces.tally.dev:finalizers'],
      ['list', 'configmaps'],
      ['watch', 'configmaps'],
      ['patch', 'configmaps'],
      ['create', 'configmaps'],
      ['list', 'cronjobs.batch'],
      ['watch', 'cronjobs.batch'],
      ['patch', 'cronjobs.batch'],
      ['create', 'cronjobs.batch'],
      ['create', 'events'],
      ['get', `leases.coordination.k8s.io/${op}`],
      ['update', `leases.coordination.k8s.io/${op}`],
      ['create', 'leases.coordination.k8s.io'],
    ]) {
      expect([verb, resource, canI(op, verb!, resource!)]).toEqual([verb, resource, true]);
    }
    for (const [verb, resource] of [
      ['update', 'counternamespaces.tally.dev'],
      ['delete', 'counternamespaces.tally.dev'],
      ['update', 'counternamespaces.tally.dev:status'],
      ['get', 'counternamespaces.tally.dev:status'],
      ['get', 'configmaps'],
      ['update', 'configmaps'],
      ['delete', 'configmaps'],
      ['get', 'cronjobs.batch'],
      ['delete', 'cronjobs.batch'],
      ['patch', 'events'],
      ['get', 'leases.coordination.k8s.io/someone-elses'],
      ['update', 'leases.coordination.k8s.io/someone-elses'],
      ['delete', `leases.coordination.k8s.io/${op}`],
      ['get', 'secrets'],
      ['create', 'pods'],
      ['delete', 'namespaces'],
      ['create', 'customresourcedefinitions.apiextensions.k8s.io'],
    ]) {
      expect([verb, resource, canI(op, verb!, resource!)]).toEqual([verb, resource, false]);
    }
  });

  it("lets the operator's service account, with exactly the chart's RBAC, reconcile a CounterNamespace and lead", async () => {
    const op = `${release}-tally-operator`;
    const core = kc.makeApiClient(CoreV1Api);
    const asOperator = await kubeConfigAs(kc, ns, op);
    const kube = new KubeClient(asOperator);
    const cassandra = createCassandraClient(cassandraSettingsFromEnv(stackEnv()));
    const name = `rbac-${run}`;
    try {
      await customObjects(kc).createNamespacedCustomObject({
        group: 'tally.dev',
        version: 'v1alpha1',
        plural: 'counternamespaces',
        namespace: ns,
        body: { apiVersion: 'tally.dev/v1alpha1', kind: 'CounterNamespace', metadata: { name }, spec: {} },
      });
      const reconciler = new Reconciler({
        kube,
        schema: cassandraSchemaStore(cassandra),
        operator: {
          cassandra: cassandraSettingsFromEnv(stackEnv()),
          runtimeImage: 'tally-runtime:test',
          imagePullPolicy: 'IfNotPresent',
          watchNamespaces: [],
          leaseNamespace: ns,
          leaseName: op,
          identity: 'rbac-test',
          port: 0,
          concurrency: 1,
          resyncMs: 300_000,
        },
        log: pino({ level: 'silent' }),
        get: (n, o) => kube.getCounterNamespace(n, o),
      });
      // Server-side apply creates the ConfigMap and CronJob (patch + create), status and finalizer are patched.
      expect(await reconciler.reconcile(`${ns}/${name}`)).toEqual({ kind: 'done' });
      const cns = (await kube.getCounterNamespace(ns, name))!;
      expect(cns.status?.conditions?.find((c) => c.type === 'Ready')).toMatchObject({ status: 'True' });
      await core.readNamespacedConfigMap({ namespace: ns, name: configMapName(name) });
      await kc.makeApiClient(BatchV1Api).readNamespacedCronJob({ namespace: ns, name: cronJobName(name) });
      // Applying again, to objects that now exist: patch alone.
      expect(await reconciler.reconcile(`${ns}/${name}`)).toEqual({ kind: 'done' });

      await customObjects(kc).deleteNamespacedCustomObject({
        group: 'tally.dev',
        version: 'v1alpha1',
        plural: 'counternamespaces',
        namespace: ns,
        name,
      });
      expect(await reconciler.reconcile(`${ns}/${name}`)).toEqual({ kind: 'done' });
      expect(await kube.getCounterNamespace(ns, name)).toBeUndefined();

      const elector = new LeaderElector({
        api: asOperator.makeApiClient(CoordinationV1Api),
        namespace: ns,
        name: op,
        identity: 'rbac-test',
        leaseDurationMs: 3000,
        renewDeadlineMs: 2000,
        retryPeriodMs: 500,
      });
      elector.start();
      await waitFor('the service account to take its Lease', () => Promise.resolve(elector.isLeader), {
        timeoutMs: 15_000,
      });
      await elector.stop({ release: true });
    } finally {
      await dropKeyspaces([`tally_${name.replace(/-/g, '_')}`]);
      await cassandra.shutdown();
    }
  });

  it('gives the runtime read-only access to ConfigMaps and CounterNamespaces, and nothing else', () => {
    const rt = `${release}-tally-runtime`;
    for (const resource of ['configmaps', 'counternamespaces.tally.dev']) {
      for (const verb of ['get', 'list', 'watch']) {
        expect([verb, resource, canI(rt, verb, resource)]).toEqual([verb, resource, true]);
      }
    }
    for (const [verb, resource] of [
      ['create', 'configmaps'],
      ['patch', 'configmaps'],
      ['patch', 'counternamespaces.tally.dev'],
      ['patch', 'counternamespaces.tally.dev:status'],
      ['list', 'secrets'],
    ]) {
      expect([verb, resource, canI(rt, verb!, resource!)]).toEqual([verb, resource, false]);
    }
  });

  it('helm uninstall removes the release but leaves the CRD', async () => {
    helm('uninstall', release, '--namespace', ns);
    const left = (await kc.makeApiClient(AppsV1Api).listNamespacedDeployment({ namespace: ns })).items;
    expect(left).toEqual([]);
    const crd = await kc.makeApiClient(ApiextensionsV1Api).readCustomResourceDefinition({ name: CRD_NAME });
    expect(crd.metadata?.name).toBe(CRD_NAME);
  });
});
