import type { CustomObjectsApi, KubernetesListObject, KubernetesObject } from '@kubernetes/client-node';
import type { ListRequest } from './informer';

/**
 * The `list` of a ResourceInformer over a custom resource: CustomObjectsApi answers untyped JSON, which is the
 * collection's list object.
 */
export function customObjectLister<T extends KubernetesObject>(
  custom: CustomObjectsApi,
  resource: { group: string; version: string; plural: string },
): (namespace: string | undefined, request: ListRequest) => Promise<KubernetesListObject<T>> {
  return async (namespace, r) =>
    (namespace
      ? await custom.listNamespacedCustomObject({ ...resource, namespace, labelSelector: r.labelSelector }, r.options)
      : await custom.listClusterCustomObject({ ...resource, labelSelector: r.labelSelector }, r.options)) as never;
}
