import type { RollupCache } from '../cache/rollup-cache';
import type { NamespaceConfig } from '../../api/namespace-config';
import type { RuntimeMetrics } from '../observability/metrics';
import type { RecentErrors } from '../observability/recent-errors';
import { countAsOf } from '../rollup/count';
import { clockOffsetBoundMs, rollupCounter, settleDelayMs } from '../rollup/rollup';
import type { ClockTrust } from '../clock/clock-guard';
import { RollupQueues } from '../rollup/queues';
import { isMissingSchema, isUnavailable } from '../../store/client';
import type { CounterEvent, CounterStore } from '../storage/counter-store';
import { ClockUntrustedError, EventTimeRefusedError, UnavailableError } from '../errors';
import { EventWriter } from './event-writer';
import type { AddRequest, ClearRequest, CounterOps, CountReply } from './types';
import { messageOf } from '../../lib/errors';
import type { Logger } from '../../lib/log';

export interface DurableDeps {
  store: CounterStore;
  cache: RollupCache | undefined;
  metrics: RuntimeMetrics;
  log: Logger;
  /** Asked before an event is accepted and before a checkpoint is written. */
  clock: ClockTrust;
  /** The Cassandra request timeout, which the settle margin must cover (see clockOffsetBoundMs). */
  requestTimeoutMs: number;
  /** Where failed rollups are kept for /status. */
  recentErrors?: RecentErrors;
  now?: () => number;
}

const iso = (ms: number): string => new Date(ms).toISOString();

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
  private readonly clock: ClockTrust;
  private readonly clockBoundMs: number;
  readonly queues: RollupQueues;
  private readonly writer: EventWriter;

  constructor(deps: DurableDeps) {
    this.store = deps.store;
    this.config = deps.store.config;
    this.cache = deps.cache;
    this.metrics = deps.metrics;
    this.log = deps.log;
    this.now = deps.now ?? Date.now;
    this.clock = deps.clock;
    this.clockBoundMs = clockOffsetBoundMs(this.config, deps.requestTimeoutMs);
    this.writer = new EventWriter(this.store);
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
          // The clock guard logs its holds itself (rate-limited); each counter would repeat it every second.
          if (err instanceof ClockUntrustedError)
            return void this.metrics.rollups.inc({ namespace: ns, result: 'held' });
          this.metrics.rollups.inc({ namespace: ns, result: 'error' });
          this.log.warn({ namespace: ns, counter, err: messageOf(err) }, 'rollup failed; retrying later');
          deps.recentErrors?.record({ namespace: ns, code: 'ROLLUP_FAILED', message: `${counter}: ${messageOf(err)}` });
        },
      },
      this.now,
    );
    this.queues.start();
    // Exported at 0 from the start: a rate over them (and the alert on it) is 0, not missing, until the first one.
    this.metrics.triggersDropped.inc({ namespace: ns }, 0);
    this.metrics.rollups.inc({ namespace: ns, result: 'error' }, 0);
  }

  /** Rolls the counter up now and records the outcome in the metrics (the queues, and Eventual's first read). */
  async rollup(counter: string) {
    this.clock.assertWithin(this.clockBoundMs, this.config.name, 'writing checkpoints');
    const outcome = await rollupCounter(this.store, this.cache, counter, this.now());
    const ns = this.config.name;
    this.metrics.rollups.inc({ namespace: ns, result: outcome.result });
    this.metrics.rollupEvents.inc({ namespace: ns }, outcome.eventsRead);
    if (outcome.lagMs !== undefined) this.metrics.rollupLag.observe({ namespace: ns }, outcome.lagMs / 1000);
    if (outcome.cacheError) this.metrics.cache.inc({ namespace: ns, result: 'error' });
    return outcome;
  }

  protected trigger(counter: string, notBeforeMs = this.now()): void {
    this.queues.trigger(counter, notBeforeMs);
  }

  /** Maps "Cassandra is down or slow" and "the tables are gone" to UnavailableError; everything else propagates. */
  protected async cassandra<T>(doing: string, op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (err) {
      if (isUnavailable(err))
        throw new UnavailableError(`Cassandra is unavailable while ${doing}: ${messageOf(err)}`, { cause: err });
      if (isMissingSchema(err)) {
        throw new UnavailableError(
          `the tables of namespace ${this.config.name} are missing (${messageOf(err)}) while ${doing}; ` +
            'its operator creates them again',
          { retryAfterSeconds: 30, cause: err },
        );
      }
      throw err;
    }
  }

  /**
   * The accept window, checked when the request comes in and again right before its event is inserted. A rollup may
   * pass an event's time once it is older than the accept limit plus the settle margin, so an event older than the
   * accept limit is refused: at the request, as a bad token time; at the insert (the request waited that long in an
   * overloaded process), as unavailable, rather than written late. With the driver's request timeout below the
   * settle margin, an insert that starts in time lands in time.
   */
  private checkAccepted(event: CounterEvent, at: 'request' | 'insert'): void {
    const now = this.now();
    const { acceptLimitSeconds, maxFutureSkewSeconds } = this.config.eventStorage;
    const earliest = now - acceptLimitSeconds * 1000;
    const latest = now + maxFutureSkewSeconds * 1000;
    const t = event.eventTimeMs;
    if (t >= earliest && t <= latest) return;
    if (at === 'insert') {
      throw new UnavailableError(
        `the request for ${event.counter} waited past the namespace's accept limit before it could be written; retry with a new token`,
      );
    }
    throw new EventTimeRefusedError(
      `idempotency_token.generation_time ${iso(t)} is outside the accepted window [${iso(earliest)}, ${iso(latest)}] ` +
        `(namespace ${this.config.name} accepts events up to ${acceptLimitSeconds} s old and ${maxFutureSkewSeconds} s ahead)`,
    );
  }

  private async append(event: CounterEvent): Promise<void> {
    this.clock.assertWithin(this.clockBoundMs, this.config.name, 'accepting events');
    this.checkAccepted(event, 'request');
    await this.cassandra(`recording an event of ${event.counter}`, () =>
      this.writer.append(event, () => this.checkAccepted(event, 'insert')),
    );
    this.trigger(event.counter, event.eventTimeMs + settleDelayMs(this.config));
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

  /** Stops the rollup queues after running the rollups that are due (see RollupQueues.stop). */
  async close(): Promise<void> {
    const started = Date.now();
    const { flushed, failed, dropped } = await this.queues.stop();
    if (flushed > 0 || dropped > 0) {
      this.log.info(
        { flushed, failed, dropped, ms: Date.now() - started },
        'rollup queues stopped: due rollups run, the rest left to the next read, write or sweep',
      );
    }
  }
}
