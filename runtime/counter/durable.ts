import type { RollupCache } from '../cache/rollup-cache';
import type { NamespaceConfig } from '../../api/namespace-config';
import type { RuntimeMetrics } from '../observability/metrics';
import { countAsOf } from '../rollup/count';
import { immutableBefore, rollupCounter } from '../rollup/rollup';
import { RollupQueues } from '../rollup/queues';
import { isUnavailable } from '../../store/client';
import type { CounterEvent, CounterStore } from '../storage/counter-store';
import { unavailable } from './errors';
import type { AddRequest, ClearRequest, CounterOps, CountReply } from './types';
import { WriteBoundsCache } from './write-bounds';
import type { Logger } from '../../lib/log';

export interface DurableDeps {
  store: CounterStore;
  cache: RollupCache | undefined;
  metrics: RuntimeMetrics;
  log: Logger;
  now?: () => number;
}

/**
 * What Eventual and Accurate counters share: every add or clear is an event in the time-bucketed log, written
 * idempotently, and every read or write triggers a rollup through the in-memory queues.
 */
export abstract class DurableCounters implements CounterOps {
  readonly config: NamespaceConfig;
  protected readonly store: CounterStore;
  protected readonly cache: RollupCache | undefined;
  protected readonly metrics: RuntimeMetrics;
  protected readonly log: Logger;
  protected readonly now: () => number;
  readonly queues: RollupQueues;
  private readonly bounds: WriteBoundsCache;

  constructor(deps: DurableDeps) {
    this.store = deps.store;
    this.config = deps.store.config;
    this.cache = deps.cache;
    this.metrics = deps.metrics;
    this.log = deps.log;
    this.now = deps.now ?? Date.now;
    this.bounds = new WriteBoundsCache(this.store);
    const ns = this.config.name;
    this.queues = new RollupQueues(
      {
        queues: this.config.rollup.queues,
        capacity: this.config.rollup.queueCapacity,
        batchSize: this.config.rollup.batchSize,
        concurrency: this.config.rollup.concurrency,
        coalesceMs: this.config.rollup.coalesceMs,
      },
      (counter) => this.rollup(counter).then(() => undefined),
      {
        onDrop: () => this.metrics.triggersDropped.inc({ namespace: ns }),
        onError: (counter, err) => {
          this.metrics.rollups.inc({ namespace: ns, result: 'error' });
          this.log.warn({ namespace: ns, counter, err: (err as Error).message }, 'rollup failed; retrying later');
        },
      },
      this.now,
    );
    this.queues.start();
  }

  /** Rolls the counter up now (used by the queues, the sweeper and first reads). */
  async rollup(counter: string) {
    const outcome = await rollupCounter(this.store, this.cache, counter, this.now());
    const ns = this.config.name;
    this.metrics.rollups.inc({ namespace: ns, result: outcome.result });
    this.metrics.rollupEvents.inc({ namespace: ns }, outcome.eventsRead);
    if (outcome.lagMs !== undefined) this.metrics.rollupLag.observe({ namespace: ns }, outcome.lagMs / 1000);
    if (outcome.cacheError) this.metrics.cache.inc({ namespace: ns, result: 'error' });
    return outcome;
  }

  /** Milliseconds after an event's time until its window is immutable and a rollup will include it. */
  protected settleDelayMs(): number {
    return this.config.eventStorage.acceptLimitSeconds * 1000 + this.config.rollup.settleMarginMs;
  }

  protected trigger(counter: string, notBeforeMs = this.now()): void {
    this.queues.trigger(counter, notBeforeMs);
  }

  /** Maps "Cassandra is down or slow" to 503; everything else propagates. */
  protected async cassandra<T>(doing: string, op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (err) {
      if (isUnavailable(err)) throw unavailable(`Cassandra is unavailable while ${doing}: ${(err as Error).message}`);
      throw err;
    }
  }

  /**
   * Writes an event: first the counter's bounds in its rollups row (when this process has not already covered the
   * event's time), then the event itself. Clears also record their exact time, which rollups use to find them.
   */
  private async append(event: CounterEvent): Promise<void> {
    await this.cassandra(`recording an event of ${event.counter}`, async () => {
      await this.bounds.cover(event.counter, event.eventTimeMs);
      if (event.kind === 'clear') await this.store.widenBounds(event.counter, { clearMs: event.eventTimeMs });
      // A rollup may pass an event's time once it is older than the accept limit plus the settle margin. An event
      // that waited here past the accept limit (an overloaded process) is refused rather than written late; with
      // the driver's request timeout below the settle margin, a write that starts in time lands in time.
      if (this.now() > event.eventTimeMs + this.config.eventStorage.acceptLimitSeconds * 1000) {
        throw unavailable(
          `the request for ${event.counter} waited past the namespace's accept limit before it could be written; retry with a new token`,
        );
      }
      await this.store.insertEvent(event);
    });
    this.trigger(event.counter, event.eventTimeMs + this.settleDelayMs());
  }

  async add(req: AddRequest): Promise<void> {
    await this.append({
      counter: req.counter,
      eventTimeMs: req.token.generationTimeMs,
      eventId: req.token.token,
      kind: 'add',
      delta: req.delta,
    });
  }

  /** Both durable types answer with the exact count right after the add (checkpoint + live deltas). */
  async addAndGet(req: AddRequest): Promise<CountReply> {
    await this.add(req);
    return this.liveCount(req.counter);
  }

  async clear(req: ClearRequest): Promise<CountReply> {
    await this.append({
      counter: req.counter,
      eventTimeMs: req.token.generationTimeMs,
      eventId: req.token.token,
      kind: 'clear',
      delta: 0,
    });
    return { count: 0, asOfMs: req.token.generationTimeMs };
  }

  /** Exact at read time: the checkpoint plus every event after it up to the newest accepted event time. */
  protected async liveCount(counter: string): Promise<CountReply> {
    const now = this.now();
    const asOf = now + this.config.eventStorage.maxFutureSkewSeconds * 1000;
    const result = await this.cassandra(`reading ${counter}`, async () =>
      countAsOf(this.store, await this.store.readRow(counter), asOf, now),
    );
    this.trigger(counter);
    return { count: result.count, asOfMs: Math.min(now, result.asOfMs) };
  }

  abstract get(counter: string): Promise<CountReply>;

  async close(): Promise<void> {
    await this.queues.stop();
  }

  /** The immutable horizon now; exposed for tests and the sweeper. */
  horizon(): number {
    return immutableBefore(this.store, this.now());
  }
}
