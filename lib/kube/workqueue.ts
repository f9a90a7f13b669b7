import type { Logger } from 'pino';

/**
 * What a handler tells the queue once it has processed a key (the shape matches operator/reconcile/step.ts's
 * terminal results, so a reconcile result can be returned as it is):
 * - done: the key is settled; its backoff is forgotten.
 * - requeue: process it again after `afterMs` (polling); its backoff is forgotten.
 * - error: process it again after the key's next exponential backoff delay.
 */
export type QueueResult =
  { kind: 'done' } | { kind: 'requeue'; afterMs: number; why?: string } | { kind: 'error'; error: unknown };

export type QueueHandler = (key: string) => Promise<QueueResult>;

/** Per-key delays for failed keys. */
export interface RateLimiter {
  /** The delay before the key's next attempt; each call counts one more failure. */
  when(key: string): number;
  /** Clears the key's failure count. */
  forget(key: string): void;
  /** How many failures the key has had since it was last forgotten. */
  retries(key: string): number;
}

/** controller-runtime's per-item limiter: base · 2^failures, capped (5 ms doubling to 1000 s by default). */
export class ExponentialBackoff implements RateLimiter {
  private readonly failures = new Map<string, number>();

  constructor(
    readonly baseMs = 5,
    readonly maxMs = 1_000_000,
  ) {}

  when(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    return Math.min(this.baseMs * 2 ** n, this.maxMs);
  }

  forget(key: string): void {
    this.failures.delete(key);
  }

  retries(key: string): number {
    return this.failures.get(key) ?? 0;
  }
}

/** What the queue reports after each handler call (for metrics: reconcile totals, errors, durations). */
export interface ProcessedInfo {
  key: string;
  result: QueueResult;
  durationMs: number;
}

/**
 * client-go's workqueue metrics, as callbacks (lib/ knows no metric names): what a MetricsProvider is told.
 * `added` counts keys entering the queue (not an add of a key already waiting), `retried` a rate-limited add after a
 * failure, `queued` how long a key waited from its add until a worker took it, `worked` how long the handler took,
 * `depth` the keys waiting, after every change.
 */
export interface WorkQueueMetrics {
  added(): void;
  retried(): void;
  queued(seconds: number): void;
  worked(seconds: number): void;
  depth(keys: number): void;
}

export interface WorkQueueOptions {
  /** Workers: how many keys are processed at once (never the same key twice). Default 1. */
  concurrency?: number;
  rateLimiter?: RateLimiter;
  logger?: Logger;
  /** Called after every handler call, with the result (a thrown error is reported as an error result). */
  onProcessed?: (info: ProcessedInfo) => void;
  metrics?: WorkQueueMetrics;
}

/**
 * A keyed, de-duplicating work queue with controller-runtime's guarantees:
 * - a key waiting in the queue is held once however often it is added;
 * - a key is never processed by two workers at once: added while it is being processed, it is marked dirty and
 *   queued again when the current run finishes;
 * - at most `concurrency` keys are processed at a time, in FIFO order;
 * - failed keys come back after a per-key exponential backoff, reset when the key succeeds (or `forget` is called).
 */
export class WorkQueue {
  private readonly queue: string[] = [];
  /** Keys that need processing: queued ones, and processing ones added again meanwhile. */
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  /** When each dirty key was added (performance.now()), for the time it waits in the queue. */
  private readonly addedAt = new Map<string, number>();
  /** Delayed adds: one timer per key, the earliest wins. */
  private readonly waiting = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly concurrency: number;
  private readonly limiter: RateLimiter;
  private handler: QueueHandler | undefined;
  private active = 0;
  private pumpScheduled = false;
  private stopping = false;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly options: WorkQueueOptions = {}) {
    this.concurrency = Math.max(1, Math.floor(options.concurrency ?? 1));
    this.limiter = options.rateLimiter ?? new ExponentialBackoff();
  }

  /** Keys ready to be processed (not counting those being processed or waiting for a delay). */
  get depth(): number {
    return this.queue.length;
  }

  /** Keys being processed right now. */
  get inFlight(): number {
    return this.active;
  }

  get shuttingDown(): boolean {
    return this.stopping;
  }

  add(key: string): void {
    if (this.stopping || this.dirty.has(key)) return;
    this.dirty.add(key);
    this.addedAt.set(key, performance.now());
    this.options.metrics?.added();
    if (this.processing.has(key)) return; // queued again when the current run finishes
    this.queue.push(key);
    this.options.metrics?.depth(this.queue.length);
    this.schedulePump();
  }

  /** Adds the key once `ms` have passed; a key already waiting keeps the earlier of the two times. */
  addAfter(key: string, ms: number): void {
    if (this.stopping) return;
    if (ms <= 0) {
      this.add(key);
      return;
    }
    const at = Date.now() + ms;
    const existing = this.waiting.get(key);
    if (existing) {
      if (existing.at <= at) return;
      clearTimeout(existing.timer);
    }
    const timer = setTimeout(() => {
      this.waiting.delete(key);
      this.add(key);
    }, ms);
    timer.unref();
    this.waiting.set(key, { at, timer });
  }

  /** Adds the key after its next backoff delay. */
  addRateLimited(key: string): void {
    this.options.metrics?.retried();
    this.addAfter(key, this.limiter.when(key));
  }

  /** Resets the key's backoff. */
  forget(key: string): void {
    this.limiter.forget(key);
  }

  /** Failures counted for the key since it last succeeded. */
  numRequeues(key: string): number {
    return this.limiter.retries(key);
  }

  /** Starts the workers; the handler's result decides what happens to each key. */
  start(handler: QueueHandler): void {
    if (this.handler) throw new Error('work queue already started');
    if (this.stopping) throw new Error('work queue is shut down');
    this.handler = handler;
    this.schedulePump();
  }

  /**
   * Stops handing out keys, drops delayed adds and queued keys, and resolves once the keys being processed are done.
   */
  shutDown(): Promise<void> {
    this.stopping = true;
    for (const { timer } of this.waiting.values()) clearTimeout(timer);
    this.waiting.clear();
    this.queue.length = 0;
    this.dirty.clear();
    this.addedAt.clear();
    this.options.metrics?.depth(0);
    if (this.active === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private schedulePump(): void {
    if (this.pumpScheduled || !this.handler) return;
    this.pumpScheduled = true;
    // Batches synchronous adds (so duplicates meet in the queue) and keeps handler code out of the caller's stack.
    // A promise job rather than queueMicrotask, which fake timers replace.
    void Promise.resolve().then(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    while (!this.stopping && this.handler && this.active < this.concurrency && this.queue.length > 0) {
      const key = this.queue.shift()!;
      this.dirty.delete(key);
      const added = this.addedAt.get(key);
      this.addedAt.delete(key);
      if (added !== undefined) this.options.metrics?.queued((performance.now() - added) / 1000);
      this.options.metrics?.depth(this.queue.length);
      this.processing.add(key);
      this.active++;
      void this.process(key, this.handler);
    }
  }

  private async process(key: string, handler: QueueHandler): Promise<void> {
    const started = performance.now();
    let result: QueueResult;
    try {
      result = await handler(key);
    } catch (error) {
      result = { kind: 'error', error };
    }
    const durationMs = performance.now() - started;
    this.options.metrics?.worked(durationMs / 1000);
    try {
      this.options.onProcessed?.({ key, result, durationMs });
    } catch (err) {
      this.options.logger?.warn({ err, key }, 'work queue observer failed');
    }
    switch (result.kind) {
      case 'done':
        this.forget(key);
        break;
      case 'requeue':
        this.forget(key);
        this.addAfter(key, result.afterMs);
        break;
      case 'error':
        this.options.logger?.debug(
          { key, err: result.error, retries: this.limiter.retries(key) },
          'processing failed, requeued with backoff',
        );
        this.addRateLimited(key);
        break;
    }
    this.processing.delete(key);
    this.active--;
    if (this.dirty.has(key) && !this.stopping) {
      this.queue.push(key);
      this.options.metrics?.depth(this.queue.length);
    }
    if (this.stopping && this.active === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
    this.pump();
  }
}
