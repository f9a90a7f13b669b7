import { CacheUnavailableError } from '../cache/memcached';
import { DurableCounters } from './durable';
import type { CountReply } from './types';

/**
 * Eventual: reads answer from the last rollup, cached in memcached (count and rollup time in one value), falling
 * back to the rollups table. Durable and idempotent; reads lag writes by the accept limit + settle margin + the
 * coalesce window.
 */
export class EventualCounters extends DurableCounters {
  async get(counter: string): Promise<CountReply> {
    const ns = this.config.name;
    this.trigger(counter);
    if (this.cache) {
      try {
        const cached = await this.cache.get(counter);
        this.metrics.cache.inc({ namespace: ns, result: cached ? 'hit' : 'miss' });
        if (cached) return { count: cached.count, asOfMs: cached.timeMs };
      } catch (err) {
        if (!(err instanceof CacheUnavailableError)) throw err;
        this.metrics.cache.inc({ namespace: ns, result: 'error' });
      }
    }
    const row = await this.cassandra(`reading the rollup of ${counter}`, () => this.store.readRow(counter));
    if (row.checkpoint) {
      if (this.cache)
        this.cache.put(counter, row.checkpoint).catch(() => this.metrics.cache.inc({ namespace: ns, result: 'error' }));
      return { count: row.checkpoint.count, asOfMs: row.checkpoint.timeMs };
    }
    if (row.firstWriteMs === undefined) return { count: 0 };
    // Written but never rolled up: roll it up now rather than answer 0 for a counter that has events.
    const outcome = await this.cassandra(`rolling up ${counter}`, () => this.rollup(counter));
    return outcome.checkpoint ? { count: outcome.checkpoint.count, asOfMs: outcome.checkpoint.timeMs } : { count: 0 };
  }
}
