import pino from 'pino';
import { resolveCounterNamespace } from '../../api/resolve';
import { CacheUnavailableError } from '../cache/memcached';
import type { RollupCache } from '../cache/rollup-cache';
import { UnavailableError } from '../errors';
import { createRuntimeMetrics } from '../observability/metrics';
import type { Checkpoint } from '../storage/counter-store';
import { MemoryCounterStore } from '../storage/memory-store';
import { NearCache } from '../cache/near-cache';
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
  const state = { down: false, reads: 0 };
  const cache = {
    get(counter: string): Promise<Checkpoint | undefined> {
      state.reads++;
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

describe('Eventual reads with a near cache', () => {
  const spec = (nearCacheSeconds: number) => ({
    counterType: 'Eventual' as const,
    eventStorage: { acceptLimitSeconds: 5 },
    rollup: { settleMarginMs: 1000, coalesceMs: 0 },
    cache: { nearCacheSeconds },
  });
  const open: EventualCounters[] = [];
  afterEach(async () => {
    for (const c of open.splice(0)) await c.close();
  });

  /** Namespaces (name: nearCacheSeconds) sharing one near cache, each with a fake memcached, on one fake clock. */
  async function setupNear(namespaces: Record<string, number>) {
    const clock = { now: NOW };
    const near = new NearCache({ entries: 100, bytes: 1 << 20 }, () => clock.now);
    const metrics = createRuntimeMetrics();
    const served: Record<
      string,
      { counters: EventualCounters; memory: MemoryCounterStore; cache: ReturnType<typeof fakeCache> }
    > = {};
    for (const [name, seconds] of Object.entries(namespaces)) {
      const config = resolveCounterNamespace({
        apiVersion: 'tally.dev/v1alpha1',
        kind: 'CounterNamespace',
        metadata: { name },
        spec: spec(seconds),
      });
      const memory = new MemoryCounterStore(config);
      const cache = fakeCache();
      const counters = new EventualCounters({
        store: memory.store,
        cache: cache.cache,
        nearCache: near,
        metrics,
        log: pino({ level: 'silent' }),
        clock: { assertWithin: () => undefined },
        requestTimeoutMs: 500,
        now: () => clock.now,
      });
      await counters.queues.stop();
      open.push(counters);
      served[name] = { counters, memory, cache };
    }
    const nearReads = async (result: string) =>
      (await metrics.nearCache.get()).values
        .filter((v) => v.labels.result === result)
        .reduce((sum, v) => sum + v.value, 0);
    return { clock, served, nearReads };
  }

  it("answer from memory for the namespace's nearCacheSeconds, with the checkpoint's own as_of, then ask memcached", async () => {
    const { clock, served, nearReads } = await setupNear({ one: 1, five: 5 });
    for (const { cache } of Object.values(served)) cache.values.set('c', { count: 1, timeMs: NOW - 7000 });
    for (const { counters } of Object.values(served)) await counters.get('c');
    // Another process rolls up: memcached has the new checkpoint, this process still its own copy.
    for (const { cache } of Object.values(served)) cache.values.set('c', { count: 2, timeMs: NOW - 5000 });
    clock.now = NOW + 999;
    expect(await served.one!.counters.get('c')).toEqual({ count: 1, asOfMs: NOW - 7000 });
    expect(served.one!.cache.state.reads).toBe(1);
    clock.now = NOW + 1001;
    expect(await served.one!.counters.get('c')).toEqual({ count: 2, asOfMs: NOW - 5000 });
    expect(await served.five!.counters.get('c')).toEqual({ count: 1, asOfMs: NOW - 7000 });
    clock.now = NOW + 5001;
    expect(await served.five!.counters.get('c')).toEqual({ count: 2, asOfMs: NOW - 5000 });
    expect(await nearReads('hit')).toBe(2);
    expect(await nearReads('miss')).toBe(4);
  });

  it('ask memcached every time with nearCacheSeconds 0', async () => {
    const { served } = await setupNear({ off: 0 });
    const s = served.off!;
    s.cache.values.set('c', { count: 1, timeMs: NOW - 7000 });
    await s.counters.get('c');
    s.cache.values.set('c', { count: 2, timeMs: NOW - 5000 });
    expect(await s.counters.get('c')).toEqual({ count: 2, asOfMs: NOW - 5000 });
    expect(s.cache.state.reads).toBe(2);
  });

  it("see this process's own rollup at once", async () => {
    const { clock, served } = await setupNear({ ns: 30 });
    const s = served.ns!;
    await s.memory.writeCheckpoint('c', { count: 1, timeMs: NOW - 7000 });
    expect(await s.counters.get('c')).toEqual({ count: 1, asOfMs: NOW - 7000 });
    await s.counters.add({ counter: 'c', delta: 4, token: { token: 't', generationTimeMs: NOW } });
    clock.now = NOW + 6001;
    await s.counters.rollup('c');
    expect(await s.counters.get('c')).toEqual({ count: 5, asOfMs: NOW + 1 });
  });

  it('answer 0 after a clear in this process, until its rollup passes the clear', async () => {
    const { clock, served } = await setupNear({ ns: 1 });
    const s = served.ns!;
    s.cache.values.set('c', { count: 7, timeMs: NOW - 7000 });
    expect(await s.counters.get('c')).toEqual({ count: 7, asOfMs: NOW - 7000 });
    await s.counters.clear({ counter: 'c', token: { token: 'clear', generationTimeMs: NOW } });
    expect(await s.counters.get('c')).toEqual({ count: 0, asOfMs: NOW });
    // Past the near cache's second, memcached still holds the count from before the clear: not answered.
    clock.now = NOW + 5000;
    expect(await s.counters.get('c')).toEqual({ count: 0, asOfMs: NOW });
    clock.now = NOW + 6001;
    await s.counters.rollup('c');
    expect(await s.counters.get('c')).toEqual({ count: 0, asOfMs: NOW + 1 });
  });
});
