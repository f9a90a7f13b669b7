import {
  CoreV1Api,
  CustomObjectsApi,
  KubernetesObjectApi,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
  type KubernetesObject,
} from '@kubernetes/client-node';
import type { CounterNamespace, CounterNamespaceStatus } from '../api/types';
import { CRD_GROUP, CRD_PLURAL, CRD_VERSION, FIELD_MANAGER } from '../api/names';
import { httpStatus, makeBoundedApiClient } from '../lib/kube/request';

/** The longest any of the reconciler's Kubernetes calls may take before it fails (and the reconcile is retried). */
export const KUBE_CALL_TIMEOUT_MS = 30_000;

/**
 * The few Kubernetes calls the reconciler makes, in one place: the seam between the reconcile steps and the API
 * server (unit tests pass a fake).
 */
export interface KubeApi {
  /** The object as the API server has it now, or undefined when there is none. */
  getCounterNamespace(namespace: string, name: string): Promise<CounterNamespace | undefined>;
  /** Replaces the finalizer list, failing with 409 if the object changed since it was read. */
  setFinalizers(cns: CounterNamespace, finalizers: string[]): Promise<CounterNamespace>;
  /** Writes status through the /status subresource. */
  patchStatus(cns: CounterNamespace, status: CounterNamespaceStatus): Promise<void>;
  /** Server-side apply with the operator's field manager. */
  apply<T extends KubernetesObject>(obj: T): Promise<T>;
  recordEvent(cns: CounterNamespace, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void>;
}

/** KubeApi on @kubernetes/client-node, every call bounded by a timeout. */
export class KubeClient implements KubeApi {
  private readonly custom: CustomObjectsApi;
  private readonly core: CoreV1Api;
  private readonly objects: KubernetesObjectApi;

  constructor(
    readonly kc: KubeConfig,
    timeoutMs = KUBE_CALL_TIMEOUT_MS,
  ) {
    this.custom = makeBoundedApiClient(kc, CustomObjectsApi, timeoutMs);
    this.core = makeBoundedApiClient(kc, CoreV1Api, timeoutMs);
    this.objects = makeBoundedApiClient(kc, KubernetesObjectApi, timeoutMs);
  }

  async getCounterNamespace(namespace: string, name: string): Promise<CounterNamespace | undefined> {
    try {
      return (await this.custom.getNamespacedCustomObject({
        group: CRD_GROUP,
        version: CRD_VERSION,
        namespace,
        plural: CRD_PLURAL,
        name,
      })) as CounterNamespace;
    } catch (err) {
      if (httpStatus(err) === 404) return undefined;
      throw err;
    }
  }

  async setFinalizers(cns: CounterNamespace, finalizers: string[]): Promise<CounterNamespace> {
    return (await this.custom.patchNamespacedCustomObject(
      {
        group: CRD_GROUP,
        version: CRD_VERSION,
        namespace: cns.metadata.namespace!,
        plural: CRD_PLURAL,
        name: cns.metadata.name!,
        body: { metadata: { finalizers, resourceVersion: cns.metadata.resourceVersion } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    )) as CounterNamespace;
  }

  async patchStatus(cns: CounterNamespace, status: CounterNamespaceStatus): Promise<void> {
    await this.custom.patchNamespacedCustomObjectStatus(
      {
        group: CRD_GROUP,
        version: CRD_VERSION,
        namespace: cns.metadata.namespace!,
        plural: CRD_PLURAL,
        name: cns.metadata.name!,
        body: { status },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  }

  /** Server-side apply with the operator's field manager; force, since these objects are ours alone. */
  async apply<T extends KubernetesObject>(obj: T): Promise<T> {
    return this.objects.patch(obj, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply);
  }

  async recordEvent(cns: CounterNamespace, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    const now = new Date();
    await this.core.createNamespacedEvent({
      namespace: cns.metadata.namespace!,
      body: {
        metadata: { generateName: `${cns.metadata.name}.`, namespace: cns.metadata.namespace! },
        involvedObject: {
          apiVersion: cns.apiVersion,
          kind: cns.kind,
          name: cns.metadata.name!,
          namespace: cns.metadata.namespace!,
          uid: cns.metadata.uid!,
          resourceVersion: cns.metadata.resourceVersion!,
        },
        type,
        reason,
        message: message.slice(0, 1024),
        source: { component: FIELD_MANAGER },
        reportingComponent: FIELD_MANAGER,
        reportingInstance: FIELD_MANAGER,
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
      },
    });
  }
}
