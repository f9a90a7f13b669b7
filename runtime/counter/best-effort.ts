import { cacheKey } from '../cache/keys';
import { CacheUnavailableError, CacheValueError, type Cache } from '../cache/memcached';
import type { NamespaceConfig } from '../../api/namespace-config';
import { CountCorruptError, DeltaOutOfRangeError, UnavailableError } from '../errors';
import type { AddRequest, ClearRequest, CounterOps, CountReply } from './types';

/**
 * BestEffort: memcached only. incr/decr with a TTL, no event log, no idempotency (a retried call counts twice, and
 * a token's time is not checked): the fastest type, for counts that may be approximate and may be lost with the cache.
 */
export class BestEffortCounters implements CounterOps {
  constructor(
    readonly config: NamespaceConfig,
    private readonly cache: Cache | undefined,
  ) {}

  private key(counter: string): string {
    return cacheKey(this.config.cache.keyPrefix, this.config.name, 'be', counter);
  }

  private async withCache<T>(counter: string, op: (cache: Cache) => Promise<T>): Promise<T> {
    if (!this.cache)
      throw new UnavailableError(
        `namespace ${this.config.name} is BestEffort but this runtime has no memcached (MEMCACHED_SERVERS)`,
        { retryAfterSeconds: 30 },
      );
    try {
      return await op(this.cache);
    } catch (err) {
      if (err instanceof CacheUnavailableError)
        throw new UnavailableError(`memcached is unavailable: ${err.message}`, { cause: err });
      if (err instanceof CacheValueError) throw new CountCorruptError(counter, err.message);
      throw err;
    }
  }

  async add(req: AddRequest): Promise<void> {
    await this.addAndGet(req);
  }

  async addAndGet(req: AddRequest): Promise<CountReply> {
    const count = await this.withCache(req.counter, (c) =>
      c.addToCount(this.key(req.counter), req.delta, this.config.cache.ttlSeconds),
    );
    if (count > BigInt(Number.MAX_SAFE_INTEGER) || count < BigInt(Number.MIN_SAFE_INTEGER)) {
      // Undo, so the stored count stays within what a JSON number can carry exactly.
      await this.withCache(req.counter, (c) =>
        c.addToCount(this.key(req.counter), -req.delta, this.config.cache.ttlSeconds),
      );
      throw new DeltaOutOfRangeError(req.delta);
    }
    return { count: Number(count) };
  }

  async get(counter: string): Promise<CountReply> {
    const count = await this.withCache(counter, (c) => c.readCount(this.key(counter)));
    return { count: count === undefined ? 0 : Number(count) };
  }

  async clear(req: ClearRequest): Promise<CountReply> {
    await this.withCache(req.counter, (c) => c.delete(this.key(req.counter)));
    return { count: 0 };
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
