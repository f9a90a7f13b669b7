import type { CounterStore, WriteBounds } from '../storage/counter-store';
import { BOUND_GRAIN_MS, WriteBoundsCache } from './write-bounds';

/** Records every bounds write; `failNext` makes the next one reject after a tick, like a timed-out write. */
function fakeStore() {
  const writes: WriteBounds[] = [];
  let failNext = false;
  const store = {
    widenBounds(_counter: string, bounds: WriteBounds): Promise<void> {
      writes.push(bounds);
      const fail = failNext;
      failNext = false;
      return new Promise((resolve, reject) =>
        setTimeout(() => (fail ? reject(new Error('write timed out')) : resolve()), 5),
      );
    },
  };
  return { store: store as unknown as CounterStore, writes, failNextWrite: () => (failNext = true) };
}

const G = BOUND_GRAIN_MS;
const T = 1_800_000_000_000; // a multiple of the grain

describe('WriteBoundsCache', () => {
  it('writes both bounds for a counter first seen, rounded outwards to the grain', async () => {
    const { store, writes } = fakeStore();
    await new WriteBoundsCache(store).cover('c', T + 1234);
    expect(writes).toEqual([{ lastWriteMs: T + G, firstWriteMs: T }]);
  });

  it('writes nothing for further events in a covered slot, and only the last bound for a later slot', async () => {
    const { store, writes } = fakeStore();
    const cache = new WriteBoundsCache(store);
    await cache.cover('c', T + 1);
    await cache.cover('c', T + 500);
    await cache.cover('c', T + G - 1);
    expect(writes).toHaveLength(1);
    await cache.cover('c', T + G + 5);
    expect(writes[1]).toEqual({ lastWriteMs: T + 2 * G });
  });

  it('moves the first bound earlier for an older event', async () => {
    const { store, writes } = fakeStore();
    const cache = new WriteBoundsCache(store);
    await cache.cover('c', T + 5);
    await cache.cover('c', T - 3);
    expect(writes[1]).toEqual({ lastWriteMs: T, firstWriteMs: T - G });
    await cache.cover('c', T + 7);
    expect(writes).toHaveLength(2);
  });

  it('covers an event exactly on a grain boundary', async () => {
    const { store, writes } = fakeStore();
    await new WriteBoundsCache(store).cover('c', T);
    expect(writes[0]!.firstWriteMs).toBeLessThanOrEqual(T);
    expect(writes[0]!.lastWriteMs).toBeGreaterThanOrEqual(T);
  });

  it('makes concurrent events of a slot wait for the one write; if it fails, the next event writes its own', async () => {
    const { store, writes, failNextWrite } = fakeStore();
    const cache = new WriteBoundsCache(store);
    failNextWrite();
    const first = cache.cover('c', T + 1);
    const second = cache.cover('c', T + 2);
    await expect(first).rejects.toThrow('write timed out');
    await expect(second).resolves.toBeUndefined();
    expect(writes).toEqual([
      { lastWriteMs: T + G, firstWriteMs: T },
      { lastWriteMs: T + G, firstWriteMs: T },
    ]);
  });

  it('keeps counters apart', async () => {
    const { store, writes } = fakeStore();
    const cache = new WriteBoundsCache(store);
    await cache.cover('a', T + 1);
    await cache.cover('b', T + 1);
    expect(writes).toHaveLength(2);
  });
});
