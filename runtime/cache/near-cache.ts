import { LRUCache } from 'lru-cache';
import type { Checkpoint } from '../storage/counter-store';

export interface NearCacheLimits {
  /** At most this many checkpoints in the process, across all namespaces (0: no near cache). */
  entries: number;
  /** At most about this many bytes of them (keys and values as estimated by entryBytes). */
  bytes: number;
}

export const DEFAULT_NEAR_CACHE_LIMITS: NearCacheLimits = { entries: 100_000, bytes: 32 * 1024 * 1024 };

/** A JS string costs 2 bytes a UTF-16 unit; the entry, its checkpoint and the LRU's slots about 120 more. */
export function entryBytes(key: string): number {
  return key.length * 2 + 120;
}

/**
 * Eventual checkpoints in this process's memory, one cache for every namespace it serves so that the bounds hold
 * however many namespaces there are; each entry expires after its namespace's own staleness.
 */
export class NearCache {
  private readonly lru: LRUCache<string, Checkpoint> | undefined;

  /** `now` (milliseconds, any origin) is for tests. */
  constructor(limits: NearCacheLimits = DEFAULT_NEAR_CACHE_LIMITS, now?: () => number) {
    if (limits.entries <= 0 || limits.bytes <= 0) return;
    this.lru = new LRUCache<string, Checkpoint>({
      max: limits.entries,
      maxSize: limits.bytes,
      sizeCalculation: (_value, key) => entryBytes(key),
      // An expired entry is never returned, and it is dropped when read rather than by a timer per entry.
      ttlAutopurge: false,
      ...(now ? { perf: { now }, ttlResolution: 0 } : {}),
    });
  }

  get enabled(): boolean {
    return this.lru !== undefined;
  }

  get size(): number {
    return this.lru?.size ?? 0;
  }

  get(key: string): Checkpoint | undefined {
    return this.lru?.get(key);
  }

  /**
   * Keeps the newer of the cached and the given checkpoint (each is exact as of its own time), the given one for
   * ttlMs; a newer one already cached keeps its own expiry.
   */
  put(key: string, checkpoint: Checkpoint, ttlMs: number): void {
    if (!this.lru || ttlMs <= 0) return;
    const current = this.lru.get(key);
    if (current && current.timeMs > checkpoint.timeMs) return;
    this.lru.set(key, checkpoint, { ttl: ttlMs });
  }

  delete(key: string): void {
    this.lru?.delete(key);
  }
}
