import type { NamespaceConfig } from '../../api/namespace-config';
import type { Checkpoint } from '../storage/counter-store';
import { cacheKey } from './keys';
import type { Cache } from './memcached';

/**
 * The rollup cache: a counter's checkpoint (count AND rollup time) as ONE memcached value, so a reader never sees a
 * count from one rollup with the time of another.
 */
export class RollupCache {
  constructor(
    private readonly cache: Cache,
    private readonly config: NamespaceConfig,
  ) {}

  private key(counter: string): string {
    return cacheKey(this.config.cache.keyPrefix, this.config.name, 'rollup', counter);
  }

  async get(counter: string): Promise<Checkpoint | undefined> {
    const raw = await this.cache.get(this.key(counter));
    if (raw === null) return undefined;
    try {
      const v = JSON.parse(raw.toString('utf8')) as { c?: unknown; t?: unknown };
      if (Number.isSafeInteger(v.c) && Number.isSafeInteger(v.t))
        return { count: v.c as number, timeMs: v.t as number };
    } catch {
      // A value we cannot read is treated as a miss and overwritten by the next rollup.
    }
    return undefined;
  }

  /**
   * Stores a checkpoint unless the cache already holds a newer one. Two rollups racing can still interleave between
   * the read and the write; the older value then lives until the next rollup of the counter (which rewrites it even
   * when nothing changed), which is harmless because every checkpoint is a correct count as of its own time.
   */
  async put(counter: string, checkpoint: Checkpoint): Promise<void> {
    const current = await this.get(counter);
    if (current && current.timeMs > checkpoint.timeMs) return;
    await this.cache.set(
      this.key(counter),
      JSON.stringify({ c: checkpoint.count, t: checkpoint.timeMs }),
      this.config.cache.ttlSeconds,
    );
  }
}
