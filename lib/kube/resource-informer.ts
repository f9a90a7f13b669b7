import type { KubernetesListObject, KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import {
  Informer,
  apiPath,
  type InformerHandlers,
  type InformerOptions,
  type ListRequest,
  type WatchLike,
} from './informer';

export interface ResourceInformerOptions<T extends KubernetesObject> {
  /** The collection: group (none for the core API), version and plural, e.g. `{ version: 'v1', plural: 'configmaps' }`. */
  resource: { group?: string; version: string; plural: string };
  /** The namespaces to watch, one informer each; empty: one informer for all namespaces. */
  namespaces: readonly string[];
  /**
   * Lists the collection in `namespace` (undefined: in all namespaces), passing the request's selectors and
   * `request.options` (which bound the call), e.g.
   * `(ns, r) => ns ? core.listNamespacedConfigMap({ namespace: ns, labelSelector: r.labelSelector }, r.options) : …`.
   */
  list: (namespace: string | undefined, request: ListRequest) => Promise<KubernetesListObject<T>>;
  /** client-node's `new Watch(kubeConfig)`; tests pass fakes. */
  watch: WatchLike;
  labelSelector?: string;
  /** For logs: "owned ConfigMaps" (" in <namespace>" is added per informer). */
  name: string;
  logger?: Logger;
  /** Passed on to each Informer. */
  tuning?: Pick<InformerOptions<T>, 'backoff' | 'watchTimeoutSeconds' | 'idleTimeoutMs' | 'listTimeoutMs'>;
}

/**
 * The one way to watch a resource: a list + watch cache (an Informer) per watched namespace, or one for all of them,
 * used as one. Handlers registered with on() get the events of every namespace; get() and list() read every cache.
 */
export class ResourceInformer<T extends KubernetesObject> {
  readonly informers: readonly Informer<T>[];

  constructor(options: ResourceInformerOptions<T>) {
    const scopes = options.namespaces.length > 0 ? options.namespaces : [undefined];
    this.informers = scopes.map(
      (namespace) =>
        new Informer<T>({
          ...options.tuning,
          path: apiPath({ ...options.resource, ...(namespace ? { namespace } : {}) }),
          list: (request) => options.list(namespace, request),
          watch: options.watch,
          ...(options.labelSelector ? { labelSelector: options.labelSelector } : {}),
          name: namespace ? `${options.name} in ${namespace}` : options.name,
          ...(options.logger ? { logger: options.logger } : {}),
        }),
    );
  }

  /** Registers a handler on every namespace's informer. */
  on<E extends keyof InformerHandlers<T>>(event: E, handler: InformerHandlers<T>[E]): void {
    for (const informer of this.informers) informer.on(event, handler);
  }

  start(): void {
    for (const informer of this.informers) informer.start();
  }

  /** Resolves once every cache is filled; rejects after `timeoutMs` or when stopped. */
  async waitForSync(timeoutMs?: number): Promise<void> {
    await Promise.all(this.informers.map((i) => i.waitForSync(timeoutMs)));
  }

  /** Every cached object. They are the caches' own: do not modify them. */
  list(): T[] {
    return this.informers.flatMap((i) => i.list());
  }

  get(namespace: string | undefined, name: string): T | undefined {
    for (const informer of this.informers) {
      const found = informer.get(namespace, name);
      if (found) return found;
    }
    return undefined;
  }

  async stop(): Promise<void> {
    await Promise.all(this.informers.map((i) => i.stop()));
  }
}
