import { Semaphore } from '../../lib/concurrency';
import { CounterError } from '../errors';
import { fnv1a } from '../storage/buckets';
import { DueHeap } from './heap';

export interface RollupQueueOptions {
  queues: number;
  /** Pending triggers kept across all queues; beyond it triggers are dropped (and counted). */
  capacity: number;
  batchSize: number;
  /** Rollups running at once across all queues. */
  concurrency: number;
  /** A counter is rolled up at most once per this window. */
  coalesceMs: number;
}

export interface RollupQueueEvents {
  onDrop?(counter: string): void;
  onError?(counter: string, err: unknown): void;
}

/** How long a queue with nothing due sleeps at most before looking again. */
const IDLE_POLL_MS = 200;
/** A failed rollup is tried again after this long (the next read or write would trigger it anyway). */
const RETRY_AFTER_MS = 1000;

/**
 * In-memory rollup triggers, as in the design: a counter goes to one of N queues by a hash of its name; a counter
 * already waiting is not queued twice, and one rolled up recently waits out the coalesce window; each queue drains
 * due counters in batches, with a shared bound on rollups in flight (back-pressure: a queue takes its next batch only
 * when the last one finished). Not durable by design: a lost trigger only delays a rollup until the next read,
 * write or sweep.
 */
export class RollupQueues {
  private readonly heaps: DueHeap[];
  private readonly pending = new Map<string, number>();
  /** Counters whose queued rollup runs too early for a later write: the latest notBefore asked for meanwhile. */
  private readonly followUps = new Map<string, number>();
  /** Insertion-ordered by completion time, so stale entries are pruned from the front. */
  private readonly lastRolled = new Map<string, number>();
  /** Rollups in flight across all queues. */
  private readonly slots: Semaphore;
  private readonly wakers: ((() => void) | undefined)[];
  private running = false;
  private loops: Promise<void>[] = [];
  dropped = 0;

  constructor(
    private readonly opts: RollupQueueOptions,
    private readonly rollup: (counter: string) => Promise<void>,
    private readonly events: RollupQueueEvents = {},
    private readonly now: () => number = Date.now,
  ) {
    this.heaps = Array.from({ length: opts.queues }, () => new DueHeap());
    this.wakers = new Array<(() => void) | undefined>(opts.queues).fill(undefined);
    this.slots = new Semaphore(opts.concurrency);
  }

  get depth(): number {
    return this.pending.size;
  }

  private queueOf(counter: string): number {
    return fnv1a(counter) % this.opts.queues;
  }

  /** Asks for a rollup of counter no earlier than notBeforeMs. Returns false when the trigger was dropped. */
  trigger(counter: string, notBeforeMs: number = this.now()): boolean {
    const due = this.pending.get(counter);
    if (due !== undefined) {
      // Already queued, but a rollup at `due` would stop short of this write's events: ask for one more after it.
      if (notBeforeMs > due) this.followUps.set(counter, Math.max(notBeforeMs, this.followUps.get(counter) ?? 0));
      return true;
    }
    if (this.pending.size >= this.opts.capacity) {
      this.dropped++;
      this.events.onDrop?.(counter);
      return false;
    }
    const last = this.lastRolled.get(counter);
    const at = Math.max(notBeforeMs, last === undefined ? 0 : last + this.opts.coalesceMs);
    this.pending.set(counter, at);
    const q = this.queueOf(counter);
    this.heaps[q]!.push(counter, at);
    this.wakers[q]?.();
    return true;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loops = this.heaps.map((_, i) => this.drain(i));
  }

  /**
   * Stops taking new batches, waits for the rollups in flight, then runs once every queued rollup that is due (a
   * shutdown leaves no due work behind; a failure is reported, not retried). One not due yet (its events not settled,
   * or waiting out the coalesce window or a retry) is dropped, as the queues are not durable: the counter's next read
   * or write, or the sweeper, rolls it up.
   */
  async stop(): Promise<{ flushed: number; failed: number; dropped: number }> {
    this.running = false;
    this.wakers.forEach((w) => w?.());
    await Promise.all(this.loops);
    this.loops = [];
    const now = this.now();
    const due = [...this.pending].filter(([, at]) => at <= now).map(([counter]) => counter);
    const dropped = this.pending.size - due.length;
    const results = await Promise.all(due.map((counter) => this.runOne(counter)));
    // What the flush queued again (retries, follow-ups) goes with the rest.
    this.pending.clear();
    this.followUps.clear();
    for (const heap of this.heaps) heap.clear();
    return { flushed: due.length, failed: results.filter((ok) => !ok).length, dropped };
  }

  private async drain(q: number): Promise<void> {
    const heap = this.heaps[q]!;
    while (this.running) {
      const now = this.now();
      const batch: string[] = [];
      while (batch.length < this.opts.batchSize && heap.size > 0 && heap.peekDue()! <= now) {
        const item = heap.pop()!;
        batch.push(item.key);
      }
      if (batch.length === 0) {
        const nextDue = heap.peekDue();
        const wait = nextDue === undefined ? IDLE_POLL_MS : Math.min(IDLE_POLL_MS, Math.max(1, nextDue - now));
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, wait);
          function done(): void {
            clearTimeout(timer);
            resolve();
          }
          this.wakers[q] = done;
        });
        this.wakers[q] = undefined;
        continue;
      }
      await Promise.all(batch.map((counter) => this.runOne(counter)));
      this.pruneLastRolled();
    }
  }

  /** Runs one rollup in a slot; false when it failed. */
  private async runOne(counter: string): Promise<boolean> {
    await this.slots.acquire();
    // Leaving `pending` before the rollup starts lets a write that lands during it queue the next rollup.
    this.pending.delete(counter);
    const startedAt = this.now();
    const followUp = this.followUps.get(counter);
    this.followUps.delete(counter);
    let ok = true;
    try {
      await this.rollup(counter);
    } catch (err) {
      ok = false;
      this.events.onError?.(counter, err);
      // Cassandra down or slow is tried again; an error that says it is not retryable (a count out of range) would
      // fail the same way until the counter's next write, which triggers a rollup anyway.
      const retryable = !(err instanceof CounterError) || err.retryable;
      if (retryable) this.trigger(counter, this.now() + RETRY_AFTER_MS);
    } finally {
      this.lastRolled.delete(counter);
      this.lastRolled.set(counter, this.now());
      this.slots.release();
    }
    // Writes due after this rollup started are beyond its horizon (and a write during it already queued its own).
    if (followUp !== undefined && followUp > startedAt) this.trigger(counter, followUp);
    return ok;
  }

  private pruneLastRolled(): void {
    const oldest = this.now() - this.opts.coalesceMs;
    for (const [counter, at] of this.lastRolled) {
      if (at > oldest) break;
      this.lastRolled.delete(counter);
    }
  }
}
