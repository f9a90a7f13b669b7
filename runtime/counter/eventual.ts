import { CacheUnavailableError } from '../cache/memcached';
import type { NearCache } from '../cache/near-cache';
import { settleDelayMs } from '../rollup/rollup';
import type { Checkpoint } from '../storage/counter-store';
import { DurableCounters, type DurableDeps } from './durable';
import type { ClearRequest, CountReply } from './types';

export interface EventualDeps extends DurableDeps {
  /** The process's near cache, shared by its namespaces; the namespace's cache.nearCacheSeconds says for how long. */
  nearCache?: NearCache;
}

/** Each instance keys its near-cache entries apart, so a reloaded namespace never reads its old configuration's. */
let instances = 0;

/**
 * Eventual: reads answer from the last rollup, kept in this process's near cache for the namespace's
 * nearCacheSeconds, cached in memcached (count and rollup time in one value), falling back to the rollups table.
 * Durable and idempotent; reads lag writes by the accept limit + settle margin + the coalesce window + the near cache.
 */
export class EventualCounters extends DurableCounters {
  private readonly near: NearCache | undefined;
  private readonly nearMs: number;
  private readonly keyBase = `${++instances}\u0000`;

  constructor(deps: EventualDeps) {
    super(deps);
    this.nearMs = this.config.cache.nearCacheSeconds * 1000;
    this.near = this.nearMs > 0 && deps.nearCache?.enabled ? deps.nearCache : undefined;
  }

  private remember(counter: string, checkpoint: Checkpoint, ttlMs = this.nearMs): void {
    this.near?.put(this.keyBase + counter, checkpoint, ttlMs);
  }

  async get(counter: string): Promise<CountReply> {
    const ns = this.config.name;
    this.trigger(counter);
    if (this.near) {
      const near = this.near.get(this.keyBase + counter);
      this.metrics.nearCache.inc({ namespace: ns, result: near ? 'hit' : 'miss' });
      if (near) return { count: near.count, asOfMs: near.timeMs };
    }
    if (this.cache) {
      try {
        const cached = await this.cache.get(counter);
        this.metrics.cache.inc({ namespace: ns, result: cached ? 'hit' : 'miss' });
        if (cached) {
          this.remember(counter, cached);
          return { count: cached.count, asOfMs: cached.timeMs };
        }
      } catch (err) {
        if (!(err instanceof CacheUnavailableError)) throw err;
        this.metrics.cache.inc({ namespace: ns, result: 'error' });
      }
    }
    const row = await this.cassandra(`reading the rollup of ${counter}`, () => this.store.readRow(counter));
    if (row.checkpoint) {
      if (this.cache)
        this.cache.put(counter, row.checkpoint).catch(() => this.metrics.cache.inc({ namespace: ns, result: 'error' }));
      this.remember(counter, row.checkpoint);
      return { count: row.checkpoint.count, asOfMs: row.checkpoint.timeMs };
    }
    if (row.firstWriteMs === undefined) return { count: 0 };
    // Written but never rolled up: roll it up now rather than answer 0 for a counter that has events.
    const outcome = await this.cassandra(`rolling up ${counter}`, () => this.rollup(counter));
    return outcome.checkpoint ? { count: outcome.checkpoint.count, asOfMs: outcome.checkpoint.timeMs } : { count: 0 };
  }

  /** This process's own checkpoints go into its near cache at once: it never answers older than its last rollup. */
  override async rollup(counter: string) {
    const outcome = await super.rollup(counter);
    if (outcome.checkpoint) this.remember(counter, outcome.checkpoint);
    return outcome;
  }

  /**
   * A clear makes the count exactly 0 as of the clear's time (only later events count), so that is kept as this
   * process's checkpoint until its own rollup passes the clear; memcached still holds the count from before it.
   */
  override async clear(req: ClearRequest): Promise<CountReply> {
    const reply = await super.clear(req);
    const at = req.token.generationTimeMs;
    const untilRolledPast = at + settleDelayMs(this.config) + this.config.rollup.coalesceMs - this.now();
    this.remember(req.counter, { count: 0, timeMs: at }, Math.max(this.nearMs, untilRolledPast + this.nearMs));
    return reply;
  }
}
