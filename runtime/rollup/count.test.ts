import { resolveCounterNamespace } from '../../api/resolve';
import type { CounterEvent, RollupRow } from '../storage/counter-store';
import { MemoryCounterStore } from '../storage/memory-store';
import { countAsOf } from './count';

/** The events in the in-memory store (the rows are given to countAsOf directly); `reads()` are the windows it was asked to sum. */
function fakeStore(events: CounterEvent[]) {
  const config = resolveCounterNamespace({
    apiVersion: 'tally.dev/v1alpha1',
    kind: 'CounterNamespace',
    metadata: { name: 'n' },
    spec: {},
  });
  const memory = new MemoryCounterStore(config);
  for (const e of events) memory.events.set(`${e.counter}/${e.eventTimeMs}/${e.eventId}`, e);
  return { store: memory.store, reads: () => memory.callsOf('sumWindow') as [number, number][] };
}

const NOW = 1_800_000_000_000;
const add = (t: number, delta: number): CounterEvent => ({
  counter: 'c',
  eventTimeMs: NOW + t,
  eventId: `a${t}`,
  kind: 'add',
  delta,
});
const clear = (t: number): CounterEvent => ({
  counter: 'c',
  eventTimeMs: NOW + t,
  eventId: `c${t}`,
  kind: 'clear',
  delta: 0,
});

/** The rollups row the writes of `events` would leave behind, with an optional checkpoint. */
function rowFor(events: CounterEvent[], checkpoint?: { count: number; timeMs: number }): RollupRow {
  const times = events.map((e) => e.eventTimeMs);
  const clears = events.filter((e) => e.kind === 'clear').map((e) => e.eventTimeMs);
  return {
    counter: 'c',
    ...(checkpoint ? { checkpoint } : {}),
    ...(times.length ? { firstWriteMs: Math.min(...times), lastWriteMs: Math.max(...times) } : {}),
    ...(clears.length ? { lastClearMs: Math.max(...clears) } : {}),
  };
}

describe('countAsOf', () => {
  it('counts a new counter from its first write, including that event', async () => {
    const events = [add(-5000, 3), add(-4000, -1), add(-10, 10)];
    const { store } = fakeStore(events);
    expect((await countAsOf(store, rowFor(events), NOW, NOW)).count).toBe(12);
    expect((await countAsOf(store, rowFor(events), NOW - 3000, NOW)).count).toBe(2);
  });

  it('is 0 for a counter never written', async () => {
    const { store, reads } = fakeStore([]);
    expect(await countAsOf(store, { counter: 'c' }, NOW, NOW)).toMatchObject({ count: 0 });
    expect(reads()).toEqual([]);
  });

  it('adds only the events after the checkpoint', async () => {
    const events = [add(-5000, 100), add(-1000, 5)];
    const { store } = fakeStore(events);
    // The checkpoint at -3000 already holds the first event (and pretends an older history of 40 more).
    expect((await countAsOf(store, rowFor(events, { count: 140, timeMs: NOW - 3000 }), NOW, NOW)).count).toBe(145);
  });

  it('reads nothing when nothing was written after the checkpoint', async () => {
    const events = [add(-5000, 1)];
    const { store, reads } = fakeStore(events);
    const result = await countAsOf(store, rowFor(events, { count: 1, timeMs: NOW - 4000 }), NOW, NOW);
    expect(result.count).toBe(1);
    expect(reads()).toEqual([]);
  });

  it('resets at the latest clear: only events strictly after it count, an add at the same instant is cleared', async () => {
    const events = [
      add(-9000, 50),
      clear(-6000),
      add(-6000, 7),
      add(-5000, 2),
      clear(-4000),
      add(-3000, 4),
      add(-1000, -1),
    ];
    const { store } = fakeStore(events);
    expect((await countAsOf(store, rowFor(events), NOW, NOW)).count).toBe(3);
    expect((await countAsOf(store, rowFor(events, { count: 52, timeMs: NOW - 5000 }), NOW, NOW)).count).toBe(3);
  });

  it('finds a clear inside the window when a later clear lies beyond it', async () => {
    const events = [add(-9000, 50), clear(-6000), add(-5000, 2), clear(-1000), add(-500, 9)];
    const { store } = fakeStore(events);
    // As of -2000, the clear at -6000 applies, the one at -1000 is still in the future.
    expect((await countAsOf(store, rowFor(events), NOW - 2000, NOW)).count).toBe(2);
    expect((await countAsOf(store, rowFor(events), NOW, NOW)).count).toBe(9);
  });

  it('ignores a clear the checkpoint already includes', async () => {
    const events = [clear(-6000), add(-5000, 2), add(-1000, 3)];
    const { store } = fakeStore(events);
    expect((await countAsOf(store, rowFor(events, { count: 2, timeMs: NOW - 4000 }), NOW, NOW)).count).toBe(5);
  });

  it('never asks for events older than the retention', async () => {
    const events = [add(-1000, 1)];
    const { store, reads } = fakeStore(events);
    const row = rowFor(events, { count: 10, timeMs: NOW - 30 * 86400_000 });
    expect((await countAsOf(store, row, NOW, NOW)).count).toBe(11);
    expect(reads()[0]![0]).toBe(NOW - store.config.eventStorage.retentionSeconds * 1000);
  });

  it('ignores a clear time whose event was never written (a ClearCount that answered 503)', async () => {
    const events = [add(-5000, 7), add(-1000, 5)];
    const { store } = fakeStore(events);
    // last_clear_time goes in before the event; here the event write then failed.
    const row = { ...rowFor(events), lastClearMs: NOW - 3000 };
    expect((await countAsOf(store, row, NOW, NOW)).count).toBe(12);
    expect((await countAsOf(store, { ...row, checkpoint: { count: 7, timeMs: NOW - 4000 } }, NOW, NOW)).count).toBe(12);
  });
});
