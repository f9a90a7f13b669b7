import { execFileSync, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { ApiextensionsV1Api, AppsV1Api, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { CRD_NAME } from '../../../operator/api/crd';
import { repoRoot } from '../../stack/paths';
import { requireEnv } from '../../support/env';
import { createNamespace, deleteNamespace, kubeConfig } from '../../support/kube';
import { uniqueSuffix } from '../../support/runtime-harness';

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
  const canI = (sa: string, verb: string, resource: string, namespace = ns): boolean => {
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
      ],
      {
        encoding: 'utf8',
      },
    );
    const answer = r.stdout.trim();
    if (answer !== 'yes' && answer !== 'no') throw new Error(`kubectl auth can-i ${verb} ${resource}: ${r.stderr}`);
    return answer === 'yes';
  };

  beforeAll(async () => {
    kc = kubeConfig();
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
      ['patch', 'counternamespaces.tally.dev/status'],
      ['list', 'configmaps'],
      ['watch', 'configmaps'],
      ['patch', 'configmaps'],
      ['create', 'configmaps'],
      ['list', 'cronjobs.batch'],
      ['patch', 'cronjobs.batch'],
      ['create', 'events'],
      ['get', 'leases.coordination.k8s.io'],
      ['update', 'leases.coordination.k8s.io'],
    ]) {
      expect([verb, resource, canI(op, verb!, resource!)]).toEqual([verb, resource, true]);
    }
    for (const [verb, resource] of [
      ['get', 'secrets'],
      ['create', 'pods'],
      ['delete', 'namespaces'],
      ['create', 'customresourcedefinitions.apiextensions.k8s.io'],
    ]) {
      expect([verb, resource, canI(op, verb!, resource!)]).toEqual([verb, resource, false]);
    }
  });

  it('gives the runtime read-only access to ConfigMaps and nothing on the CRD', () => {
    const rt = `${release}-tally-runtime`;
    for (const verb of ['get', 'list', 'watch']) expect([verb, canI(rt, verb, 'configmaps')]).toEqual([verb, true]);
    for (const [verb, resource] of [
      ['create', 'configmaps'],
      ['patch', 'configmaps'],
      ['get', 'counternamespaces.tally.dev'],
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
