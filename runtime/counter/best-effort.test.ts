import { resolveCounterNamespace } from '../../api/resolve';
import { CacheUnavailableError, type Cache } from '../cache/memcached';
import { DeltaOutOfRangeError, UnavailableError } from '../errors';
import { BestEffortCounters } from './best-effort';

const config = resolveCounterNamespace({
  apiVersion: 'tally.dev/v1alpha1',
  kind: 'CounterNamespace',
  metadata: { name: 'be' },
  spec: { counterType: 'BestEffort', cache: { ttlSeconds: 30 } },
});
const token = (generationTimeMs = Date.now(), id = 't') => ({ token: id, generationTimeMs });

/** memcached's counts as a map; `down` makes every call fail as the real client does when it cannot reach it. */
function fakeCache() {
  const counts = new Map<string, bigint>();
  const ttls: number[] = [];
  const state = { down: false };
  const fail = () => Promise.reject(new CacheUnavailableError('memcached incr failed: no answer within 250 ms'));
  const cache = {
    addToCount(key: string, delta: number, ttlSeconds: number): Promise<bigint> {
      if (state.down) return fail();
      ttls.push(ttlSeconds);
      const next = (counts.get(key) ?? 0n) + BigInt(delta);
      counts.set(key, next);
      return Promise.resolve(next);
    },
    readCount(key: string): Promise<bigint | undefined> {
      return state.down ? fail() : Promise.resolve(counts.get(key));
    },
    delete(key: string): Promise<void> {
      if (state.down) return fail();
      counts.delete(key);
      return Promise.resolve();
    },
  };
  return { cache: cache as unknown as Cache, counts, ttls, state };
}

describe('BestEffort counters', () => {
  it('add, read and clear counts in memcached, with the namespace TTL', async () => {
    const { cache, ttls } = fakeCache();
    const counters = new BestEffortCounters(config, cache);
    expect(await counters.get('c')).toEqual({ count: 0 });
    expect(await counters.addAndGet({ counter: 'c', delta: -5, token: token() })).toEqual({ count: -5 });
    await counters.add({ counter: 'c', delta: 2, token: token() });
    expect(await counters.get('c')).toEqual({ count: -3 });
    expect(await counters.get('other')).toEqual({ count: 0 });
    expect(await counters.clear({ counter: 'c', token: token() })).toEqual({ count: 0 });
    expect(await counters.get('c')).toEqual({ count: 0 });
    expect(ttls).toEqual([30, 30]);
  });

  it('are not idempotent, and do not look at the token time (documented)', async () => {
    const { cache } = fakeCache();
    const counters = new BestEffortCounters(config, cache);
    const stale = token(Date.now() - 86_400_000, 'same');
    await counters.add({ counter: 'c', delta: 1, token: stale });
    await counters.add({ counter: 'c', delta: 1, token: stale });
    expect(await counters.get('c')).toEqual({ count: 2 });
  });

  it('refuse a delta that would take the count out of range, and leave the count as it was', async () => {
    const { cache } = fakeCache();
    const counters = new BestEffortCounters(config, cache);
    await counters.add({ counter: 'c', delta: Number.MAX_SAFE_INTEGER, token: token() });
    const refused = counters.addAndGet({ counter: 'c', delta: 1, token: token() });
    await expect(refused).rejects.toBeInstanceOf(DeltaOutOfRangeError);
    await expect(refused).rejects.toThrow(`adding 1 would take the count outside ±${Number.MAX_SAFE_INTEGER}`);
    expect(await counters.get('c')).toEqual({ count: Number.MAX_SAFE_INTEGER });
  });

  it('answer unavailable, keeping the cause, when memcached is down', async () => {
    const { cache, state } = fakeCache();
    const counters = new BestEffortCounters(config, cache);
    state.down = true;
    const err: unknown = await counters.get('c').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnavailableError);
    expect(err).toMatchObject({
      message: 'memcached is unavailable: memcached incr failed: no answer within 250 ms',
      retryAfterSeconds: 1,
      cause: expect.any(CacheUnavailableError) as unknown,
    });
  });

  it('answer unavailable for 30 s when this runtime has no memcached at all', async () => {
    const counters = new BestEffortCounters(config, undefined);
    await expect(counters.add({ counter: 'c', delta: 1, token: token() })).rejects.toMatchObject({
      constructor: UnavailableError,
      message: 'namespace be is BestEffort but this runtime has no memcached (MEMCACHED_SERVERS)',
      retryAfterSeconds: 30,
    });
  });
});
