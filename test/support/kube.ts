import { CoreV1Api, CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { installCounterNamespaceCrd } from '../../operator/crd-install';
import { requireEnv } from './env';

export function kubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(requireEnv('KUBECONFIG'));
  return kc;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
    if ((err as { code?: number }).code === 404) return;
    throw err;
  }
  if (!wait) return;
  const end = Date.now() + 60_000;
  while (Date.now() < end) {
    try {
      await core.readNamespace({ name });
    } catch (err) {
      if ((err as { code?: number }).code === 404) return;
    }
    await sleep(250);
  }
  throw new Error(`namespace ${name} was still there 60 s after its deletion`);
}

/** Removes every finalizer from the CounterNamespaces in a namespace (a missing CRD or namespace is nothing to do). */
export async function releaseCounterNamespaces(kc: KubeConfig, namespace: string): Promise<void> {
  const custom = customObjects(kc);
  const group = { group: 'tally.dev', version: 'v1alpha1', plural: 'counternamespaces', namespace };
  let items: { metadata: { name: string; finalizers?: string[] } }[];
  try {
    items = ((await custom.listNamespacedCustomObject(group)) as { items: typeof items }).items;
  } catch (err) {
    if ((err as { code?: number }).code === 404) return;
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

/** Polls until fn returns a value; fails naming what was awaited and what was seen last. */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 60_000,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    await sleep(200);
  }
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message.split('\n')[0]})` : ''}`,
  );
}
