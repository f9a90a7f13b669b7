import pino from 'pino';
import { resolveCounterNamespace } from '../../api/resolve';
import { CacheUnavailableError } from '../cache/memcached';
import type { RollupCache } from '../cache/rollup-cache';
import { UnavailableError } from '../errors';
import { createRuntimeMetrics } from '../observability/metrics';
import type { Checkpoint } from '../storage/counter-store';
import { MemoryCounterStore } from '../storage/memory-store';
import { EventualCounters } from './eventual';

const config = resolveCounterNamespace({
  apiVersion: 'tally.dev/v1alpha1',
  kind: 'CounterNamespace',
  metadata: { name: 'ev' },
  spec: { counterType: 'Eventual', eventStorage: { acceptLimitSeconds: 5 }, rollup: { settleMarginMs: 1000 } },
});
const NOW = 1_800_000_000_000;

/** The rollup cache as a map; `down` makes every call fail as memcached does when it is unreachable. */
function fakeCache() {
  const values = new Map<string, Checkpoint>();
  const state = { down: false };
  const cache = {
    get(counter: string): Promise<Checkpoint | undefined> {
      if (state.down) return Promise.reject(new CacheUnavailableError('memcached get failed'));
      return Promise.resolve(values.get(counter));
    },
    put(counter: string, checkpoint: Checkpoint): Promise<void> {
      if (state.down) return Promise.reject(new CacheUnavailableError('memcached set failed'));
      values.set(counter, checkpoint);
      return Promise.resolve();
    },
  };
  return { cache: cache as unknown as RollupCache, values, state };
}

async function setup() {
  const memory = new MemoryCounterStore(config);
  const cache = fakeCache();
  const metrics = createRuntimeMetrics();
  const counters = new EventualCounters({
    store: memory.store,
    cache: cache.cache,
    metrics,
    log: pino({ level: 'silent' }),
    clock: { assertWithin: () => undefined },
    requestTimeoutMs: 1000,
    now: () => NOW,
  });
  // Rollups only when a test asks for one.
  await counters.queues.stop();
  const cacheReads = async (result: string) =>
    (await metrics.cache.get()).values.find((v) => v.labels.result === result)?.value ?? 0;
  return { memory, cache, counters, cacheReads };
}

describe('Eventual reads', () => {
  it('answer from the cache when it holds the checkpoint', async () => {
    const s = await setup();
    s.cache.values.set('c', { count: 12, timeMs: NOW - 7000 });
    expect(await s.counters.get('c')).toEqual({ count: 12, asOfMs: NOW - 7000 });
    expect(s.memory.callsOf('readRow')).toEqual([]);
    expect(await s.cacheReads('hit')).toBe(1);
    expect(s.counters.queues.depth).toBe(1);
  });

  it('fall back to the rollups table on a miss, and fill the cache', async () => {
    const s = await setup();
    await s.memory.writeCheckpoint('c', { count: 5, timeMs: NOW - 9000 });
    expect(await s.counters.get('c')).toEqual({ count: 5, asOfMs: NOW - 9000 });
    expect(await s.cacheReads('miss')).toBe(1);
    await new Promise((r) => setImmediate(r));
    expect(s.cache.values.get('c')).toEqual({ count: 5, timeMs: NOW - 9000 });
  });

  it('fall back to the table when memcached is down, and count the error', async () => {
    const s = await setup();
    s.cache.state.down = true;
    await s.memory.writeCheckpoint('c', { count: 5, timeMs: NOW - 9000 });
    expect(await s.counters.get('c')).toEqual({ count: 5, asOfMs: NOW - 9000 });
    await new Promise((r) => setImmediate(r));
    expect(await s.cacheReads('error')).toBe(2);
  });

  it('roll a counter that was written but never rolled up up at once, rather than answer 0', async () => {
    const s = await setup();
    // Written a while ago (by another process, say): immutable now.
    await s.memory.widenBounds('c', { firstWriteMs: NOW - 8000, lastWriteMs: NOW - 8000 });
    await s.memory.insertEvent({ counter: 'c', eventTimeMs: NOW - 8000, eventId: 't', kind: 'add', delta: 4 });
    expect(await s.counters.get('c')).toEqual({ count: 4, asOfMs: NOW - 6000 });
    expect(s.memory.table.get('c')?.checkpoint).toEqual({ count: 4, timeMs: NOW - 6000 });
    expect(await s.counters.get('never-written')).toEqual({ count: 0 });
  });

  it('answer unavailable when Cassandra is', async () => {
    const s = await setup();
    s.memory.failNext('readRow', Object.assign(new Error('timed out'), { name: 'OperationTimedOutError' }));
    await expect(s.counters.get('c')).rejects.toBeInstanceOf(UnavailableError);
  });
});
