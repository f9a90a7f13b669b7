import { CoreV1Api, CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { CRD_GROUP, CRD_PLURAL, CRD_VERSION } from '../../api/names';
import { installCounterNamespaceCrd } from '../../operator/crd-install';
import { httpStatus } from '../../lib/kube/request';
import { waitFor } from '../stack/wait';
import { requireEnv } from './env';

export function kubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(requireEnv('KUBECONFIG'));
  return kc;
}

/** Applies the generated CRD (server-side) and waits until the API server serves it. */
export async function installCrd(kc: KubeConfig): Promise<void> {
  await installCounterNamespaceCrd(kc, 'tally-test');
}

/** A kubeconfig that acts as a service account, through a short-lived token the API server issues for it. */
export async function kubeConfigAs(kc: KubeConfig, namespace: string, serviceAccount: string): Promise<KubeConfig> {
  const token = (
    await kc.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({
      name: serviceAccount,
      namespace,
      body: { spec: { audiences: [], expirationSeconds: 600 } },
    })
  ).status!.token;
  const as = new KubeConfig();
  as.loadFromClusterAndUser(kc.getCurrentCluster()!, { name: serviceAccount, token });
  return as;
}

export async function createNamespace(kc: KubeConfig, name: string): Promise<void> {
  await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name } } });
}

/**
 * Deletes a namespace and waits until it is gone (the namespace controller empties it first). CounterNamespaces in it
 * lose their finalizers first: cleanup runs after the operator under test has stopped, and a finalizer nothing will
 * ever remove would leave the namespace Terminating for good (and the namespace controller retrying it, at a cost
 * to the API server every later test and benchmark pays).
 */
export async function deleteNamespace(kc: KubeConfig, name: string, wait = true): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  await releaseCounterNamespaces(kc, name);
  try {
    await core.deleteNamespace({ name });
  } catch (err) {
    if (httpStatus(err) === 404) return;
    throw err;
  }
  if (!wait) return;
  await waitFor(
    `namespace ${name} to be gone after its deletion`,
    async () => {
      try {
        await core.readNamespace({ name });
        return false;
      } catch (err) {
        if (httpStatus(err) === 404) return true;
        throw err;
      }
    },
    { timeoutMs: 60_000, intervalMs: 250 },
  );
}

/** Removes every finalizer from the CounterNamespaces in a namespace (a missing CRD or namespace is nothing to do). */
export async function releaseCounterNamespaces(kc: KubeConfig, namespace: string): Promise<void> {
  const custom = customObjects(kc);
  const group = { group: CRD_GROUP, version: CRD_VERSION, plural: CRD_PLURAL, namespace };
  let items: { metadata: { name: string; finalizers?: string[] } }[];
  try {
    items = ((await custom.listNamespacedCustomObject(group)) as { items: typeof items }).items;
  } catch (err) {
    if (httpStatus(err) === 404) return;
    throw err;
  }
  for (const item of items.filter((i) => (i.metadata.finalizers ?? []).length > 0)) {
    await custom.patchNamespacedCustomObject(
      { ...group, name: item.metadata.name, body: { metadata: { finalizers: null } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  }
}

export function customObjects(kc: KubeConfig): CustomObjectsApi {
  return kc.makeApiClient(CustomObjectsApi);
}
