import { resolveCounterNamespace } from '../../api/resolve';
import { MemoryCounterStore } from '../storage/memory-store';
import { sweep } from './sweeper';

const config = resolveCounterNamespace({
  apiVersion: 'tally.dev/v1alpha1',
  kind: 'CounterNamespace',
  metadata: { name: 's' },
  spec: { counterType: 'Eventual', eventStorage: { acceptLimitSeconds: 5 }, rollup: { settleMarginMs: 1000 } },
});
const NOW = 1_800_000_000_000;
const OLD = NOW - 60_000;

/** `n` counters, each with one event of delta 1 long before the horizon; `rolled` of them already rolled up. */
async function counters(memory: MemoryCounterStore, n: number): Promise<string[]> {
  const names = Array.from({ length: n }, (_, i) => `c${i}`);
  for (const [i, counter] of names.entries()) {
    await memory.widenBounds(counter, { firstWriteMs: OLD + i, lastWriteMs: OLD + i });
    await memory.insertEvent({ counter, eventTimeMs: OLD + i, eventId: 'e', kind: 'add', delta: 1 });
  }
  return names;
}

describe('sweep', () => {
  it('rolls up every counter behind its checkpoint and skips the others', async () => {
    const memory = new MemoryCounterStore(config);
    const names = await counters(memory, 6);
    await memory.writeCheckpoint('c0', { count: 1, timeMs: OLD + 10 });
    await memory.writeCheckpoint('c1', { count: 1, timeMs: OLD + 10 });
    const summary = await sweep(memory.store, undefined, { concurrency: 2, now: () => NOW });
    expect(summary).toMatchObject({
      namespace: 's',
      scanned: 6,
      behind: 4,
      rolled: 4,
      current: 0,
      failed: 0,
      eventsRead: 4,
      errors: [],
    });
    for (const counter of names) expect(memory.table.get(counter)?.checkpoint?.count).toBe(1);
    expect(memory.callsOf('readRow')).toHaveLength(4);
  });

  it('never runs more rollups at once than its concurrency, and waits for the last of them', async () => {
    const memory = new MemoryCounterStore(config);
    await counters(memory, 10);
    let running = 0;
    let peak = 0;
    memory.before.readRow = async () => {
      peak = Math.max(peak, ++running);
      await new Promise((r) => setTimeout(r, 5));
      running--;
    };
    const summary = await sweep(memory.store, undefined, { concurrency: 3, now: () => NOW });
    expect(peak).toBe(3);
    expect(running).toBe(0);
    expect(summary.rolled).toBe(10);
  });

  it('counts the failures, names the first ten, and carries on', async () => {
    const memory = new MemoryCounterStore(config);
    await counters(memory, 14);
    let reads = 0;
    memory.before.readRow = () => {
      if (++reads <= 12) throw new Error('read timed out');
    };
    const summary = await sweep(memory.store, undefined, { concurrency: 4, now: () => NOW });
    expect(summary).toMatchObject({ scanned: 14, behind: 14, failed: 12, rolled: 2 });
    expect(summary.errors).toHaveLength(10);
    expect(summary.errors[0]).toMatch(/^c\d+: read timed out$/);
  });
});
