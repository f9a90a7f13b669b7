import { ApiextensionsV1Api, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import { counterNamespaceCrd } from '../api/crd';
import { CRD_NAME } from '../api/names';

/**
 * Server-side applies the CounterNamespace CRD and waits until it is Established. It goes through
 * ApiextensionsV1Api with a raw body on purpose: client-node's typed serializer (KubernetesObjectApi.patch) drops
 * `default`, `enum` and every `x-kubernetes-*` key, and would install a CRD without defaults or validation.
 */
export async function installCounterNamespaceCrd(
  kc: KubeConfig,
  fieldManager: string,
  timeoutMs = 30_000,
): Promise<void> {
  const ext = kc.makeApiClient(ApiextensionsV1Api);
  await ext.patchCustomResourceDefinition(
    { name: CRD_NAME, body: counterNamespaceCrd(), fieldManager, force: true },
    setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply),
  );
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const crd = await ext.readCustomResourceDefinition({ name: CRD_NAME });
    if (crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`CRD ${CRD_NAME} was not Established within ${timeoutMs / 1000} s`);
}
