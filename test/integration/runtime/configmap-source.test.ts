import { CoreV1Api, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import pino from 'pino';
import { CONFIG_KEY, CONFIG_LABEL_VALUE, LABELS } from '../../../api/names';
import { ConfigMapNamespaceSource } from '../../../runtime/namespace/configmap-source';
import type { NamespaceSnapshot } from '../../../runtime/namespace/source';
import { createNamespace, customObjects, deleteNamespace, installCrd, kubeConfig } from '../../support/kube';
import { manifests, uniqueSuffix } from '../../support/runtime-harness';

const GROUP = { group: 'tally.dev', version: 'v1alpha1', plural: 'counternamespaces' };

/**
 * The runtime's ConfigMap source against the real API server: which ConfigMaps it serves when several define one
 * name, and that a labelled ConfigMap nobody's CounterNamespace controls is not served.
 */
describe('ConfigMap namespace source (real API server)', () => {
  const run = uniqueSuffix();
  // Sorted by name, the later namespace would come first: age must decide, not the name.
  const early = `zz-cms-${run}`;
  const late = `aa-cms-${run}`;
  const name = `dup-${run}`;
  let kc: KubeConfig;
  let source: ConfigMapNamespaceSource | undefined;

  beforeAll(async () => {
    kc = kubeConfig();
    await installCrd(kc);
    await createNamespace(kc, early);
    await createNamespace(kc, late);
  });
  afterAll(async () => {
    await source?.stop();
    await Promise.all([deleteNamespace(kc, early, false), deleteNamespace(kc, late, false)]);
  });

  /** A CounterNamespace (not reconciled: no operator watches these namespaces) and a ConfigMap it controls, or a ConfigMap alone. */
  async function define(namespace: string, counterType: 'Eventual' | 'Accurate', controlled: boolean, cmName = name) {
    const cn = controlled
      ? ((await customObjects(kc).createNamespacedCustomObject({
          ...GROUP,
          namespace,
          body: {
            apiVersion: 'tally.dev/v1alpha1',
            kind: 'CounterNamespace',
            metadata: { name },
            spec: { counterType },
          },
        })) as { metadata: { uid: string } })
      : undefined;
    // As the operator records it once provisioned: the runtime serves only the keyspace the status names.
    if (cn) {
      await customObjects(kc).replaceNamespacedCustomObjectStatus({
        ...GROUP,
        namespace,
        name,
        body: { ...cn, status: { keyspace: `tally_${name.replace(/-/g, '_')}` } },
      });
    }
    await kc.makeApiClient(CoreV1Api).createNamespacedConfigMap({
      namespace,
      body: {
        metadata: {
          name: `tally-${cmName}`,
          labels: { [LABELS.config]: CONFIG_LABEL_VALUE },
          ...(cn
            ? {
                ownerReferences: [
                  {
                    apiVersion: 'tally.dev/v1alpha1',
                    kind: 'CounterNamespace',
                    name,
                    uid: cn.metadata.uid,
                    controller: true,
                  },
                ],
              }
            : {}),
        },
        data: { [CONFIG_KEY]: manifests([{ name, counterType }]) },
      },
    });
  }

  it('serves the oldest definition of a name, and only ConfigMaps a CounterNamespace controls', async () => {
    await define(early, 'Eventual', true);
    // creationTimestamp has whole seconds.
    await new Promise((r) => setTimeout(r, 1100));
    await define(late, 'Accurate', true);
    await define(late, 'Accurate', false, `orphan-${run}`);

    source = new ConfigMapNamespaceSource(kc, [early, late], pino({ level: 'silent' }));
    let snapshot: NamespaceSnapshot | undefined;
    await source.start((s) => (snapshot = s));

    expect(snapshot!.namespaces.map((n) => [n.name, n.counterType])).toEqual([[name, 'Eventual']]);
    expect(snapshot!.errors).toEqual(
      expect.arrayContaining([
        `ConfigMap ${late}/tally-orphan-${run}: not controlled by a CounterNamespace (only the operator's ConfigMaps are served)`,
        expect.stringContaining(`ConfigMap ${late}/tally-${name}`) as unknown as string,
      ]),
    );
    expect(snapshot!.errors.find((e) => e.startsWith(`ConfigMap ${late}/tally-${name}`))).toMatch(
      new RegExp(`namespace "${name}" is already defined by ConfigMap ${early}/tally-${name}`),
    );
  });

  it('reports, and does not serve, ConfigMaps forged by someone who may only create ConfigMaps', async () => {
    const core = kc.makeApiClient(CoreV1Api);
    const owner = (await customObjects(kc).getNamespacedCustomObject({ ...GROUP, namespace: early, name })) as {
      metadata: { uid: string };
    };
    const forge = (cmName: string, uid: string, doc: string) =>
      core.createNamespacedConfigMap({
        namespace: early,
        body: {
          metadata: {
            name: cmName,
            labels: { [LABELS.config]: CONFIG_LABEL_VALUE },
            ownerReferences: [
              { apiVersion: 'tally.dev/v1alpha1', kind: 'CounterNamespace', name, uid, controller: true },
            ],
          },
          data: { [CONFIG_KEY]: doc },
        },
      });
    // (An owner reference with a uid no CounterNamespace has is refused too, but the garbage collector deletes such a
    // ConfigMap within moments, so it is checked in the unit tests.)
    // The real owner's uid, on a ConfigMap of its own naming a new namespace over another tenant's keyspace.
    await forge(
      `tally-steal-${run}`,
      owner.metadata.uid,
      manifests([
        { name: `steal-${run}`, counterType: 'Eventual', spec: { cassandra: { keyspace: 'tally_payroll' } } },
      ]),
    );
    // The operator's own ConfigMap edited to point at that keyspace (before the operator would put it back).
    await core.patchNamespacedConfigMap(
      {
        namespace: early,
        name: `tally-${name}`,
        body: {
          data: {
            [CONFIG_KEY]: manifests([
              { name, counterType: 'Eventual', spec: { cassandra: { keyspace: 'tally_payroll' } } },
            ]),
          },
        },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );

    const watcher = new ConfigMapNamespaceSource(kc, [early], pino({ level: 'silent' }));
    let snapshot: NamespaceSnapshot | undefined;
    try {
      await watcher.start((s) => (snapshot = s));
    } finally {
      await watcher.stop();
    }
    expect(snapshot!.namespaces).toEqual([]);
    expect(snapshot!.errors).toEqual(
      expect.arrayContaining([
        `ConfigMap ${early}/tally-steal-${run}: CounterNamespace ${early}/${name} keeps its configuration in ConfigMap tally-${name}, not this one: not served`,
        `ConfigMap ${early}/tally-${name}: names keyspace tally_payroll, but the operator provisioned tally_${name.replace(/-/g, '_')} for CounterNamespace ${early}/${name}: not served`,
      ]),
    );
  });
});
