import { resolveCounterNamespace } from '../../api/resolve';
import type { RollupCache } from '../cache/rollup-cache';
import { CountOutOfRangeError } from '../errors';
import type { Checkpoint, CounterEvent } from '../storage/counter-store';
import { MemoryCounterStore } from '../storage/memory-store';
import { immutableBefore, isBehind, rollupCounter, settleDelayMs } from './rollup';

const config = resolveCounterNamespace({
  apiVersion: 'tally.dev/v1alpha1',
  kind: 'CounterNamespace',
  metadata: { name: 'r' },
  spec: { counterType: 'Eventual', eventStorage: { acceptLimitSeconds: 5 }, rollup: { settleMarginMs: 1500 } },
});
const NOW = 1_800_000_000_000;
const HORIZON = NOW - 6500;

/** A cache that keeps what it is given; `failPut` makes put reject. */
function fakeCache() {
  const puts: [string, Checkpoint][] = [];
  let failPut: Error | undefined;
  const cache = {
    put(counter: string, checkpoint: Checkpoint): Promise<void> {
      if (failPut) return Promise.reject(failPut);
      puts.push([counter, checkpoint]);
      return Promise.resolve();
    },
  };
  return { cache: cache as unknown as RollupCache, puts, failPut: (err: Error) => (failPut = err) };
}

/** Writes events as the event writer leaves them: the bounds (here exact), then the event. */
async function write(memory: MemoryCounterStore, events: Partial<CounterEvent>[]): Promise<void> {
  for (const [i, e] of events.entries()) {
    const event: CounterEvent = { counter: 'c', eventTimeMs: NOW, eventId: `e${i}`, kind: 'add', delta: 0, ...e };
    await memory.widenBounds(event.counter, {
      firstWriteMs: event.eventTimeMs,
      lastWriteMs: event.eventTimeMs,
      ...(event.kind === 'clear' ? { clearMs: event.eventTimeMs } : {}),
    });
    await memory.insertEvent(event);
  }
}

describe('the immutable horizon', () => {
  it('is the accept limit plus the settle margin behind now', () => {
    expect(settleDelayMs(config)).toBe(6500);
    expect(immutableBefore(new MemoryCounterStore(config).store, NOW)).toBe(HORIZON);
  });
});

describe('isBehind', () => {
  it('is true for a counter written after its checkpoint, or written and never rolled up', () => {
    expect(isBehind({ counter: 'c' })).toBe(false);
    expect(isBehind({ counter: 'c', firstWriteMs: 1, lastWriteMs: 2 })).toBe(true);
    const checkpoint = { count: 1, timeMs: 100 };
    expect(isBehind({ counter: 'c', checkpoint, firstWriteMs: 1, lastWriteMs: 100 })).toBe(false);
    expect(isBehind({ counter: 'c', checkpoint, firstWriteMs: 1, lastWriteMs: 101 })).toBe(true);
    expect(isBehind({ counter: 'c', checkpoint, firstWriteMs: 1, lastWriteMs: 50, lastClearMs: 101 })).toBe(true);
    expect(isBehind({ counter: 'c', checkpoint })).toBe(false);
  });
});

describe('rollupCounter', () => {
  it('reports a counter never written as unknown, and writes nothing', async () => {
    const memory = new MemoryCounterStore(config);
    const { cache, puts } = fakeCache();
    expect(await rollupCounter(memory.store, cache, 'nobody', NOW)).toEqual({
      counter: 'nobody',
      result: 'unknown-counter',
      eventsRead: 0,
    });
    expect(memory.callsOf('writeCheckpoint')).toEqual([]);
    expect(puts).toEqual([]);
  });

  it('counts the events up to the horizon, not the newer ones, and stores the checkpoint in the table and the cache', async () => {
    const memory = new MemoryCounterStore(config);
    const { cache, puts } = fakeCache();
    await write(memory, [
      { eventTimeMs: HORIZON - 3000, delta: 4 },
      { eventTimeMs: HORIZON, delta: 3 },
      { eventTimeMs: HORIZON + 1, delta: 100 },
    ]);
    const outcome = await rollupCounter(memory.store, cache, 'c', NOW);
    expect(outcome).toEqual({
      counter: 'c',
      result: 'rolled',
      checkpoint: { count: 7, timeMs: HORIZON },
      eventsRead: 2,
    });
    expect(memory.table.get('c')?.checkpoint).toEqual({ count: 7, timeMs: HORIZON });
    expect(puts).toEqual([['c', { count: 7, timeMs: HORIZON }]]);
  });

  it('adds only what came after the checkpoint, and says how far behind it was', async () => {
    const memory = new MemoryCounterStore(config);
    await write(memory, [{ eventTimeMs: HORIZON - 5000, delta: 2 }]);
    await rollupCounter(memory.store, undefined, 'c', NOW - 4000);
    await write(memory, [
      { eventTimeMs: HORIZON - 2000, delta: 5, eventId: 'later' },
      { eventTimeMs: HORIZON - 1000, kind: 'clear', eventId: 'clear' },
      { eventTimeMs: HORIZON - 500, delta: 1, eventId: 'after-clear' },
    ]);
    const outcome = await rollupCounter(memory.store, undefined, 'c', NOW);
    expect(outcome).toMatchObject({ result: 'rolled', checkpoint: { count: 1, timeMs: HORIZON }, lagMs: 4000 });
  });

  it('writes no new checkpoint when nothing was written after it, but still refreshes the cache', async () => {
    const memory = new MemoryCounterStore(config);
    const { cache, puts } = fakeCache();
    await write(memory, [{ eventTimeMs: HORIZON - 5000, delta: 2 }]);
    const first = await rollupCounter(memory.store, cache, 'c', NOW - 1000);
    const again = await rollupCounter(memory.store, cache, 'c', NOW);
    expect(again).toEqual({ counter: 'c', result: 'current', checkpoint: first.checkpoint, eventsRead: 0 });
    expect(memory.callsOf('writeCheckpoint')).toHaveLength(1);
    expect(puts).toEqual([
      ['c', first.checkpoint],
      ['c', first.checkpoint],
    ]);
  });

  it('reports a failed cache write without failing: the table holds the checkpoint', async () => {
    const memory = new MemoryCounterStore(config);
    const { cache, failPut } = fakeCache();
    failPut(new Error('memcached is cooling down'));
    await write(memory, [{ eventTimeMs: HORIZON - 1, delta: 9 }]);
    const outcome = await rollupCounter(memory.store, cache, 'c', NOW);
    expect(outcome).toMatchObject({ result: 'rolled', cacheError: 'memcached is cooling down' });
    expect(memory.table.get('c')?.checkpoint).toEqual({ count: 9, timeMs: HORIZON });
  });

  it('refuses a count out of range and writes no rounded checkpoint', async () => {
    const memory = new MemoryCounterStore(config);
    await write(memory, [
      { eventTimeMs: HORIZON - 2, delta: Number.MAX_SAFE_INTEGER },
      { eventTimeMs: HORIZON - 1, delta: 1 },
    ]);
    await expect(rollupCounter(memory.store, undefined, 'c', NOW)).rejects.toBeInstanceOf(CountOutOfRangeError);
    expect(memory.table.get('c')?.checkpoint).toBeUndefined();
  });
});
