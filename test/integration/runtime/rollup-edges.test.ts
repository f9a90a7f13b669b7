import type { Client } from 'cassandra-driver';
import { randomUUID } from 'node:crypto';
import { cacheKey } from '../../../runtime/cache/keys';
import { Cache } from '../../../runtime/cache/memcached';
import { RollupCache } from '../../../runtime/cache/rollup-cache';
import { EventWriter } from '../../../runtime/counter/event-writer';
import { CountOutOfRangeError } from '../../../runtime/errors';
import { errorReply } from '../../../runtime/http/errors';
import { resolveCounterNamespace } from '../../../api/resolve';
import { countAsOf } from '../../../runtime/rollup/count';
import { rollupCounter } from '../../../runtime/rollup/rollup';
import { cassandraSettingsFromEnv, createCassandraClient } from '../../../store/client';
import { CounterStore } from '../../../runtime/storage/counter-store';
import { dropKeyspace, ensureSchema } from '../../../store/ensure';
import { requireEnv } from '../../support/env';
import { stackEnv, uniqueSuffix } from '../../support/runtime-harness';

/**
 * Edge cases of counting and rollup against real Cassandra and memcached: a clear whose event write failed, sums
 * beyond what a JSON number (and Cassandra's bigint sum) can hold, and a cache left behind by a failed cache write.
 */
describe('rollup edge cases (real Cassandra and memcached)', () => {
  const config = resolveCounterNamespace({
    apiVersion: 'tally.dev/v1alpha1',
    kind: 'CounterNamespace',
    metadata: { name: `edges-${uniqueSuffix()}` },
    spec: { counterType: 'Accurate' },
  });
  let client: Client;
  let store: CounterStore;
  let writer: EventWriter;
  let cache: Cache;
  let rollupCache: RollupCache;

  beforeAll(async () => {
    client = createCassandraClient(cassandraSettingsFromEnv(stackEnv()));
    await client.connect();
    await ensureSchema(client, config);
    store = new CounterStore(client, config);
    // Events go in as the runtime writes them: bounds rounded to their grain first, then the event.
    writer = new EventWriter(store);
    cache = new Cache({ servers: requireEnv('MEMCACHED_SERVERS'), timeoutMs: 1000, cooldownMs: 200 });
    rollupCache = new RollupCache(cache, config);
  });
  afterAll(async () => {
    cache.close();
    await dropKeyspace(client, config.cassandra.keyspace);
    await client.shutdown();
  });

  /** Events far enough in the past that the rollup horizon includes them. */
  const past = (i: number): number => Date.now() - 60_000 + i;
  const add = (counter: string, t: number, delta: number) =>
    writer.append({ counter, eventTimeMs: t, eventId: randomUUID(), kind: 'add', delta });

  it('a clear whose event was never written (the ClearCount answered 503) clears nothing', async () => {
    const counter = `failed-clear-${randomUUID()}`;
    await add(counter, past(0), 7);
    await add(counter, past(2000), 5);
    // What a ClearCount leaves when its event insert fails: the clear time in the rollups row, no clear event.
    await store.widenBounds(counter, { clearMs: past(1000) });

    expect((await countAsOf(store, await store.readRow(counter), Date.now(), Date.now())).count).toBe(12);
    const other = `failed-clear-${randomUUID()}`;
    await add(other, past(0), 3);
    await store.widenBounds(other, { clearMs: past(1000) });
    expect((await rollupCounter(store, undefined, other, Date.now())).checkpoint?.count).toBe(3);

    // A clear that was written still clears.
    await writer.append({ counter, eventTimeMs: past(3000), eventId: randomUUID(), kind: 'clear', delta: 0 });
    await add(counter, past(4000), 2);
    expect((await rollupCounter(store, undefined, counter, Date.now())).checkpoint?.count).toBe(2);
  });

  it('a count beyond ±(2^53 - 1) is refused with COUNT_OUT_OF_RANGE, even where a bigint sum would wrap around', async () => {
    const counter = `huge-${randomUUID()}`;
    // 2048 x (2^53 - 1) = 2^64 - 2048: Cassandra's bigint sum wraps that around to -2048, a plausible wrong count.
    const events = Array.from({ length: 2048 }, (_, i) => i);
    for (let i = 0; i < events.length; i += 128)
      await Promise.all(events.slice(i, i + 128).map((j) => add(counter, past(j), Number.MAX_SAFE_INTEGER)));

    const row = await store.readRow(counter);
    const refused = countAsOf(store, row, Date.now(), Date.now());
    const error: unknown = await refused.catch((err: unknown) => err);
    expect(error).toBeInstanceOf(CountOutOfRangeError);
    expect(errorReply(error)).toMatchObject({
      status: 409,
      code: 'COUNT_OUT_OF_RANGE',
      message: expect.stringContaining(`is ${2n ** 64n - 2048n}, outside ±${Number.MAX_SAFE_INTEGER}`) as unknown,
    });
    // No rounded checkpoint is ever written.
    await expect(rollupCounter(store, undefined, counter, Date.now())).rejects.toBeInstanceOf(CountOutOfRangeError);
    expect((await store.readRow(counter)).checkpoint).toBeUndefined();

    // A clear brings it back into range.
    await writer.append({ counter, eventTimeMs: past(5000), eventId: randomUUID(), kind: 'clear', delta: 0 });
    await add(counter, past(5001), -3);
    expect((await rollupCounter(store, undefined, counter, Date.now())).checkpoint?.count).toBe(-3);
  });

  it('a rollup with nothing new still replaces an older checkpoint left in the cache', async () => {
    const counter = `stale-${randomUUID()}`;
    await add(counter, past(0), 4);
    const first = await rollupCounter(store, rollupCache, counter, Date.now());
    expect(first).toMatchObject({ result: 'rolled', checkpoint: { count: 4 } });
    // A cache write that failed (or a reader's fill that raced the rollup) left an older checkpoint behind.
    await cache.set(
      cacheKey(config.cache.keyPrefix, config.name, 'rollup', counter),
      JSON.stringify({ c: 1, t: first.checkpoint!.timeMs - 5000 }),
      60,
    );
    expect(await rollupCache.get(counter)).toEqual({ count: 1, timeMs: first.checkpoint!.timeMs - 5000 });

    const again = await rollupCounter(store, rollupCache, counter, Date.now());
    expect(again.result).toBe('current');
    expect(await rollupCache.get(counter)).toEqual(first.checkpoint);
  });

  it('sums a window of hundreds of time buckets exactly, in a few requests', async () => {
    const counter = `long-${randomUUID()}`;
    const bucketMs = config.eventStorage.secondsPerBucket * 1000;
    // One event in each of 100 time buckets: a counter written now and then over most of a day.
    const start = Date.now() - 101 * bucketMs;
    const deltas = Array.from({ length: 100 }, (_, i) => (i % 5) - 1);
    await Promise.all(deltas.map((d, i) => add(counter, start + i * bucketMs, d)));
    const window = await store.sumWindow(counter, start - 1, Date.now());
    expect(window.sum).toBe(BigInt(deltas.reduce((a, b) => a + b, 0)));
    expect(window.events).toBe(100);
    expect(window.partitions).toBeGreaterThanOrEqual(101 * config.eventStorage.bucketsPerCounter);
    expect(window.requests).toBeLessThanOrEqual(
      Math.ceil(window.partitions / config.eventStorage.bucketsPerCounter / 16),
    );
  });
});
