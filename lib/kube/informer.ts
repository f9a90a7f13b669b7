import type { ConfigurationOptions, KubernetesListObject, KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { bounded, errorMessage, httpStatus } from './request';

/** What the informer passes its list function: selectors, and call options that bound the request (a timeout). */
export interface ListRequest {
  labelSelector?: string;
  fieldSelector?: string;
  /** Pass as the client-node call's second argument. */
  options: ConfigurationOptions;
}

export type ListFunction<T extends KubernetesObject> = (request: ListRequest) => Promise<KubernetesListObject<T>>;

/** The shape of client-node's Watch (pass `new Watch(kubeConfig)`); tests pass fakes. */
export interface WatchLike {
  watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController>;
}

export interface InformerHandlers<T> {
  add: (obj: T) => void;
  update: (obj: T, old: T) => void;
  /** The last state the informer knew (a deletion missed during an outage is found by the relist). */
  delete: (obj: T) => void;
  /** Informational: the informer retries by itself. */
  error: (err: unknown) => void;
}

export interface InformerOptions<T extends KubernetesObject> {
  /**
   * The collection's URL path, the same for list and watch: `/api/v1/configmaps` (all namespaces),
   * `/api/v1/namespaces/x/configmaps`, `/apis/tally.dev/v1alpha1/namespaces/x/counternamespaces`; see apiPath().
   */
  path: string;
  /** Lists the same collection (with the selectors given), e.g. `(r) => core.listNamespacedConfigMap({...}, r.options)`. */
  list: ListFunction<T>;
  watch: WatchLike;
  labelSelector?: string;
  fieldSelector?: string;
  /** For logs. Default: the path. */
  name?: string;
  logger?: Logger;
  /** Delay between failed attempts: doubles from initialMs to maxMs, with jitter. Default 800 ms to 30 s. */
  backoff?: { initialMs?: number; maxMs?: number };
  /** Server-side timeout of one watch request, randomised up to twice this (as client-go does). Default 300. */
  watchTimeoutSeconds?: number;
  /** A watch that delivers nothing (not even a bookmark) for this long is abandoned. Default: 2 × timeout + 30 s. */
  idleTimeoutMs?: number;
  /** Bound on one list request. Default 60 s. */
  listTimeoutMs?: number;
}

export interface InformerStats {
  /** Successful lists (the first one, then one per 410 Gone). */
  lists: number;
  /** Watch requests started. */
  watches: number;
  /** Failed lists and watches (each followed by a retry). */
  errors: number;
  lastError: string | undefined;
}

type WatchEnd = { kind: 'closed' } | { kind: 'gone' } | { kind: 'error'; error: unknown } | { kind: 'stopped' };

/** `/api/v1/configmaps`, `/apis/tally.dev/v1alpha1/namespaces/x/counternamespaces`: a collection's path. */
export function apiPath(resource: { group?: string; version: string; plural: string; namespace?: string }): string {
  const base = resource.group ? `/apis/${resource.group}/${resource.version}` : `/api/${resource.version}`;
  const scope = resource.namespace ? `/namespaces/${encodeURIComponent(resource.namespace)}` : '';
  return `${base}${scope}/${resource.plural}`;
}

/** client-go's MetaNamespaceKeyFunc: `namespace/name`, or `name` for cluster-scoped objects. */
export function objectKey(obj: KubernetesObject): string {
  const namespace = obj.metadata?.namespace;
  const name = obj.metadata?.name ?? '';
  return namespace ? `${namespace}/${name}` : name;
}

/** The inverse of objectKey. */
export function splitKey(key: string): { namespace: string | undefined; name: string } {
  const slash = key.indexOf('/');
  return slash < 0
    ? { namespace: undefined, name: key }
    : { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

/**
 * A list + watch cache of one resource type that keeps itself running:
 * - lists, then watches from the list's resourceVersion; every event updates the cache before handlers run;
 * - a watch that ends (server timeout, network error, a cut connection, an idle stream) is restarted from the last
 *   resourceVersion seen, after a backoff when it failed — client-node's own informer stops for good on any error
 *   other than 410, which is the bug this class exists to avoid;
 * - 410 Gone (the resourceVersion is too old) relists, and the relist reports as deletions the objects that
 *   vanished meanwhile, as additions/updates what appeared or changed;
 * - stop() ends it and aborts the open watch.
 */
export class Informer<T extends KubernetesObject> {
  private readonly cache = new Map<string, T>();
  private readonly handlers: { [E in keyof InformerHandlers<T>]: InformerHandlers<T>[E][] } = {
    add: [],
    update: [],
    delete: [],
    error: [],
  };
  private resourceVersion = '';
  private needsList = true;
  private synced = false;
  private syncWaiters: { resolve: () => void; reject: (err: Error) => void }[] = [];
  private running: Promise<void> | undefined;
  private stopped = false;
  private readonly stopController = new AbortController();
  private abortWatch: (() => void) | undefined;
  private readonly counters: InformerStats = { lists: 0, watches: 0, errors: 0, lastError: undefined };
  private readonly log: Logger | undefined;
  private readonly initialBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly watchTimeoutSeconds: number;
  private readonly idleTimeoutMs: number;
  /** A watch that stayed up this long was healthy: the backoff starts over. */
  private readonly healthyWatchMs: number;

  constructor(private readonly options: InformerOptions<T>) {
    this.log = options.logger?.child({ informer: options.name ?? options.path });
    this.initialBackoffMs = options.backoff?.initialMs ?? 800;
    this.maxBackoffMs = Math.max(this.initialBackoffMs, options.backoff?.maxMs ?? 30_000);
    this.watchTimeoutSeconds = Math.max(1, Math.floor(options.watchTimeoutSeconds ?? 300));
    this.idleTimeoutMs = options.idleTimeoutMs ?? 2 * this.watchTimeoutSeconds * 1000 + 30_000;
    this.healthyWatchMs = Math.max(10_000, this.maxBackoffMs);
  }

  /** Registers a handler; returns a function that removes it. */
  on<E extends keyof InformerHandlers<T>>(event: E, handler: InformerHandlers<T>[E]): () => void {
    const list = this.handlers[event];
    list.push(handler);
    return () => {
      const i = list.indexOf(handler);
      if (i >= 0) list.splice(i, 1);
    };
  }

  /** Starts listing and watching (once; a stopped informer cannot be restarted). */
  start(): void {
    if (this.stopped) throw new Error('informer stopped');
    this.running ??= this.run();
  }

  /** Stops watching; resolves once the informer has let go of its connection. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.stopController.abort();
    this.abortWatch?.();
    const waiters = this.syncWaiters;
    this.syncWaiters = [];
    for (const w of waiters) w.reject(new Error(`informer ${this.options.name ?? this.options.path} stopped`));
    await this.running;
  }

  /** True once the first list has filled the cache (and from then on). */
  get hasSynced(): boolean {
    return this.synced;
  }

  /** Resolves once the cache is filled; rejects after `timeoutMs` or when the informer stops. */
  waitForSync(timeoutMs = 60_000): Promise<void> {
    if (this.synced) return Promise.resolve();
    if (this.stopped) return Promise.reject(new Error('informer stopped'));
    return new Promise<void>((resolve, reject) => {
      const waiter = {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (err: Error) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      const timer = setTimeout(() => {
        this.syncWaiters = this.syncWaiters.filter((w) => w !== waiter);
        reject(new Error(`informer ${this.options.name ?? this.options.path} not synced after ${timeoutMs} ms`));
      }, timeoutMs);
      this.syncWaiters.push(waiter);
    });
  }

  /** Cached objects, all or those of one namespace. They are the cache's own: do not modify them. */
  list(namespace?: string): T[] {
    const all = [...this.cache.values()];
    return namespace === undefined ? all : all.filter((o) => o.metadata?.namespace === namespace);
  }

  /** A cached object; pass undefined (or '') as the namespace of a cluster-scoped one. */
  get(namespace: string | undefined, name: string): T | undefined {
    return this.cache.get(namespace ? `${namespace}/${name}` : name);
  }

  /** The resourceVersion the cache is at. */
  get lastSyncResourceVersion(): string {
    return this.resourceVersion;
  }

  get stats(): InformerStats {
    return { ...this.counters };
  }

  private async run(): Promise<void> {
    // Consecutive failures, for the backoff; reset only by a watch that stayed up for a while, so that a server that
    // accepts a list and then fails every watch at once (or answers every watch with 410) is not hammered.
    let failures = 0;
    while (!this.stopped) {
      if (this.needsList) {
        try {
          await this.relist();
          this.needsList = false;
        } catch (err) {
          if (this.stopped) break;
          this.failed('list', err);
          await this.sleep(this.backoff(failures++));
          continue;
        }
      }
      const started = performance.now();
      const end = await this.watchOnce();
      const lived = performance.now() - started;
      if (end.kind === 'stopped' || this.stopped) break;
      if (lived >= this.healthyWatchMs) failures = 0;
      if (end.kind === 'gone') {
        this.log?.info({ resourceVersion: this.resourceVersion }, 'resourceVersion too old (410 Gone): relisting');
        this.needsList = true;
        if (lived < 1000) await this.sleep(this.backoff(failures++));
        continue;
      }
      if (end.kind === 'closed') {
        this.log?.debug({ lived }, 'watch closed by the server: rewatching');
        if (lived >= 1000) continue; // the normal end of a watch (its timeout): resume at once
      } else {
        this.failed('watch', end.error);
      }
      await this.sleep(this.backoff(failures++));
    }
  }

  private async relist(): Promise<void> {
    const signal = this.stopController.signal;
    const list = await this.options.list({
      labelSelector: this.options.labelSelector,
      fieldSelector: this.options.fieldSelector,
      options: bounded({ timeoutMs: this.options.listTimeoutMs ?? 60_000, signal }),
    });
    if (this.stopped) return;
    this.counters.lists++;
    // Items of a list carry no kind/apiVersion (watch events do): fill them in so both look alike.
    const kind = list.kind?.endsWith('List') ? list.kind.slice(0, -4) : undefined;
    const fresh = new Map<string, T>();
    for (const item of list.items ?? []) {
      if (kind && !item.kind) item.kind = kind;
      if (list.apiVersion && !item.apiVersion) item.apiVersion = list.apiVersion;
      fresh.set(objectKey(item), item);
    }
    for (const [key, old] of [...this.cache]) {
      if (!fresh.has(key)) {
        this.cache.delete(key);
        this.emit('delete', old);
      }
    }
    for (const item of fresh.values()) this.upsert(item);
    this.resourceVersion = list.metadata?.resourceVersion ?? '';
    this.log?.debug({ items: fresh.size, resourceVersion: this.resourceVersion }, 'listed');
    if (!this.synced) {
      this.synced = true;
      const waiters = this.syncWaiters;
      this.syncWaiters = [];
      for (const w of waiters) w.resolve();
    }
  }

  private watchOnce(): Promise<WatchEnd> {
    return new Promise<WatchEnd>((resolve) => {
      let controller: AbortController | undefined;
      let finished = false;
      let idle: NodeJS.Timeout | undefined;
      const finish = (end: WatchEnd): void => {
        if (finished) return;
        finished = true;
        clearTimeout(idle);
        this.abortWatch = undefined;
        controller?.abort();
        resolve(end);
      };
      const armIdle = (): void => {
        clearTimeout(idle);
        idle = setTimeout(
          () => finish({ kind: 'error', error: new Error(`watch idle for ${this.idleTimeoutMs} ms`) }),
          this.idleTimeoutMs,
        );
      };
      this.abortWatch = () => finish({ kind: 'stopped' });
      armIdle();
      this.counters.watches++;
      const timeoutSeconds = this.watchTimeoutSeconds + Math.floor(Math.random() * this.watchTimeoutSeconds);
      this.options.watch
        .watch(
          this.options.path,
          {
            resourceVersion: this.resourceVersion || undefined,
            allowWatchBookmarks: true,
            timeoutSeconds,
            labelSelector: this.options.labelSelector,
            fieldSelector: this.options.fieldSelector,
          },
          (type, obj) => {
            if (finished) return;
            armIdle();
            const end = this.apply(type, obj);
            if (end) finish(end);
          },
          (err) => {
            if (!err) finish({ kind: 'closed' });
            else finish(httpStatus(err) === 410 ? { kind: 'gone' } : { kind: 'error', error: err });
          },
        )
        .then(
          (c) => {
            controller = c;
            if (finished) c.abort(); // stopped (or given up) while connecting
          },
          (error: unknown) => finish({ kind: 'error', error }),
        );
    });
  }

  /** Applies one watch event to the cache; returns how the watch ends when the event ends it. */
  private apply(type: string, raw: unknown): WatchEnd | undefined {
    if (type === 'ERROR') {
      const status = (raw ?? {}) as { code?: number; message?: string; reason?: string };
      if (status.code === 410) return { kind: 'gone' };
      return {
        kind: 'error',
        error: new Error(`watch error ${status.code ?? '?'}: ${status.message ?? status.reason}`),
      };
    }
    const obj = raw as T;
    const rv = obj?.metadata?.resourceVersion;
    switch (type) {
      case 'ADDED':
      case 'MODIFIED':
        this.upsert(obj);
        break;
      case 'DELETED': {
        const key = objectKey(obj);
        if (this.cache.delete(key)) this.emit('delete', obj);
        break;
      }
      case 'BOOKMARK':
        break;
      default:
        this.log?.warn({ type }, 'unknown watch event type');
        return undefined;
    }
    if (rv) this.resourceVersion = rv;
    return undefined;
  }

  private upsert(obj: T): void {
    const key = objectKey(obj);
    const old = this.cache.get(key);
    if (!old) {
      this.cache.set(key, obj);
      this.emit('add', obj);
    } else if (old.metadata?.resourceVersion !== obj.metadata?.resourceVersion) {
      this.cache.set(key, obj);
      this.emit('update', obj, old);
    }
  }

  private emit<E extends keyof InformerHandlers<T>>(event: E, ...args: Parameters<InformerHandlers<T>[E]>): void {
    for (const handler of [...this.handlers[event]]) {
      try {
        (handler as (...a: Parameters<InformerHandlers<T>[E]>) => void)(...args);
      } catch (err) {
        this.log?.error({ err, event }, 'informer handler failed');
      }
    }
  }

  private failed(what: 'list' | 'watch', err: unknown): void {
    this.counters.errors++;
    this.counters.lastError = `${what}: ${errorMessage(err)}`;
    this.log?.warn({ err: errorMessage(err), what }, `${what} failed: retrying`);
    this.emit('error', err);
  }

  private backoff(failures: number): number {
    const delay = Math.min(this.maxBackoffMs, this.initialBackoffMs * 2 ** failures);
    return delay / 2 + Math.random() * (delay / 2);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.stopped) return resolve();
      const onStop = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.stopController.signal.removeEventListener('abort', onStop);
        resolve();
      }, ms);
      this.stopController.signal.addEventListener('abort', onStop, { once: true });
    });
  }
}
