import { CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { installCounterNamespaceCrd } from '../../operator/kube/crd-install';
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

export async function createNamespace(kc: KubeConfig, name: string): Promise<void> {
  await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name } } });
}

/** Deletes a namespace and waits until it is gone (the namespace controller empties it first). */
export async function deleteNamespace(kc: KubeConfig, name: string, wait = true): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
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
